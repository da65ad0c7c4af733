"""What one evaluation reports: COCO metrics, per-class AP, the confusion matrix and its pictures (pr_curves.png,
confusion_matrix.png, val_predictions.jpg), for the trainer and for `evaluate_checkpoint` (the eval command)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from tqdm import tqdm

from datasets.core.errors import UserError
from datasets.core.images import read_bgr, read_rgb, write_image
from datasets.view.plot import save_figure
from detection.config import EVAL_MAX_DETECTIONS, EVAL_SCORE_THRESHOLD
from detection.data.coco import CocoDetection, collate
from detection.data.transforms import build_transform
from detection.engine.checkpoint import LoadedModel
from detection.engine.confusion import IOU_THRESHOLD, SCORE_THRESHOLD, confusion_matrix, confusion_record
from detection.engine.evaluator import metrics_of, predict_loader, run_cocoeval
from detection.engine.per_class import per_class_ap, per_class_table, precision_at, rounded
from detection.inference.predictor import Predictor
from detection.inference.slice_options import SliceOptions
from detection.inference.slicing import predict_sliced
from detection.weights.remap import match_by_name

GALLERY_IMAGES = 6
PICTURES = ("pr_curves.png", "confusion_matrix.png", "val_predictions.jpg")
SIZES = ("small", "medium", "large")  # COCOeval's area ranges


@dataclass
class Evaluation:
    """Everything one evaluation found; `record()` is what eval.json and metrics.jsonl store."""

    metrics: dict[str, float]  # the 12 COCOeval numbers by name
    table: str  # COCOeval's printed summary
    per_class: list[dict]  # category, category_id, images, instances, AP, AP50, AP75
    confusion: dict  # confusion_record(): labels, counts [K + 1, K + 1], thresholds
    images: int

    def per_class_table(self) -> str:
        return per_class_table(self.per_class, self.metrics, self.images)

    def sizes_line(self) -> str:
        """AP per COCO size range in one line: small (area under 32x32 px), medium (to 96x96), large; '-' where
        the split has no object of that size (COCOeval's -1)."""
        parts = []
        for size in SIZES:
            value = self.metrics[f"bbox_mAP_{size}"]
            parts.append(f"{size} {value:.3f}" if value >= 0 else f"{size} -")
        return "AP by object size (small < 32x32 px <= medium < 96x96 px <= large): " + "  ".join(parts) + "\n"

    def record(self) -> dict:
        return {**{k: round(v, 5) for k, v in self.metrics.items()}, "per_class": rounded(self.per_class),
                "confusion_matrix": self.confusion}


def evaluate_results(coco: COCO, results: list[dict], images_dir: str | Path | None = None,
                     plots: str | Path | None = None, score_threshold: float = SCORE_THRESHOLD) -> Evaluation:
    """Score COCO `results` against `coco`; with `plots` (a folder) also draw the pictures there, the
    gallery only with `images_dir` (where its images are). `score_threshold` is the confusion matrix's and
    the gallery's."""
    evaluator, table = run_cocoeval(coco, results)
    names = [coco.cats[c]["name"] for c in sorted(coco.getCatIds())]
    counts = confusion_matrix(coco, results, score_threshold, IOU_THRESHOLD)
    found = Evaluation(metrics_of(evaluator), table, per_class_ap(coco, evaluator),
                       confusion_record(counts, names, score_threshold), len(coco.getImgIds()))
    if plots is not None:
        write_pictures(Path(plots), coco, results, evaluator, found, Path(images_dir) if images_dir else None)
    return found


def evaluate_checkpoint(loaded: LoadedModel, annotations: str, images: str, *, batch_size: int = 8,
                        score_threshold: float = EVAL_SCORE_THRESHOLD, max_detections: int = EVAL_MAX_DETECTIONS,
                        plots: str | Path | None = None, confusion_score: float = SCORE_THRESHOLD,
                        progress: bool = True, slicing: SliceOptions | None = None) -> Evaluation:
    """A detector checkpoint (load_model(path, expect="detector")) on a COCO split, run at evaluation's own
    post-processing values; with `plots`, the pictures go there. A checkpoint of more classes than the split (a COCO
    import) is scored on the split's classes, matched by name (split_ids).
    Whole images are letterboxed through a DataLoader (kept at their own size for a model that resizes them itself,
    as the trainer validates it); with `slicing`, each original image is read and cut into windows through a
    Predictor instead (detection.inference.slicing), `slicing.batch` windows at a time."""
    cfg = loaded.config
    transform = build_transform(cfg.data.input_size, train=False, letterbox=not loaded.model.resizes_itself)
    dataset = CocoDetection(annotations, images, transform)
    ids = split_ids(loaded.categories, dataset.categories, annotations)
    if slicing is not None and slicing.size:
        results = predict_split_sliced(Predictor.from_loaded(loaded), dataset, slicing, score_threshold,
                                       max_detections, progress)
    else:
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=collate)
        results = predict_loader(loaded.model, loader, loaded.categories, loaded.device, progress=progress,
                                 score_threshold=score_threshold, max_detections=max_detections)
    results = [{**r, "category_id": ids[r["category_id"]]} for r in results if ids[r["category_id"]] is not None]
    return evaluate_results(dataset.coco, results, images, plots, confusion_score)


def split_ids(ours: list[dict], split: list[dict], annotations: str) -> dict[int, int | None]:
    """The checkpoint's category ids -> the split's ids of the same categories: the same ids when the split has the
    checkpoint's categories; else matched by name (case and spaces ignored), for a checkpoint of more classes than
    the split (a COCO import on a split of some of COCO's): its other classes (None) are left out of the results.
    UserError when the split has a class the checkpoint does not know."""
    if [c["id"] for c in split] == [c["id"] for c in ours]:
        return {c["id"]: c["id"] for c in ours}
    positions = match_by_name(ours, split)
    missing = [c["name"] for c, at in zip(split, positions) if at is None]
    if missing:
        raise UserError(f"{annotations}: categories {missing} are not the checkpoint's "
                        f"({', '.join(c['name'] for c in ours)}); to fine-tune onto them: detpipe weights import "
                        f"CHECKPOINT --categories {annotations} --out NEW.pt")
    ids: dict[int, int | None] = {c["id"]: None for c in ours}
    ids.update({ours[at]["id"]: c["id"] for c, at in zip(split, positions)})
    return ids


def predict_split_sliced(predictor: Predictor, dataset: CocoDetection, slicing: SliceOptions, score_threshold: float,
                         max_detections: int, progress: bool = True) -> list[dict]:
    """COCO results with image_id of every image of the split, each read at its own size and sliced."""
    results = []
    for image_id in tqdm(dataset.ids, desc="eval (sliced)", leave=False, disable=None if progress else True):
        image = read_rgb(dataset.images_dir / dataset.coco.imgs[image_id]["file_name"])
        for det in predict_sliced(predictor, image, slicing, score_threshold, max_detections):
            results.append({"image_id": image_id, "bbox": det["bbox"], "score": det["score"],
                            "category_id": det["category_id"]})
    return results


def write_pictures(out: Path, coco: COCO, results: list[dict], evaluator: COCOeval | None, found: Evaluation,
                   images_dir: Path | None) -> None:
    """pr_curves.png, confusion_matrix.png and (with `images_dir`) val_predictions.jpg into `out`, atomically."""
    from detection.viz.gallery import gallery
    from detection.viz.matrix import confusion_figure
    from detection.viz.pr import pr_figure

    names = found.confusion["labels"][:-1]
    recall, precision = pr_arrays(evaluator, found.per_class)
    objects = sum(r["instances"] for r in found.per_class)
    title = f"precision-recall at IoU 0.5: {found.images} images, {objects} objects"
    save_figure(pr_figure(recall, precision, names, [r["AP50"] for r in found.per_class], title),
                out / "pr_curves.png")
    counts = np.array(found.confusion["counts"])
    save_figure(confusion_figure(counts, names, found.confusion["score_threshold"], IOU_THRESHOLD),
                out / "confusion_matrix.png")
    if images_dir is not None:
        items = gallery_items(coco, results, images_dir)
        write_image(out / "val_predictions.jpg", gallery(items, found.confusion["score_threshold"]))


def pr_arrays(evaluator: COCOeval | None, per_class: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """COCOeval's recall thresholds [R] and precision [R, K] at IoU 0.5 (zeros when nothing was detected)."""
    if evaluator is None:
        precision = np.array([[0.0 if r["instances"] else -1.0 for r in per_class]] * 101)
        return np.linspace(0, 1, 101), precision
    return evaluator.params.recThrs, precision_at(evaluator, 0.5)[0]


def gallery_items(coco: COCO, results: list[dict], images_dir: Path) -> list[tuple]:
    """(file name, BGR image, ground truth, predictions) of the first GALLERY_IMAGES images by id."""
    items = []
    for image_id in sorted(coco.getImgIds())[:GALLERY_IMAGES]:
        info = coco.imgs[image_id]
        truth = [{"bbox": a["bbox"], "category_id": a["category_id"],
                  "category": coco.cats[a["category_id"]]["name"] + (" (crowd)" if a.get("iscrowd") else "")}
                 for a in coco.imgToAnns.get(image_id, [])]
        predicted = [{**r, "category": coco.cats[r["category_id"]]["name"]}
                     for r in results if r["image_id"] == image_id]
        predicted.sort(key=lambda r: -r["score"])
        items.append((Path(info["file_name"]).name, read_bgr(images_dir / info["file_name"]), truth, predicted))
    return items
