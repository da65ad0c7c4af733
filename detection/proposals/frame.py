"""The frame every proposal method works in: check the image, shrink it to max_side, bring the boxes back.

Methods subclass `ScaledProposer` and propose on the shrunk image; `finish` keeps the promises of base.py.
"""
from __future__ import annotations

import abc

import cv2
import numpy as np

from datasets.core.errors import UserError

Scale = tuple[float, float]  # (x, y): original pixels per shrunk pixel


def check_image(image: np.ndarray) -> np.ndarray:
    """The image itself when it is RGB uint8 [H, W, 3] with H, W >= 1; UserError otherwise."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        dtype = getattr(image, "dtype", type(image).__name__)
        raise UserError(f"proposals need an RGB uint8 image [H, W, 3], got shape {shape} of {dtype}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise UserError(f"proposals need an image of at least 1x1 pixels, got {image.shape[1]}x{image.shape[0]}")
    return image


def shrink(image: np.ndarray, max_side: int) -> tuple[np.ndarray, Scale]:
    """RGB [H, W, 3] -> (contiguous RGB no longer than `max_side` on either side, (sx, sy) to scale boxes back).

    Large reductions first take every k-th pixel (k leaving at least twice the target size), then average
    with INTER_AREA: a 10000x10000 view (np.broadcast_to) is never copied whole.
    """
    height, width = image.shape[:2]
    if max(height, width) <= max_side:
        return np.ascontiguousarray(image), (1.0, 1.0)
    factor = max_side / max(height, width)
    size = (max(1, round(width * factor)), max(1, round(height * factor)))  # cv2: (width, height)
    step = int(1 / factor) // 2
    if step >= 2:
        image = image[::step, ::step]
    small = cv2.resize(np.ascontiguousarray(image), size, interpolation=cv2.INTER_AREA)
    return small.reshape(size[1], size[0], 3), (width / size[0], height / size[1])


def unique_rows(boxes: np.ndarray) -> np.ndarray:
    """Boxes [P, 4] without repeated rows, the first of each kept, order otherwise unchanged."""
    if len(boxes) < 2:
        return boxes
    _, first = np.unique(boxes, axis=0, return_index=True)
    return boxes[np.sort(first)]


def finish(boxes: np.ndarray, scale: Scale, height: int, width: int, min_size: int) -> np.ndarray:
    """Ranked boxes [P, 4] xyxy in shrunk pixels -> float32 [P', 4] xyxy in the original height x width.

    Scaled back, clipped to the image, boxes narrower or lower than min_size dropped (min_size is capped at
    the image's own side, so a 1x1 image keeps its whole-image box), exact duplicates removed, order kept.
    Never empty: when nothing survives the answer is the whole-image box.
    """
    sx, sy = scale
    out = np.asarray(boxes, np.float64).reshape(-1, 4) * np.array([sx, sy, sx, sy])
    out[:, 0::2] = out[:, 0::2].clip(0, width)
    out[:, 1::2] = out[:, 1::2].clip(0, height)
    out = out.astype(np.float32)
    wide = (out[:, 2] - out[:, 0]) >= min(min_size, width)
    tall = (out[:, 3] - out[:, 1]) >= min(min_size, height)
    out = unique_rows(out[wide & tall & (out[:, 2] > out[:, 0]) & (out[:, 3] > out[:, 1])])
    if len(out) == 0:
        out = np.array([[0, 0, width, height]], np.float32)
    return out


def check_sizes(max_side: int, min_size: int) -> None:
    """UserError for a max_side below 1 or a negative min_size."""
    if int(max_side) < 1:
        raise UserError(f"proposals.max_side must be at least 1, got {max_side}")
    if int(min_size) < 0:
        raise UserError(f"proposals.min_size must be at least 0, got {min_size}")


class ScaledProposer(abc.ABC):
    """A picklable proposer: RGB uint8 [H, W, 3] -> float32 [P, 4] xyxy in its pixels, best first.

    Subclasses implement `propose` on the image shrunk to `max_side`; this class does the rest.
    """

    def __init__(self, max_side: int, min_size: int) -> None:
        check_sizes(max_side, min_size)
        self.max_side = int(max_side)
        self.min_size = int(min_size)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        image = check_image(image)
        small, scale = shrink(image, self.max_side)
        boxes = self.propose(small)
        return finish(boxes, scale, image.shape[0], image.shape[1], self.min_size)

    @abc.abstractmethod
    def propose(self, image: np.ndarray) -> np.ndarray:
        """Contiguous RGB uint8 [h, w, 3] -> boxes [P, 4] xyxy in its pixels (x2, y2 exclusive), best first."""
