"""Detections of a batch as fixed-size tensors, what an exported graph outputs: boxes [N, D, 4] xyxy, scores [N, D],
labels [N, D] int64 and count [N] int64, D = max_detections, best first; rows past `count` are zeros (label 0).
"""
from __future__ import annotations

import torch
from torchvision.models.detection._utils import _topk_min
from torchvision.ops import nms

from detection.config import PostprocessConfig
from detection.models.base import DenseOutputs

OUTPUT_NAMES = ["boxes", "scores", "labels", "count"]
Padded = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def row_index(like: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """0, 1, 2, ... along `dim` of `like`'s shape, as int64; built from the tensor so a traced graph keeps its size."""
    return torch.ones_like(like, dtype=torch.int64).cumsum(dim) - 1


def dense_padded(dense: DenseOutputs, opts: PostprocessConfig) -> Padded:
    """A single-shot family's batch candidates -> what `Detector.detect_dense` gives per image, for every image
    at once (so a traced graph takes any batch size): threshold, best top_k pairs, shared postprocess, padded."""
    classes = dense.scores.shape[-1]
    flat = dense.scores.flatten(1)  # [N, A * K]
    passing = torch.where(flat >= opts.score_threshold, flat, torch.full_like(flat, -1.0))
    top, index = passing.topk(_topk_min(passing, dense.top_k, 1), dim=1)  # [N, T]
    boxes = dense.boxes.gather(1, (index // classes).unsqueeze(-1).expand(-1, -1, 4))
    keep = top >= opts.score_threshold
    image = row_index(index)
    return postprocess_padded(boxes[keep], top[keep], (index % classes + 1)[keep], image[keep],
                              flat[:, 0], opts, dense.nms)


def postprocess_padded(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, image: torch.Tensor,
                       rows: torch.Tensor, opts: PostprocessConfig, nms: bool = True) -> Padded:
    """A batch's candidates (boxes [M, 4], scores [M], labels [M], image index [M]; `rows` [N] any values, one per
    image) -> the shared postprocess of each image (models/base.py: threshold, NMS unless `nms` is False, best
    max_detections), padded."""
    keep = scores >= opts.score_threshold
    boxes, scores, labels, image = boxes[keep], scores[keep], labels[keep], image[keep]
    if nms:
        keep = grouped_nms(boxes, scores, labels, image, opts)  # by descending score
    else:
        keep = scores.argsort(descending=True)
    boxes, scores, labels, image = boxes[keep], scores[keep], labels[keep], image[keep]
    first = (image.unsqueeze(1) == row_index(rows).unsqueeze(0)).to(torch.int64)  # [M, N] one-hot
    rank = (first.cumsum(0) * first).sum(1) - 1  # place among its image's detections, best first
    return scatter_padded(boxes, scores, labels, image, rank, rows, opts.max_detections)


def grouped_nms(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, image: torch.Tensor,
                opts: PostprocessConfig) -> torch.Tensor:
    """NMS within each (image, class), or each image when class_agnostic: torchvision's batched_nms offset trick,
    classes apart along x and images along y. Indices by descending score."""
    span = torch.cat([boxes.flatten(), boxes.new_zeros(1)]).abs().max() * 2 + 1  # safe when empty
    across = torch.zeros_like(labels) if opts.class_agnostic else labels
    down = image.to(boxes.dtype) * span
    right = across.to(boxes.dtype) * span
    return nms(boxes + torch.stack([right, down, right, down], dim=1), scores, opts.nms_iou)


def scatter_padded(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, image: torch.Tensor,
                   rank: torch.Tensor, rows: torch.Tensor, max_detections: int) -> Padded:
    """Detections with their image index and rank in it -> padded [N, D] outputs (ranks >= D are dropped)."""
    take = rank < max_detections
    slot = image[take] * max_detections + rank[take]
    zeros = torch.zeros_like(rows, dtype=torch.float32).unsqueeze(1).repeat(1, max_detections).flatten()  # [N * D]
    out_boxes = zeros.unsqueeze(1).repeat(1, 4).index_put((slot,), boxes[take].to(torch.float32))
    out_scores = zeros.index_put((slot,), scores[take].to(torch.float32))
    out_labels = zeros.to(torch.int64).index_put((slot,), labels[take].to(torch.int64))
    count = (image[take].unsqueeze(1) == row_index(rows).unsqueeze(0)).to(torch.int64).sum(0)
    return (out_boxes.view(-1, max_detections, 4), out_scores.view(-1, max_detections),
            out_labels.view(-1, max_detections), count)


def packed(outputs: list[dict], rows: torch.Tensor, max_detections: int) -> Padded:
    """Per-image detections the contract's forward gave (already post-processed) -> padded outputs."""
    boxes = torch.cat([out["boxes"] for out in outputs])
    scores = torch.cat([out["scores"] for out in outputs])
    labels = torch.cat([out["labels"] for out in outputs])
    image = torch.cat([torch.full_like(out["labels"], i, dtype=torch.int64) for i, out in enumerate(outputs)])
    rank = torch.cat([row_index(out["labels"]) for out in outputs])
    return scatter_padded(boxes, scores, labels, image, rank, rows, max_detections)


def unpadded(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, count: torch.Tensor) -> list[dict]:
    """Padded outputs -> the contract's per-image dicts {"boxes" [D_i, 4], "scores" [D_i], "labels" [D_i]}."""
    return [{"boxes": b[:n], "scores": s[:n], "labels": l[:n].to(torch.int64)}
            for b, s, l, n in zip(boxes, scores, labels, count.tolist())]
