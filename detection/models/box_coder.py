"""Box encoding and decoding against anchors (SSD / Faster R-CNN style, with variances), shared by families.

Boxes are absolute [x1, y1, x2, y2]; deltas are [dx, dy, dw, dh] scaled by `weights` (10, 10, 5, 5).
"""
from __future__ import annotations

import math

import torch

WEIGHTS = (10.0, 10.0, 5.0, 5.0)  # 1 / SSD's variances (0.1, 0.1, 0.2, 0.2)
MAX_LOG_SCALE = math.log(1000.0 / 16)  # torchvision's clamp of dw, dh before exp


def _centre_size(boxes: torch.Tensor) -> tuple[torch.Tensor, ...]:
    width, height = boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]
    return boxes[..., 0] + width / 2, boxes[..., 1] + height / 2, width, height


def encode(boxes: torch.Tensor, anchors: torch.Tensor, weights: tuple[float, ...] = WEIGHTS) -> torch.Tensor:
    """Deltas [..., 4] that turn `anchors` [..., 4] into `boxes` [..., 4] (both xyxy, positive size)."""
    bx, by, bw, bh = _centre_size(boxes)
    ax, ay, aw, ah = _centre_size(anchors)
    wx, wy, ww, wh = weights
    return torch.stack([wx * (bx - ax) / aw, wy * (by - ay) / ah,
                        ww * torch.log(bw / aw), wh * torch.log(bh / ah)], dim=-1)


def decode(deltas: torch.Tensor, anchors: torch.Tensor, weights: tuple[float, ...] = WEIGHTS) -> torch.Tensor:
    """Boxes [..., 4] xyxy from `deltas` [..., 4] applied to `anchors` [..., 4]; the inverse of `encode`."""
    ax, ay, aw, ah = _centre_size(anchors)
    wx, wy, ww, wh = weights
    cx, cy = ax + deltas[..., 0] / wx * aw, ay + deltas[..., 1] / wy * ah
    w = aw * torch.exp((deltas[..., 2] / ww).clamp(max=MAX_LOG_SCALE))
    h = ah * torch.exp((deltas[..., 3] / wh).clamp(max=MAX_LOG_SCALE))
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)
