"""Model outputs in the letterboxed frame -> COCO detections in original image pixels (`to_detections`).

Used by the evaluator, the predictor and the server, so all three answer the same.
"""
from __future__ import annotations

from typing import Sequence

import torch


def coco_bbox(box: Sequence[float]) -> list[float]:
    """One absolute [x1, y1, x2, y2] box -> COCO [x, y, w, h], rounded to 2 decimals: every answer's box."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)]


def to_detections(output: dict, scale: float, orig_size: tuple[int, int], categories: list[dict],
                  score_threshold: float | None = None, max_detections: int | None = None) -> list[dict]:
    """One image's {"boxes" xyxy, "scores", "labels" 1..K} -> [{"bbox" xywh, "score", "category_id", "category"}].

    Boxes are divided by the letterbox `scale`, clipped to the original (h, w) and sorted by score. The model's
    post-processing chose them (with the call's score threshold and max detections); `score_threshold` and
    `max_detections` only cut further (None: every one).
    """
    scores = output["scores"].detach().float().cpu()
    order = torch.argsort(scores, descending=True)
    if score_threshold is not None:
        order = order[scores[order] >= score_threshold]
    order = order[:max_detections]
    boxes = output["boxes"].detach().float().cpu()[order] / scale
    height, width = orig_size
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
    labels = output["labels"].cpu()[order].tolist()
    bad = [label for label in labels if not 1 <= label <= len(categories)]
    if bad:  # a family broke the contract; mapping it would name a wrong category
        raise ValueError(f"model emitted label {bad[0]}: labels must be 1..{len(categories)} (0 is background)")
    detections = []
    for box, score, label in zip(boxes.tolist(), scores[order].tolist(), labels):
        category = categories[label - 1]
        detections.append({
            "bbox": coco_bbox(box),
            "score": round(score, 5),
            "category_id": category["id"],
            "category": category["name"],
        })
    return detections
