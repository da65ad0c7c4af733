"""The val_predictions.jpg grid: a few validation images, ground truth beside the model's predictions.

Boxes and labels are drawn as `detection.predict` draws them, on tiles of one size whatever the image size.
"""
from __future__ import annotations

import cv2
import numpy as np

from detection.viz.detections import draw_detections

TILE = 400  # pixels: each image is fitted into TILE x TILE
CAPTION = 30  # pixels of caption strip above each tile
GAP, PAIR_GAP = 6, 28  # between ground truth and prediction; between pairs
PAIRS_PER_ROW = 2
BACKGROUND = (235, 235, 235)


def fit_tile(image_bgr: np.ndarray, boxes: list[dict]) -> np.ndarray:
    """The image scaled to fit TILE x TILE (boxes scaled with it and drawn), padded to the full tile."""
    height, width = image_bgr.shape[:2]
    scale = TILE / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    interpolation = cv2.INTER_NEAREST if scale > 1 else cv2.INTER_AREA
    resized = cv2.resize(image_bgr, size, interpolation=interpolation)
    scaled = [{**b, "bbox": [v * scale for v in b["bbox"]]} for b in boxes]
    tile = np.full((TILE, TILE, 3), BACKGROUND, np.uint8)
    tile[:size[1], :size[0]] = draw_detections(resized, scaled, enlarge=False)
    return tile


def captioned(tile: np.ndarray, text: str) -> np.ndarray:
    """The tile under a white strip with `text` (cut to fit the width)."""
    strip = np.full((CAPTION, tile.shape[1], 3), 255, np.uint8)
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.55
    while len(text) > 4 and cv2.getTextSize(text, font, scale, 1)[0][0] > tile.shape[1] - 8:
        text = text[:-5] + "..."
    cv2.putText(strip, text, (4, CAPTION - 10), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([strip, tile])


def pair(name: str, image_bgr: np.ndarray, truth: list[dict], predicted: list[dict], score_threshold: float):
    """Ground truth tile, gap, prediction tile, with captions."""
    left = captioned(fit_tile(image_bgr, truth), f"{name}: ground truth ({len(truth)})")
    right = captioned(fit_tile(image_bgr, predicted), f"predicted, score >= {score_threshold:g} ({len(predicted)})")
    gap = np.full((left.shape[0], GAP, 3), BACKGROUND, np.uint8)
    return np.hstack([left, gap, right])


def gallery(items: list[tuple[str, np.ndarray, list[dict], list[dict]]], score_threshold: float) -> np.ndarray:
    """items: (name, BGR image, ground-truth boxes, predictions) with COCO [x, y, w, h] boxes in the
    image's pixels -> one BGR picture, PAIRS_PER_ROW pairs a row. Predictions under the threshold are left out."""
    pairs = [pair(name, image, truth, [p for p in predicted if p["score"] >= score_threshold], score_threshold)
             for name, image, truth, predicted in items]
    if not pairs:
        raise ValueError("no images to draw")
    blank = np.full_like(pairs[0], 255)
    rows = []
    for start in range(0, len(pairs), PAIRS_PER_ROW):
        chunk = pairs[start:start + PAIRS_PER_ROW]
        chunk += [blank] * (PAIRS_PER_ROW - len(chunk)) if len(pairs) > PAIRS_PER_ROW else []
        gap = np.full((chunk[0].shape[0], PAIR_GAP, 3), 255, np.uint8)
        row = [part for p in chunk for part in (p, gap)][:-1]
        rows.append(np.hstack(row))
    spacer = np.full((PAIR_GAP // 2, rows[0].shape[1], 3), 255, np.uint8)
    return np.vstack([part for r in rows for part in (r, spacer)][:-1])
