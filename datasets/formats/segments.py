"""One polygon per instance, as YOLO-seg lines need: parts and holes joined by zero-width bridges.

A bridge runs out and back along one segment, so even-odd filling (pycocotools, OpenCV) leaves it empty.
"""
from __future__ import annotations

import numpy as np

from datasets.core.coco import annotation_mask, mask_outlines


def join_outlines(outlines: list[np.ndarray]) -> np.ndarray:
    """One closed (k, 2) point sequence: the first outline, then each other one entered by a bridge.

    Each bridge leaves from the first outline's start point, to the nearest point of the next outline.
    """
    anchor = outlines[0][:1]
    path = [outlines[0], anchor]
    for outline in outlines[1:]:
        nearest = int(np.argmin(((outline - anchor) ** 2).sum(axis=1)))
        entered = np.roll(outline, -nearest, axis=0)
        path += [entered, entered[:1], anchor]
    return np.concatenate(path).astype(float)


def annotation_outlines(ann: dict, height: int, width: int) -> list[np.ndarray]:
    """Outlines of an annotation: its polygons, its RLE mask's parts and holes, or its box."""
    segmentation = ann.get("segmentation")
    if isinstance(segmentation, list):
        outlines = [np.asarray(poly, float).reshape(-1, 2) for poly in segmentation if len(poly) >= 6]
    elif segmentation:
        outlines = mask_outlines(annotation_mask(ann, height, width))[0]
    else:
        outlines = []
    if not outlines:
        x, y, w, h = ann["bbox"]
        outlines = [np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], float)]
    return outlines


def instance_polygon(ann: dict, height: int, width: int) -> list[float]:
    """x1, y1, x2, y2, ... in pixels: the whole instance (every part and hole) as one polygon."""
    return [float(v) for v in join_outlines(annotation_outlines(ann, height, width)).reshape(-1)]
