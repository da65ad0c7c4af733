"""Draw detections (COCO [x, y, w, h] boxes, labels, scores) on an image with OpenCV."""
from __future__ import annotations

import cv2
import numpy as np

PALETTE = [(56, 56, 255), (151, 157, 255), (31, 112, 255), (29, 178, 255), (49, 210, 207), (10, 249, 72),
           (23, 204, 146), (134, 219, 61), (52, 147, 26), (187, 212, 0), (168, 153, 44), (255, 194, 0)]


def color_for(category_id: int) -> tuple[int, int, int]:
    return PALETTE[category_id % len(PALETTE)]


def draw_detections(image_bgr: np.ndarray, detections: list[dict]) -> np.ndarray:
    """A copy of the BGR image with each detection's box and 'name score' label drawn."""
    out = image_bgr.copy()
    thickness = max(1, round(max(out.shape[:2]) / 400))
    font_scale = max(0.35, max(out.shape[:2]) / 1000)
    for det in detections:
        x, y, w, h = det["bbox"]
        p1, p2 = (int(round(x)), int(round(y))), (int(round(x + w)), int(round(y + h)))
        color = color_for(det["category_id"])
        cv2.rectangle(out, p1, p2, color, thickness, cv2.LINE_AA)
        label = f"{det.get('category', det['category_id'])} {det['score']:.2f}"
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
        top = max(p1[1] - th - base, 0)
        cv2.rectangle(out, (p1[0], top), (p1[0] + tw, top + th + base), color, -1)
        cv2.putText(out, label, (p1[0], top + th), cv2.FONT_HERSHEY_SIMPLEX, font_scale,
                    (255, 255, 255), 1, cv2.LINE_AA)
    return out
