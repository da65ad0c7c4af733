"""Detection confusion matrix: classes plus background, at an IoU threshold and a score threshold.

Rows are the ground truth, columns the prediction; the last row and column are background.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

IOU_THRESHOLD = 0.5
SCORE_THRESHOLD = 0.25


def box_iou(dets: np.ndarray, gts: np.ndarray, crowd: bool = False) -> np.ndarray:
    """IoU [D, G] of COCO [x, y, w, h] boxes (pycocotools); with `crowd`, intersection over the detection."""
    if len(dets) == 0 or len(gts) == 0:
        return np.zeros((len(dets), len(gts)))
    return np.asarray(mask_utils.iou(dets.tolist(), gts.tolist(), [int(crowd)] * len(gts))).reshape(len(dets), -1)


def greedy_pairs(iou: np.ndarray, allowed: np.ndarray, used_d: np.ndarray, used_g: np.ndarray,
                 threshold: float) -> list[tuple[int, int]]:
    """(detection, ground truth) pairs with IoU >= threshold, best IoU first, each side used once."""
    d_index, g_index = np.nonzero((iou >= threshold) & allowed)
    pairs = []
    for i in np.argsort(-iou[d_index, g_index], kind="stable"):
        d, g = d_index[i], g_index[i]
        if not used_d[d] and not used_g[g]:
            used_d[d] = used_g[g] = True
            pairs.append((int(d), int(g)))
    return pairs


def image_confusion(matrix: np.ndarray, gt: tuple[np.ndarray, np.ndarray], dt: tuple[np.ndarray, np.ndarray],
                    crowd: np.ndarray, iou_threshold: float) -> None:
    """Add one image to `matrix`: gt and dt are (boxes [N, 4] xywh, class indices [N]).

    Same-class pairs are matched first, then pairs across classes (the confusions); what is left is
    a miss (ground truth -> background) or a false detection (background -> class), except a
    detection lying on a crowd region, which is ignored as COCOeval ignores it.
    """
    (gt_boxes, gt_cls), (dt_boxes, dt_cls) = gt, dt
    background = matrix.shape[0] - 1
    iou = box_iou(dt_boxes, gt_boxes)
    used_d, used_g = np.zeros(len(dt_boxes), bool), np.zeros(len(gt_boxes), bool)
    same = dt_cls[:, None] == gt_cls[None, :]
    for allowed in (same, ~same):
        for d, g in greedy_pairs(iou, allowed, used_d, used_g, iou_threshold):
            matrix[gt_cls[g], dt_cls[d]] += 1
    on_crowd = (box_iou(dt_boxes, crowd, crowd=True) >= iou_threshold).any(axis=1)
    for d in np.nonzero(~used_d & ~on_crowd)[0]:
        matrix[background, dt_cls[d]] += 1
    for g in np.nonzero(~used_g)[0]:
        matrix[gt_cls[g], background] += 1


def confusion_matrix(coco_gt: COCO, results: list[dict], score_threshold: float = SCORE_THRESHOLD,
                     iou_threshold: float = IOU_THRESHOLD) -> np.ndarray:
    """Counts [K + 1, K + 1] over every image of `coco_gt`: rows ground truth, columns prediction, in
    category-id order, the last of each being background. Detections scoring under the threshold are left out."""
    cat_ids = sorted(coco_gt.getCatIds())
    index = {c: i for i, c in enumerate(cat_ids)}
    matrix = np.zeros((len(cat_ids) + 1, len(cat_ids) + 1), dtype=np.int64)
    by_image = defaultdict(list)
    for r in results:
        if r["score"] >= score_threshold:
            by_image[r["image_id"]].append(r)
    for image_id in sorted(coco_gt.getImgIds()):
        anns = coco_gt.imgToAnns.get(image_id, [])
        objects = [a for a in anns if not a.get("iscrowd", 0)]
        crowd = np.array([a["bbox"] for a in anns if a.get("iscrowd", 0)], dtype=float).reshape(-1, 4)
        dets = by_image.get(image_id, [])
        gt = (np.array([a["bbox"] for a in objects], dtype=float).reshape(-1, 4),
              np.array([index[a["category_id"]] for a in objects], dtype=np.int64))
        dt = (np.array([d["bbox"] for d in dets], dtype=float).reshape(-1, 4),
              np.array([index[d["category_id"]] for d in dets], dtype=np.int64))
        image_confusion(matrix, gt, dt, crowd, iou_threshold)
    return matrix


def confusion_record(matrix: np.ndarray, names: list[str], score_threshold: float,
                     iou_threshold: float = IOU_THRESHOLD) -> dict:
    """The matrix as eval.json stores it."""
    return {"labels": [*names, "background"], "rows": "ground truth", "columns": "prediction",
            "iou_threshold": iou_threshold, "score_threshold": score_threshold, "counts": matrix.tolist()}
