"""COCO evaluation with pycocotools COCOeval: the 12 standard numbers by name.

`coco_metrics` scores a results list; `evaluate` runs a model over a loader first, with evaluation's own
post-processing values (detection.config EVAL_*), not the checkpoint's: COCO AP needs the low-scoring detections too.
"""
from __future__ import annotations

import contextlib
import io

import numpy as np
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from tqdm import tqdm

from detection.config import EVAL_MAX_DETECTIONS, EVAL_SCORE_THRESHOLD
from detection.data.coco import images_to
from detection.inference.detections import to_detections

METRIC_NAMES = [
    "bbox_mAP", "bbox_mAP_50", "bbox_mAP_75", "bbox_mAP_small", "bbox_mAP_medium", "bbox_mAP_large",
    "bbox_AR_1", "bbox_AR_10", "bbox_AR_100", "bbox_AR_small", "bbox_AR_medium", "bbox_AR_large",
]


def run_cocoeval(coco_gt: COCO, results: list[dict]) -> tuple[COCOeval | None, str]:
    """COCOeval bbox on `results` (COCO results format), evaluated, accumulated and summarised -> (the
    COCOeval, with its `stats` and `eval["precision"]`; printed table). None when there are no results."""
    if not results:
        return None, "no detections: every metric is 0\n"
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        coco_dt = coco_gt.loadRes([dict(r) for r in results])
        evaluator = COCOeval(coco_gt, coco_dt, "bbox")
        evaluator.params.imgIds = sorted(coco_gt.getImgIds())
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator, _summary_lines(buffer.getvalue())


def metrics_of(evaluator: COCOeval | None) -> dict[str, float]:
    """The 12 COCOeval numbers by name (all 0 for None: no detections)."""
    if evaluator is None:
        return {name: 0.0 for name in METRIC_NAMES}
    return dict(zip(METRIC_NAMES, (float(v) for v in np.asarray(evaluator.stats))))


def coco_metrics(coco_gt: COCO, results: list[dict]) -> tuple[dict, str]:
    """COCOeval bbox on `results` (COCO results format) -> ({name: value}, printed table)."""
    evaluator, table = run_cocoeval(coco_gt, results)
    return metrics_of(evaluator), table


def _summary_lines(text: str) -> str:
    return "".join(line + "\n" for line in text.splitlines() if line.lstrip().startswith("Average"))


def given_proposals(targets: list[dict], device: torch.device) -> list[torch.Tensor] | None:
    """The proposals the data path gave each image (R-CNN, Fast R-CNN), or None."""
    if not targets or "proposals" not in targets[0]:
        return None
    return [t["proposals"].to(device) for t in targets]


@torch.no_grad()
def predict_loader(model: torch.nn.Module, loader, categories: list[dict], device: torch.device,
                   progress: bool = False, score_threshold: float = EVAL_SCORE_THRESHOLD,
                   max_detections: int = EVAL_MAX_DETECTIONS) -> list[dict]:
    """Run `model` over a CocoDetection loader -> COCO results with image_id (original pixels), the model's
    post-processing run at `score_threshold` and `max_detections` (evaluation's, not the checkpoint's)."""
    model.eval()
    results = []
    for images, targets in tqdm(loader, desc="eval", leave=False, disable=None if progress else True):
        if isinstance(images, list):  # images at their own sizes (a model that resizes itself)
            outputs = model.detect_by_size(images_to(images, device), score_threshold, max_detections)
        else:
            outputs = model(images.to(device), None, given_proposals(targets, device),
                            score_threshold=score_threshold, max_detections=max_detections)
        for output, target in zip(outputs, targets):
            for det in to_detections(output, target["scale"], target["orig_size"], categories):
                results.append({"image_id": target["image_id"], "bbox": det["bbox"],
                                "score": det["score"], "category_id": det["category_id"]})
    return results


def evaluate(model: torch.nn.Module, loader, device: torch.device, progress: bool = False) -> dict:
    """COCO metrics of `model` on the loader's dataset (a CocoDetection)."""
    dataset = loader.dataset
    results = predict_loader(model, loader, dataset.categories, device, progress)
    metrics, _ = coco_metrics(dataset.coco, results)
    return metrics
