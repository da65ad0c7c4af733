"""Mosaic augmentation (YOLOv4/v5): four images around a random centre, cut to one S x S training image.

Each image is resized to longest side S and placed in a quadrant of a 2S x 2S canvas meeting at the centre;
the central S x S window is kept, boxes are shifted and clipped, and boxes mostly cut away are dropped.
"""
from __future__ import annotations

import cv2
import numpy as np

from detection.data.transforms import PAD_VALUE

MIN_KEPT_AREA = 0.2  # a box keeps at least this share of its area inside the window, else it is dropped
MIN_SIDE = 2.0  # pixels


def mosaic(samples: list[tuple[np.ndarray, np.ndarray, np.ndarray]], size: int,
           rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Four (RGB image, boxes [K, 4] xyxy pixels, labels [K]) -> one size x size (image, boxes, labels)."""
    canvas = np.full((2 * size, 2 * size, 3), PAD_VALUE, np.uint8)
    cx, cy = (int(v) for v in rng.uniform(size / 2, 3 * size / 2, 2))
    all_boxes, all_labels = [], []
    for quadrant, (image, boxes, labels) in enumerate(samples):
        scale = size / max(image.shape[:2])
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        h, w = image.shape[:2]
        x0 = cx - w if quadrant in (0, 2) else cx  # 0: top left, 1: top right, 2: bottom left, 3: bottom right
        y0 = cy - h if quadrant in (0, 1) else cy
        paste(canvas, image, x0, y0)
        all_boxes.append(boxes.reshape(-1, 4) * scale + [x0, y0, x0, y0])
        all_labels.append(labels.reshape(-1))
    window = canvas[size // 2: size // 2 + size, size // 2: size // 2 + size]
    boxes = np.concatenate(all_boxes).astype(np.float32) - size // 2
    return np.ascontiguousarray(window), *kept_boxes(boxes, np.concatenate(all_labels), size)


def paste(canvas: np.ndarray, image: np.ndarray, x0: int, y0: int) -> None:
    """Copy `image` onto `canvas` with its top-left corner at (x0, y0), cropping what falls outside."""
    h, w = image.shape[:2]
    left, top = max(0, -x0), max(0, -y0)
    right, bottom = min(w, canvas.shape[1] - x0), min(h, canvas.shape[0] - y0)
    if right > left and bottom > top:
        canvas[y0 + top: y0 + bottom, x0 + left: x0 + right] = image[top:bottom, left:right]


def kept_boxes(boxes: np.ndarray, labels: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Boxes clipped to [0, size]; those left with under MIN_KEPT_AREA of their area or a side under 2 px go."""
    clipped = boxes.clip(0, size)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    width, height = clipped[:, 2] - clipped[:, 0], clipped[:, 3] - clipped[:, 1]
    keep = (width >= MIN_SIDE) & (height >= MIN_SIDE) & (width * height >= MIN_KEPT_AREA * np.maximum(area, 1e-6))
    return clipped[keep], labels[keep].astype(np.int64)
