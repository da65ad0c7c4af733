"""Square crops around a target for Siamese trackers: context-padded size, one affine warp, mean-colour fill.

Shared by the SiamFC tracker (tracking time) and its training pairs, so both cut crops the same way.
"""
from __future__ import annotations

import cv2
import numpy as np


def context_side(width: float, height: float, context: float = 0.5) -> float:
    """SiamFC's exemplar side for a w x h target: sqrt((w + p)(h + p)) with p = context * (w + h)."""
    pad = context * (width + height)
    return float(np.sqrt((width + pad) * (height + pad)))


def crop_square(image: np.ndarray, center: tuple[float, float] | np.ndarray, side: float | tuple[float, float],
                out_size: int, fill: np.ndarray | tuple[float, ...]) -> np.ndarray:
    """The square of `side` image pixels (or (side_x, side_y), a stretch) centred on `center` (x, y), resized to
    out_size x out_size; whatever falls outside the image is `fill` (the mean colour: SiamFC's padding).

    image: [H, W, 3] uint8; coordinates are continuous (pixel i covers [i, i + 1]), as box corners are.
    """
    side_x, side_y = (side, side) if np.isscalar(side) else side
    scale_x, scale_y = out_size / side_x, out_size / side_y
    cx, cy = float(center[0]), float(center[1])
    matrix = np.array([[scale_x, 0.0, (0.5 - cx) * scale_x + out_size / 2 - 0.5],
                       [0.0, scale_y, (0.5 - cy) * scale_y + out_size / 2 - 0.5]])
    border = tuple(float(v) for v in np.asarray(fill).reshape(-1))
    return cv2.warpAffine(image, matrix, (out_size, out_size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=border)


def box_in_crop(box: np.ndarray, center: tuple[float, float] | np.ndarray, side: float | tuple[float, float],
                out_size: int) -> np.ndarray:
    """A box [4] xyxy in image pixels -> the same box in the crop of `crop_square(image, center, side, out_size)`."""
    side_x, side_y = (side, side) if np.isscalar(side) else side
    scale = np.array([out_size / side_x, out_size / side_y] * 2)
    return (np.asarray(box, np.float64) - np.array([center[0], center[1]] * 2)) * scale + out_size / 2
