"""Draw detections (COCO [x, y, w, h] boxes, 'name score' labels) on an image with OpenCV: the predict command's
drawn copies, the evaluation gallery, the service's drawn answer. Shares colours and labels with `detpipe data draw`.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from datasets.view.draw import MIN_SIDE, color_of, label_size, put_label


def free_anchor(shape: tuple, text: str, p1: tuple, p2: tuple, taken: list) -> int | None:
    """Where `text`'s label can sit (the y of its bottom edge) without covering a label in `taken`:
    above the box, else inside its top, else below it; None when all three are taken. Adds it to `taken`."""
    width, height = label_size(text)
    for bottom in (max(p1[1], height), p1[1] + height, p2[1] + height):
        rect = (p1[0], bottom - height, p1[0] + width, bottom)
        if bottom > shape[0] or any(rect[0] < t[2] and t[0] < rect[2] and rect[1] < t[3] and t[1] < rect[3]
                                    for t in taken):
            continue
        taken.append(rect)
        return bottom
    return None


def draw_detections(image_bgr: np.ndarray, detections: list[dict], enlarge: bool = True) -> np.ndarray:
    """A copy of the BGR image with each detection drawn; small images are enlarged when `enlarge`.

    Detections come best first: the best box is drawn on top, and its label gets the place above it; a
    label that would cover an earlier one moves inside or below its box, or is left out (the box stays).
    A detection without "score" (a ground-truth box) is labelled with its category alone.
    """
    scale = max(1, math.ceil(MIN_SIDE / max(image_bgr.shape[:2]))) if enlarge else 1
    canvas = cv2.resize(image_bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    drawn = []
    for det in detections:
        x, y, w, h = (v * scale for v in det["bbox"])
        name = str(det.get("category", det["category_id"]))
        text = f"{name} {det['score']:.2f}" if "score" in det else name
        drawn.append(((int(round(x)), int(round(y))), (int(round(x + w)), int(round(y + h))),
                      color_of(det["category_id"]), text))
    for p1, p2, color, _ in reversed(drawn):
        cv2.rectangle(canvas, p1, p2, color, 2, cv2.LINE_AA)
    taken: list = []
    for p1, p2, color, text in drawn:
        bottom = free_anchor(canvas.shape, text, p1, p2, taken)
        if bottom is not None:
            put_label(canvas, text, p1[0], bottom, color)
    return canvas
