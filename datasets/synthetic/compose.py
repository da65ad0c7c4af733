"""Compose one frame: sprites scaled, placed and alpha-blended over a background, back to front.

Answers each object's box ([x, y, w, h] of its opaque pixels) and the visible fraction of those pixels.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from datasets.synthetic.sprites import Sprite


@dataclass
class Layer:
    """A sprite as drawn in one frame: BGR float32 [h, w, 3], opacity [h, w], top-left corner (x, y)."""

    pixels: np.ndarray
    alpha: np.ndarray
    x: int
    y: int


def place(sprite: Sprite, center: np.ndarray, extent: float) -> Layer:
    """The sprite resized so its longer side is `extent` pixels, centred on `center` (x, y)."""
    height, width = sprite.alpha.shape
    factor = extent / max(height, width)
    size = (max(int(round(width * factor)), 2), max(int(round(height * factor)), 2))
    pixels = cv2.resize(sprite.pixels, size, interpolation=cv2.INTER_LINEAR).astype(np.float32)
    alpha = cv2.resize(sprite.alpha, size, interpolation=cv2.INTER_LINEAR)
    x = int(round(center[0] - size[0] / 2))
    y = int(round(center[1] - size[1] / 2))
    return Layer(pixels, alpha, x, y)


def frame_window(layer: Layer, shape: tuple[int, int]) -> tuple[slice, slice, slice, slice] | None:
    """(frame rows, frame cols, layer rows, layer cols) of the part inside the frame; None if none is."""
    h, w = layer.alpha.shape
    top, left = max(layer.y, 0), max(layer.x, 0)
    bottom, right = min(layer.y + h, shape[0]), min(layer.x + w, shape[1])
    if bottom <= top or right <= left:
        return None
    return (slice(top, bottom), slice(left, right),
            slice(top - layer.y, bottom - layer.y), slice(left - layer.x, right - layer.x))


def opaque(layer: Layer, shape: tuple[int, int]) -> np.ndarray:
    """Frame-sized bool mask of the layer's opaque pixels (opacity above one half)."""
    mask = np.zeros(shape, bool)
    window = frame_window(layer, shape)
    if window is not None:
        rows, cols, lrows, lcols = window
        mask[rows, cols] = layer.alpha[lrows, lcols] > 0.5
    return mask


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """[x, y, w, h] of a mask's pixels; zeros for an empty mask."""
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return (0, 0, 0, 0)
    return (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))


def render_frame(background: np.ndarray, layers: list[Layer]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Blend `layers` (back to front) over `background`: frame uint8, boxes [N, 4] xywh, visibility [N]."""
    shape = background.shape[:2]
    canvas = background.astype(np.float32)
    for layer in layers:
        window = frame_window(layer, shape)
        if window is not None:
            rows, cols, lrows, lcols = window
            alpha = layer.alpha[lrows, lcols, None]
            canvas[rows, cols] = canvas[rows, cols] * (1 - alpha) + layer.pixels[lrows, lcols] * alpha
    masks = [opaque(layer, shape) for layer in layers]
    covered = np.zeros(shape, bool)
    visibility = np.zeros(len(layers))
    for index in range(len(layers) - 1, -1, -1):
        total = masks[index].sum()
        visibility[index] = (masks[index] & ~covered).sum() / total if total else 0.0
        covered |= masks[index]
    boxes = np.array([mask_box(mask) for mask in masks], dtype=np.int64).reshape(-1, 4)
    return np.clip(np.round(canvas), 0, 255).astype(np.uint8), boxes, visibility
