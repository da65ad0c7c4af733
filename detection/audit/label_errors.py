"""Likely label errors of one annotated dataset from a detector's predictions on it, ranked by a calibrated score.

Per image, detections are matched to labelled boxes of their class greedily by score at IoU >= match_iou (as
COCOeval does). A labelled box that no confident detection of its class matches, and a confident detection that
matches no labelled box, become issues of four kinds:

- wrong_class: a confident detection of another class covers the labelled box (IoU >= match_iou).
  score = s * P(c') * IoU * (1 - e_same), e_same the evidence for the label's own class on the box;
- bad_box: the best detection of the label's class overlaps it only partly (partial_iou <= IoU < match_iou).
  score = s * P(c) * (1 - IoU);
- spurious: nothing confident is detected on the labelled box. score = R(c) * (1 - e_any), e_any the evidence
  of any class on the box;
- missing: a confident detection with no labelled box of any class under it (IoU < missing_iou with every one, and
  not inside a crowd region). score = s * P(c) * (1 - IoU of its nearest box).

s is the detection's score. The evidence for a class on a labelled box is min(1, s / score_threshold) of the best
detection of that class overlapping it by near_iou or more (0 for none): a detection just under the confidence
threshold is still good evidence that the object is there. P(c) and R(c) are the model's own precision and recall
for the class on this dataset at the confidence threshold (matched at match_iou, Laplace-smoothed): a model that is
usually right about circles makes a lone circle detection a likely missing label, and a class it often misses
makes an undetected box less suspicious. Scores are within 0..1 and comparable across kinds: the top of the list is
what a person should look at first.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from detection.inference.detections import coco_bbox
from detection.tracking.boxes import iou_matrix


@dataclass
class IssueOptions:
    score_threshold: float = 0.5  # a detection at least this sure is "confident"
    match_iou: float = 0.5  # a detection on a labelled box
    partial_iou: float = 0.1  # bad_box: the label's class overlaps at least this much (and under match_iou)
    near_iou: float = 0.3  # detections this close to a labelled box count for s_same and s_any
    missing_iou: float = 0.3  # missing: the detection overlaps every labelled box less than this


@dataclass
class ImageData:
    """One image: labelled boxes (xyxy [G, 4], category ids [G], annotation ids [G]), crowd regions [C, 4], and
    detections (xyxy [D, 4], scores [D] descending, category ids [D])."""

    file_name: str
    image_id: int
    gt_boxes: np.ndarray
    gt_cats: np.ndarray
    gt_ids: list
    crowd: np.ndarray
    det_boxes: np.ndarray
    det_scores: np.ndarray
    det_cats: np.ndarray
    iou: np.ndarray = field(init=False)  # [D, G]
    det_match: np.ndarray = field(init=False)  # [D] index of the labelled box a detection matched, -1 none
    gt_found: np.ndarray = field(init=False)  # [G] matched by a confident detection

    def __post_init__(self) -> None:
        self.iou = iou_matrix(self.det_boxes, self.gt_boxes)


def inside_crowd(box: np.ndarray, crowd: np.ndarray) -> bool:
    """Whether at least half of `box` lies inside one crowd region (COCOeval's ignore rule, by area)."""
    if not len(crowd):
        return False
    x1, y1 = np.maximum(box[0], crowd[:, 0]), np.maximum(box[1], crowd[:, 1])
    x2, y2 = np.minimum(box[2], crowd[:, 2]), np.minimum(box[3], crowd[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = max((box[2] - box[0]) * (box[3] - box[1]), 1e-9)
    return bool((inter / area).max() >= 0.5)


def match(image: ImageData, opt: IssueOptions) -> None:
    """Greedy same-class matching by score at IoU >= match_iou; sets det_match and gt_found."""
    image.det_match = np.full(len(image.det_boxes), -1)
    image.gt_found = np.zeros(len(image.gt_boxes), bool)
    taken = np.zeros(len(image.gt_boxes), bool)
    for d in range(len(image.det_boxes)):
        candidates = (image.gt_cats == image.det_cats[d]) & ~taken & (image.iou[d] >= opt.match_iou)
        if candidates.any():
            g = int(np.argmax(np.where(candidates, image.iou[d], -1)))
            taken[g], image.det_match[d] = True, g
            image.gt_found[g] = image.det_scores[d] >= opt.score_threshold


@dataclass
class Reliability:
    """The model on this dataset, per category id: precision and recall of its confident detections."""

    precision: dict
    recall: dict

    def to_dict(self, names: dict) -> dict:
        return {"precision": {names[c]: round(v, 4) for c, v in self.precision.items()},
                "recall": {names[c]: round(v, 4) for c, v in self.recall.items()}}


def reliability(images: list[ImageData], category_ids: list[int], opt: IssueOptions) -> Reliability:
    """P(c) = (confident matched + 1) / (confident + 2), R(c) = (labels found + 1) / (labels + 2)."""
    tp, conf, found, labels = ({c: 0 for c in category_ids} for _ in range(4))
    for image in images:
        for d in np.nonzero(image.det_scores >= opt.score_threshold)[0]:
            if image.det_match[d] < 0 and inside_crowd(image.det_boxes[d], image.crowd):
                continue
            conf[image.det_cats[d]] += 1
            tp[image.det_cats[d]] += int(image.det_match[d] >= 0)
        for g, cat in enumerate(image.gt_cats):
            labels[cat] += 1
            found[cat] += int(image.gt_found[g])
    return Reliability({c: (tp[c] + 1) / (conf[c] + 2) for c in category_ids},
                       {c: (found[c] + 1) / (labels[c] + 2) for c in category_ids})


def issue(image: ImageData, kind: str, score: float, names: dict, g: int | None = None, d: int | None = None) -> dict:
    """An issue record: the labelled box (for missing, the model's box and class) and the model's view of it."""
    record: dict = {"file_name": image.file_name, "kind": kind, "bbox": None, "category": None,
                    "score": round(float(score), 4), "image_id": image.image_id}
    if g is not None:
        record.update(bbox=coco_bbox(image.gt_boxes[g]), category=names[int(image.gt_cats[g])],
                      annotation_id=image.gt_ids[g])
    if d is not None:
        model = {"model_bbox": coco_bbox(image.det_boxes[d]), "model_category": names[int(image.det_cats[d])],
                 "model_score": round(float(image.det_scores[d]), 4)}
        if g is None:
            record.update(bbox=model["model_bbox"], category=model["model_category"])
        else:
            model["iou"] = round(float(image.iou[d, g]), 4)
        record.update(model)
    return record


def label_issue(image: ImageData, g: int, used: set, rel: Reliability, names: dict, opt: IssueOptions) -> dict:
    """The issue of a labelled box no confident detection of its class matched: wrong_class, bad_box or spurious."""
    iou, cat = image.iou[:, g], image.gt_cats[g]
    confident = (image.det_scores >= opt.score_threshold) & (image.det_match < 0)
    near = iou >= opt.near_iou
    same = image.det_cats == cat
    e_same = min(1.0, float(image.det_scores[near & same].max(initial=0.0)) / opt.score_threshold)
    e_any = min(1.0, float(image.det_scores[near].max(initial=0.0)) / opt.score_threshold)
    free = np.array([d not in used for d in range(len(iou))], bool)
    other = np.nonzero(confident & free & ~same & (iou >= opt.match_iou))[0]
    if len(other):
        d = int(other[np.argmax(image.det_scores[other] * iou[other])])
        score = image.det_scores[d] * rel.precision[image.det_cats[d]] * iou[d] * (1 - e_same)
        used.add(d)
        return issue(image, "wrong_class", score, names, g, d)
    best_gt = image.iou.argmax(axis=1) if image.iou.size else np.zeros(0, int)
    partial = np.nonzero(confident & free & same & (iou >= opt.partial_iou) & (iou < opt.match_iou)
                         & (best_gt == g))[0]
    if len(partial):
        d = int(partial[np.argmax(iou[partial])])
        used.add(d)
        return issue(image, "bad_box", image.det_scores[d] * rel.precision[cat] * (1 - iou[d]), names, g, d)
    nearest = int(np.argmax(iou)) if len(iou) and e_any > 0 else None
    return issue(image, "spurious", rel.recall[cat] * (1 - e_any), names, g, nearest)


def image_issues(image: ImageData, rel: Reliability, names: dict, opt: IssueOptions) -> list[dict]:
    """Every issue of one matched image (each labelled box and each detection in one issue at most)."""
    used: set = set()
    found = [label_issue(image, g, used, rel, names, opt) for g in np.nonzero(~image.gt_found)[0]]
    for d in np.nonzero(image.det_scores >= opt.score_threshold)[0]:
        if image.det_match[d] >= 0 or d in used or inside_crowd(image.det_boxes[d], image.crowd):
            continue
        nearest = float(image.iou[d].max(initial=0.0))
        if nearest < opt.missing_iou:
            score = image.det_scores[d] * rel.precision[image.det_cats[d]] * (1 - nearest)
            found.append(issue(image, "missing", score, names, None, int(d)))
    return found


def find_issues(images: list[ImageData], names: dict,
                opt: IssueOptions | None = None) -> tuple[list[dict], Reliability]:
    """All issues of the images, most likely first (each with its rank from 1), and the model's reliability.
    `names` maps category id -> name."""
    opt = opt or IssueOptions()
    for image in images:
        match(image, opt)
    rel = reliability(images, list(names), opt)
    issues = [i for image in images for i in image_issues(image, rel, names, opt)]
    issues.sort(key=lambda i: (-i["score"], i["file_name"], i["bbox"]))
    return [{"rank": k, **i} for k, i in enumerate(issues, 1)], rel
