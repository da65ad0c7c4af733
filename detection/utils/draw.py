"""Draw detections (COCO [x, y, w, h] boxes, 'name score' labels) on an image with OpenCV.

Shares colours, labels and the enlargement of small images with `python -m datasets draw`.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from datasets.draw import MIN_SIDE, color_of, put_label


def draw_detections(image_bgr: np.ndarray, detections: list[dict], enlarge: bool = True) -> np.ndarray:
    """A copy of the BGR image with each detection drawn; small images are enlarged when `enlarge`."""
    scale = max(1, math.ceil(MIN_SIDE / max(image_bgr.shape[:2]))) if enlarge else 1
    canvas = cv2.resize(image_bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    for det in detections:
        x, y, w, h = (v * scale for v in det["bbox"])
        color = color_of(det["category_id"])
        p1, p2 = (int(round(x)), int(round(y))), (int(round(x + w)), int(round(y + h)))
        cv2.rectangle(canvas, p1, p2, color, 2, cv2.LINE_AA)
        put_label(canvas, f"{det.get('category', det['category_id'])} {det['score']:.2f}", p1[0], p1[1], color)
    return canvas
