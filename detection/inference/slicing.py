"""Sliced inference for large images with small objects (as SAHI does): overlapping windows run through the
model in batches, boxes moved to image pixels and merged across windows by class-wise NMS or greedy NMM."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torchvision.ops import batched_nms, box_area, box_convert

from detection.inference.detections import coco_bbox
from detection.inference.slice_options import SliceOptions

Window = tuple[int, int, int, int]  # (x1, y1, x2, y2) of a window in the image's pixels


class Predicts(Protocol):
    """What slicing needs of a predictor (a checkpoint's or an ONNX graph's): detections per RGB image."""

    def predict(self, images: list[np.ndarray], score_threshold: float | None = None,
                max_detections: int | None = None) -> list[list[dict]]: ...


@dataclass
class SliceTimes:
    """Seconds spent in one sliced call: cutting windows, the model, and moving + merging boxes."""

    cut: float = 0.0
    model: float = 0.0
    merge: float = 0.0
    windows: int = 0


def starts(length: int, size: int, overlap: float) -> list[int]:
    """Window starts along one side: a step of size * (1 - overlap), the last window flush with the border."""
    if size >= length:
        return [0]
    step = max(1, int(size * (1 - overlap)))
    out = list(range(0, length - size, step))
    return out + [length - size]


def windows(width: int, height: int, size: int, overlap: float) -> list[Window]:
    """(x1, y1, x2, y2) of every window, row by row; a side shorter than `size` is one window of that side."""
    return [(x, y, min(x + size, width), min(y + size, height))
            for y in starts(height, size, overlap) for x in starts(width, size, overlap)]


def shifted(detections: list[dict], dx: int, dy: int) -> list[dict]:
    """A window's detections moved into the whole image's pixels."""
    return [{**d, "bbox": [d["bbox"][0] + dx, d["bbox"][1] + dy, d["bbox"][2], d["bbox"][3]]} for d in detections]


def as_tensors(detections: list[dict]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """COCO detections -> boxes [N, 4] xyxy, scores [N], category ids [N]."""
    if not detections:
        return torch.zeros((0, 4)), torch.zeros(0), torch.zeros(0, dtype=torch.int64)
    boxes = box_convert(torch.tensor([d["bbox"] for d in detections], dtype=torch.float32), "xywh", "xyxy")
    scores = torch.tensor([d["score"] for d in detections], dtype=torch.float32)
    return boxes, scores, torch.tensor([d["category_id"] for d in detections], dtype=torch.int64)


def intersection_over_smaller(box: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
    """[M] intersection of one xyxy `box` with each of `others` [M, 4], over the smaller of the two areas."""
    top_left = torch.maximum(box[:2], others[:, :2])
    bottom_right = torch.minimum(box[2:], others[:, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(dim=1)
    smaller = torch.minimum(box_area(box[None]), box_area(others)).clamp(min=1e-6)
    return inter / smaller


def greedy_nmm(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor,
               threshold: float) -> tuple[torch.Tensor, list[int]]:
    """SAHI's GREEDYNMM: best first, each box absorbs the lower-scoring boxes of its class that overlap it by
    intersection over the smaller box >= threshold; returns the merged (union) boxes and the kept indices."""
    order = torch.argsort(scores, descending=True)
    taken = torch.zeros(len(scores), dtype=torch.bool)
    merged, kept = [], []
    for i in order.tolist():
        if taken[i]:
            continue
        rest = (~taken) & (labels == labels[i])
        rest[i] = False
        idx = torch.nonzero(rest).squeeze(1)
        group = idx[intersection_over_smaller(boxes[i], boxes[idx]) >= threshold] if len(idx) else idx
        taken[group] = True
        taken[i] = True
        members = boxes[torch.cat([torch.tensor([i]), group])]
        merged.append(torch.cat([members[:, :2].min(dim=0).values, members[:, 2:].max(dim=0).values]))
        kept.append(i)
    return (torch.stack(merged) if merged else boxes[:0]), kept


def merge(detections: list[dict], options: SliceOptions, max_detections: int | None) -> list[dict]:
    """Detections gathered from every window (image pixels) -> one set, by score, at most `max_detections`."""
    boxes, scores, labels = as_tensors(detections)
    if options.merge == "nms":
        keep = batched_nms(boxes, scores, labels, options.merge_threshold).tolist()
        out_boxes = boxes[keep]
    else:
        out_boxes, keep = greedy_nmm(boxes, scores, labels, options.merge_threshold)
    out = [{**detections[index], "bbox": coco_bbox(box)} for box, index in zip(out_boxes.tolist(), keep)]
    out.sort(key=lambda d: -d["score"])
    return out[:max_detections]


def cut(image: np.ndarray, options: SliceOptions) -> tuple[list[Window], list[np.ndarray]]:
    """The windows of one RGB image [H, W, 3] and their crops (views, no copy), row by row."""
    height, width = image.shape[:2]
    boxes = windows(width, height, options.size, options.overlap)
    return boxes, [image[y1:y2, x1:x2] for x1, y1, x2, y2 in boxes]


def wants_full(boxes: list[Window], options: SliceOptions) -> bool:
    """Whether the whole image runs too: asked for (options.full) and more than one window."""
    return options.full and len(boxes) > 1


def combine(boxes: list[Window], answers: list[list[dict]], options: SliceOptions, max_detections: int | None,
            full: list[dict] | None = None) -> list[dict]:
    """One image's detections from its windows' answers (window pixels, one list per window of `boxes`) and the
    whole image's (`full`, or None): moved into image pixels and merged, at most `max_detections`. The answers may
    come from anywhere (a predictor here, the service's batch queue), so long as each is one window's."""
    found = [d for (x1, y1, _, _), answer in zip(boxes, answers) for d in shifted(answer, x1, y1)]
    found += full or []
    if len(boxes) == 1 and full is None:
        return found[:max_detections]
    return merge(found, options, max_detections)


def predict_sliced(predictor: Predicts, image: np.ndarray, options: SliceOptions,
                   score_threshold: float | None = None, max_detections: int | None = None,
                   times: SliceTimes | None = None) -> list[dict]:
    """Detections on one RGB image [H, W, 3] from its windows (and the whole image with options.full), in the
    image's COCO [x, y, w, h] pixels. score_threshold and max_detections are the model's post-processing of each
    window (None: the checkpoint's); max_detections also cuts the merged answer, which None leaves whole (a large
    image may hold more objects than the checkpoint's max). `times`, when given, receives the seconds per part."""
    times = times if times is not None else SliceTimes()
    start = time.perf_counter()
    boxes, crops = cut(image, options)
    times.cut += time.perf_counter() - start
    answers: list[list[dict]] = []
    full = None
    for first in range(0, len(crops), options.batch):
        start = time.perf_counter()
        answers += predictor.predict(crops[first:first + options.batch], score_threshold, max_detections)
        times.model += time.perf_counter() - start
    if wants_full(boxes, options):
        start = time.perf_counter()
        full = predictor.predict([image], score_threshold, max_detections)[0]
        times.model += time.perf_counter() - start
    start = time.perf_counter()
    result = combine(boxes, answers, options, max_detections, full)
    times.merge += time.perf_counter() - start
    times.windows += len(boxes)
    return result


def predict_images(predictor: Predicts, images: list[np.ndarray], options: SliceOptions | None,
                   score_threshold: float | None = None, max_detections: int | None = None) -> list[list[dict]]:
    """Detections per image: sliced when options.size is set, else the predictor's own whole-image batch."""
    if options is None or not options.size:
        return predictor.predict(images, score_threshold, max_detections)
    return [predict_sliced(predictor, image, options, score_threshold, max_detections) for image in images]
