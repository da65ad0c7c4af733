"""YOLO's anchor-to-target assignment across scales, kept apart from the loss (target assignment is not loss).

A box is a target of every anchor within `threshold` of its width/height ratio, at its centre's cell and the two
nearest neighbouring cells (YOLOv5's rule); its best anchor over all levels always takes it, however small it is.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Assigned:
    """T positive (image, anchor, row, col) places on one level, with their boxes [T, 4] xyxy and labels [T]."""

    image: torch.Tensor
    anchor: torch.Tensor
    row: torch.Tensor
    col: torch.Tensor
    boxes: torch.Tensor
    labels: torch.Tensor

    @property
    def count(self) -> int:
        return int(self.image.numel())


def shape_ratio(wh: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """Worst width or height ratio between boxes [T, 2] and anchors [..., 2] -> [T, ...] (1 = same shape)."""
    ratio = wh.view(wh.shape[0], *([1] * (anchors.dim() - 1)), 2) / anchors.unsqueeze(0)
    return torch.max(ratio, 1 / ratio).amax(dim=-1)


@dataclass
class BatchBoxes:
    """A batch's boxes in one list, with their shape ratio to every anchor; made once, read by every level."""

    image: torch.Tensor  # [T] index of the image in the batch
    boxes: torch.Tensor  # [T, 4] xyxy pixels
    labels: torch.Tensor  # [T] in 1..C
    ratio: torch.Tensor  # [T, L, A] worst width/height ratio to each anchor
    best: torch.Tensor  # [T] index of the best anchor over all levels, level * A + anchor


def batch_boxes(targets: list[dict], anchor_wh: torch.Tensor) -> BatchBoxes:
    """targets[i] = {"boxes" [K, 4] xyxy pixels, "labels" [K] in 1..C}; anchor_wh [L, A, 2] in pixels."""
    device = anchor_wh.device
    image = torch.cat([torch.full((len(t["boxes"]),), i, dtype=torch.int64, device=device)
                       for i, t in enumerate(targets)])
    boxes = torch.cat([t["boxes"].reshape(-1, 4).float() for t in targets]).to(device)
    labels = torch.cat([t["labels"].reshape(-1) for t in targets]).to(device)
    ratio = shape_ratio((boxes[:, 2:] - boxes[:, :2]).clamp(min=1e-3), anchor_wh)
    return BatchBoxes(image, boxes, labels, ratio, ratio.flatten(1).argmin(dim=1))


def assign_level(batch: BatchBoxes, level: int, stride: int, grid: tuple[int, int], threshold: float) -> Assigned:
    """Positives of `level` (grid = (H, W) of its map) among a batch's boxes."""
    match = batch.ratio[:, level] < threshold
    per_level = batch.ratio.shape[2]
    own = batch.best // per_level == level
    match[own, batch.best[own] % per_level] = True
    box_idx, anchor = match.nonzero(as_tuple=True)
    centre = (batch.boxes[box_idx, :2] + batch.boxes[box_idx, 2:]) / 2 / stride  # in cells, (x, y)
    places = neighbour_cells(centre, grid)
    which = torch.cat([torch.arange(len(box_idx), device=box_idx.device)[keep] for _, _, keep in places])
    rows = torch.cat([r[keep] for r, _, keep in places])
    cols = torch.cat([c[keep] for _, c, keep in places])
    chosen = box_idx[which]
    return Assigned(batch.image[chosen], anchor[which], rows, cols, batch.boxes[chosen], batch.labels[chosen])


def assign_targets(targets: list[dict], anchor_wh: torch.Tensor, level: int, stride: int,
                   grid: tuple[int, int], threshold: float) -> Assigned:
    """Positives of `level` for a batch (one call of `batch_boxes` and `assign_level`)."""
    return assign_level(batch_boxes(targets, anchor_wh), level, stride, grid, threshold)


def neighbour_cells(centre: torch.Tensor, grid: tuple[int, int]) -> list[tuple[torch.Tensor, ...]]:
    """(row, col, valid) for the centre's cell, its nearer horizontal and its nearer vertical neighbour."""
    height, width = grid
    col = centre[:, 0].floor().long().clamp(0, width - 1)
    row = centre[:, 1].floor().long().clamp(0, height - 1)
    fx, fy = centre[:, 0] - col, centre[:, 1] - row
    step_x = torch.where(fx < 0.5, -1, 1)
    step_y = torch.where(fy < 0.5, -1, 1)
    nx, ny = col + step_x, row + step_y
    everyone = torch.ones_like(col, dtype=torch.bool)
    return [(row, col, everyone), (row, nx, (nx >= 0) & (nx < width)), (ny, col, (ny >= 0) & (ny < height))]
