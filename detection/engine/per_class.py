"""Per-class AP, AP50 and AP75 read from COCOeval's own `eval["precision"]` array, and their table.

No second AP implementation: the numbers are slices of the array COCOeval's summary averages.
"""
from __future__ import annotations

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

ALL_AREAS, MAX_DETS = 0, -1  # COCOeval's area range "all" and its largest maxDets (100)


def precision_at(evaluator: COCOeval, iou: float | None) -> np.ndarray:
    """COCOeval's precision [T, R, K] (all areas, 100 detections), at one IoU threshold ([1, R, K]) or all."""
    precision = evaluator.eval["precision"][:, :, :, ALL_AREAS, MAX_DETS]
    if iou is None:
        return precision
    index = int(np.argmin(np.abs(evaluator.params.iouThrs - iou)))
    return precision[index:index + 1]


def mean_defined(values: np.ndarray) -> float | None:
    """Mean of the entries COCOeval defines (> -1), as its summary takes it; None when there are none."""
    defined = values[values > -1]
    return float(np.mean(defined)) if defined.size else None


def instance_counts(coco_gt: COCO) -> dict[int, tuple[int, int]]:
    """{category_id: (images with it, non-crowd instances)} of the ground truth."""
    images: dict[int, set] = {c: set() for c in coco_gt.getCatIds()}
    instances = dict.fromkeys(images, 0)
    for ann in coco_gt.dataset["annotations"]:
        if not ann.get("iscrowd", 0):
            images[ann["category_id"]].add(ann["image_id"])
            instances[ann["category_id"]] += 1
    return {c: (len(images[c]), instances[c]) for c in images}


def per_class_ap(coco_gt: COCO, evaluator: COCOeval | None) -> list[dict]:
    """One row per category, by id: category, category_id, images, instances, AP, AP50, AP75.

    AP is None for a category without ground truth (COCOeval leaves its precision at -1); with no
    detections at all (`evaluator` None) a category with ground truth has AP 0.
    """
    counts = instance_counts(coco_gt)
    rows = []
    for k, cat_id in enumerate(sorted(coco_gt.getCatIds())):
        images, instances = counts[cat_id]
        row = {"category": coco_gt.cats[cat_id]["name"], "category_id": cat_id, "images": images,
               "instances": instances}
        for key, iou in (("AP", None), ("AP50", 0.5), ("AP75", 0.75)):
            if evaluator is None:
                row[key] = 0.0 if instances else None
            else:
                row[key] = mean_defined(precision_at(evaluator, iou)[:, :, k])
        rows.append(row)
    return rows


def rounded(rows: list[dict], digits: int = 5) -> list[dict]:
    """The rows with AP numbers rounded, for JSON."""
    return [{k: round(v, digits) if isinstance(v, float) else v for k, v in row.items()} for row in rows]


def per_class_table(rows: list[dict], metrics: dict, total_images: int) -> str:
    """The rows as a text table under an `all` row (the overall bbox_mAP, _50, _75)."""
    width = max([len("category")] + [len(r["category"]) for r in rows])
    header = f"{'category':<{width}}  {'images':>6}  {'instances':>9}  {'AP':>6}  {'AP50':>6}  {'AP75':>6}"
    total = {"category": "all", "images": total_images, "instances": sum(r["instances"] for r in rows),
             "AP": metrics["bbox_mAP"], "AP50": metrics["bbox_mAP_50"], "AP75": metrics["bbox_mAP_75"]}
    lines = [header]
    for row in [total, *rows]:
        numbers = "  ".join("     -" if row[k] is None else f"{row[k]:6.3f}" for k in ("AP", "AP50", "AP75"))
        lines.append(f"{row['category']:<{width}}  {row['images']:>6}  {row['instances']:>9}  {numbers}")
    return "\n".join(lines) + "\n"
