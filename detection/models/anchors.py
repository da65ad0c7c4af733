"""Anchor and default-box generation from a body's declared maps, shared by the single-shot families.

Boxes are absolute [x1, y1, x2, y2] in the S x S input frame, ordered level, row (y), column (x), anchor.
"""
from __future__ import annotations

import math

import torch


def grid_anchors(sizes: list[list[tuple[float, float]]], strides: list[int],
                 grid_shapes: list[tuple[int, int]]) -> list[torch.Tensor]:
    """Per level: a box of each (w, h) in `sizes[level]` centred on every cell -> [H * W * A, 4] xyxy.

    Cell (i, j) of a map with stride s is centred at ((j + 0.5) * s, (i + 0.5) * s) in input pixels.
    """
    levels = []
    for level_sizes, stride, (height, width) in zip(sizes, strides, grid_shapes):
        wh = torch.tensor(level_sizes, dtype=torch.float32).reshape(-1, 2)  # [A, 2]
        ys = (torch.arange(height, dtype=torch.float32) + 0.5) * stride
        xs = (torch.arange(width, dtype=torch.float32) + 0.5) * stride
        cy, cx = torch.meshgrid(ys, xs, indexing="ij")
        centres = torch.stack([cx, cy], dim=-1).reshape(-1, 1, 2)  # [H*W, 1, 2]
        boxes = torch.cat([centres - wh / 2, centres + wh / 2], dim=-1)  # [H*W, A, 4]
        levels.append(boxes.reshape(-1, 4))
    return levels


def ssd_box_sizes(levels: int, input_size: int, min_scale: float, max_scale: float,
                  aspect_ratios: list[float] | list[list[float]], scales: list[float] | None = None,
                  clip: bool = False) -> list[list[tuple[float, float]]]:
    """SSD's default boxes (Liu et al., eq. 4) as (w, h) in pixels per level.

    Scales s_k run linearly from min_scale to max_scale (fractions of the input), or are the given `scales`
    (levels + 1 of them, torchvision's DefaultBoxGenerator); each level has a square box of s_k, one of
    sqrt(s_k * s_k+1), and for every ratio r a box of s_k*sqrt(r) by s_k/sqrt(r) and its transpose:
    2 + 2 * len(ratios) boxes per cell. `aspect_ratios`: one list for every level, or a list per level.
    `clip`: sides at most the input (torchvision's clip).
    """
    if scales is None:
        if levels == 1:
            scales = [min_scale, max_scale]
        else:
            step = (max_scale - min_scale) / (levels - 1)
            scales = [min_scale + step * k for k in range(levels)] + [1.0]
    per_level = aspect_ratios if aspect_ratios and isinstance(aspect_ratios[0], list) else [aspect_ratios] * levels
    sizes = []
    for k in range(levels):
        s, extra = scales[k] * input_size, math.sqrt(scales[k] * scales[k + 1]) * input_size
        boxes = [(s, s), (extra, extra)]
        for r in per_level[k]:
            boxes += [(s * math.sqrt(r), s / math.sqrt(r)), (s / math.sqrt(r), s * math.sqrt(r))]
        sizes.append([(min(w, input_size), min(h, input_size)) for w, h in boxes] if clip else boxes)
    return sizes
