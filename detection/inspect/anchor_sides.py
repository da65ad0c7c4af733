"""The largest anchor (or default box) side on each map a detector's head reads, from its family's options.

faster_rcnn: anchor_sizes and aspect_ratios; ssd: its options' box_sizes; yolo: anchors.
"""
from __future__ import annotations

import math
from typing import Any, Callable


def faster_rcnn_sides(options: Any, maps: list[str], input_size: int) -> dict[str, float]:
    """torchvision's AnchorGenerator: a size s with ratio r is s / sqrt(r) wide and s * sqrt(r) high."""
    stretch = math.sqrt(max(max(r, 1 / r) for r in options.aspect_ratios))
    if len(maps) == 1:
        return {maps[0]: max(options.anchor_sizes) * stretch}
    if len(options.anchor_sizes) != len(maps):
        return {}
    return {name: size * stretch for name, size in zip(maps, options.anchor_sizes)}


def ssd_sides(options: Any, maps: list[str], input_size: int) -> dict[str, float]:
    """SSDOptions.box_sizes: scales, ratios per level, torchvision's clip and fixed_size included."""
    sizes = options.box_sizes(len(maps), input_size)
    return {name: max(max(w, h) for w, h in level) for name, level in zip(maps, sizes)}


def yolo_sides(options: Any, maps: list[str], input_size: int) -> dict[str, float]:
    return {name: max(level) for name, level in zip(maps, options.anchors)}


READERS: dict[str, Callable[[Any, list[str], int], dict[str, float]]] = {
    "faster_rcnn": faster_rcnn_sides, "ssd": ssd_sides, "yolo": yolo_sides}


def largest_anchor_sides(family: str | None, options: Any, maps: list[str], input_size: int) -> dict[str, float]:
    """Map name -> longest side (input pixels) of its largest anchor; {} for a family without anchor options."""
    reader = READERS.get(family or "")
    if reader is None or options is None:
        return {}
    return reader(options, maps, input_size)
