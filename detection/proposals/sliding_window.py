"""Multi-scale sliding windows ranked by a cheap edge score (in the spirit of Edge Boxes): a fast baseline.

Edges are a colour Canny map; every window is scored from its integral image in constant time.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from detection.proposals.base import PROPOSERS, ProposalConfig
from detection.proposals.frame import ScaledProposer

CANNY_THRESHOLDS = (50, 125)  # on the 3x3 Sobel gradient (L2) of 0..255 pixels, strongest channel


def edge_map(image: np.ndarray) -> np.ndarray:
    """RGB uint8 [H, W, 3] -> float64 [H, W] of 0/1: Canny edges of the channel with the strongest gradient
    at each pixel (so a red shape on a green background of equal brightness still has its contour)."""
    smooth = cv2.GaussianBlur(image, (0, 0), 1.0)
    dx = cv2.Sobel(smooth, cv2.CV_16S, 1, 0)
    dy = cv2.Sobel(smooth, cv2.CV_16S, 0, 1)
    strongest = (np.abs(dx.astype(np.int32)) + np.abs(dy)).argmax(axis=2)[..., None]
    dx = np.ascontiguousarray(np.take_along_axis(dx, strongest, axis=2)[..., 0])
    dy = np.ascontiguousarray(np.take_along_axis(dy, strongest, axis=2)[..., 0])
    return (cv2.Canny(dx, dy, *CANNY_THRESHOLDS, L2gradient=True) > 0).astype(np.float64)


MAX_IOU = 0.7  # no two windows overlap more than this


def aligned_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of window sizes a [2] and b [K, 2] (w, h) placed at the same corner: their largest over all places."""
    inter = np.minimum(a[0], b[:, 0]) * np.minimum(a[1], b[:, 1])
    return inter / (a[0] * a[1] + b[:, 0] * b[:, 1] - inter)


def window_sizes(height: int, width: int, smallest: int, step: float, ratios: tuple[float, ...]) -> np.ndarray:
    """int64 [S, 2] (w, h) window sizes: sides smallest * step**k up to the image's longer side, for each aspect
    ratio w/h, clipped to the image; the whole image first. A size closer than MAX_IOU (aligned_iou) to an
    earlier one is left out: clipping makes such near-twins."""
    longest = max(height, width)
    first = min(smallest, longest)
    sides = first * step ** np.arange(int(math.log(longest / first) / math.log(step)) + 2)  # the last >= longest
    sizes = [(width, height)] + [(side * math.sqrt(r), side / math.sqrt(r)) for side in sides for r in ratios]
    sizes = np.clip(np.round(np.array(sizes)), 1, [width, height]).astype(np.int64)
    kept = [sizes[0]]
    for size in sizes[1:]:
        if aligned_iou(size, np.array(kept)).max() <= MAX_IOU:
            kept.append(size)
    return np.array(kept)


def place(length: int, window: int, stride: float) -> np.ndarray:
    """Start positions of a window along a side, from 0 to length - window, evenly spaced, whole pixels, at
    least `stride` pixels apart (and less than twice ceil(stride))."""
    count = int((length - window) // math.ceil(stride)) + 1
    return np.round(np.linspace(0, length - window, count)).astype(np.int64)


def windows(height: int, width: int, smallest: int = 16, step: float = math.sqrt(2),
            ratios: tuple[float, ...] = (0.5, 1.0, 2.0), stride: float = 0.2) -> np.ndarray:
    """All windows int64 [N, 4] xyxy (x2, y2 exclusive) inside an height x width image, each size slid with a
    stride of `stride` times its width (x) and height (y) or a little more. Two windows of one size overlap by
    IoU (1 - stride) / (1 + stride) at most, of two sizes by MAX_IOU at most: no near-duplicates to suppress."""
    out = []
    for w, h in window_sizes(height, width, smallest, step, ratios):
        xs, ys = np.meshgrid(place(width, w, stride * w), place(height, h, stride * h))
        xs, ys = xs.ravel(), ys.ravel()
        out.append(np.stack([xs, ys, xs + w, ys + h], axis=1))
    return np.concatenate(out)


def box_sums(integral: np.ndarray, x1, y1, x2, y2) -> np.ndarray:
    """Sums of the image under boxes [x1, x2) x [y1, y2) (arrays, clipped to the image) from its integral
    image [H+1, W+1]; empty boxes sum to 0."""
    height, width = integral.shape[0] - 1, integral.shape[1] - 1
    x1, x2 = np.clip(x1, 0, width), np.clip(x2, 0, width)
    y1, y2 = np.clip(y1, 0, height), np.clip(y2, 0, height)
    x2, y2 = np.maximum(x2, x1), np.maximum(y2, y1)
    return integral[y2, x2] - integral[y1, x2] - integral[y2, x1] + integral[y1, x1]


def edge_scores(edges: np.ndarray, boxes: np.ndarray, band: float = 0.25) -> np.ndarray:
    """float64 [N]: each window's objectness from the edge map [H, W] (0/1) and windows [N, 4] xyxy.

    For each of the four sides, take a strip of depth `band` x the window's width (left, right) or height (top,
    bottom) just inside the side and one as deep just outside it; the side's value is the edge density inside
    minus the density outside (outside the image counts as no edges). The score is the mean of the two smallest
    side values: high when edges run along every side (a contour the window encloses tightly) and none lies
    just outside (a window cutting through an object has the object's contour there); a window on plain
    background scores 0. The mean of two, not the minimum, forgives one side the coarse grid misses.
    """
    integral = cv2.integral(edges, sdepth=cv2.CV_64F)
    x1, y1, x2, y2 = boxes.T
    bx = np.maximum(1, np.round(band * (x2 - x1))).astype(np.int64)
    by = np.maximum(1, np.round(band * (y2 - y1))).astype(np.int64)
    strips = [  # (inside, outside) per side, as (x1, y1, x2, y2) and the strip's area
        ((x1, y1, x1 + bx, y2), (x1 - bx, y1, x1, y2), bx * (y2 - y1)),
        ((x2 - bx, y1, x2, y2), (x2, y1, x2 + bx, y2), bx * (y2 - y1)),
        ((x1, y1, x2, y1 + by), (x1, y1 - by, x2, y1), by * (x2 - x1)),
        ((x1, y2 - by, x2, y2), (x1, y2, x2, y2 + by), by * (x2 - x1)),
    ]
    sides = [(box_sums(integral, *inner) - box_sums(integral, *outer)) / area for inner, outer, area in strips]
    return np.sort(sides, axis=0)[:2].mean(axis=0)


class SlidingWindow(ScaledProposer):
    """Windows of sides 16 * sqrt(2)**k px (of the shrunk image), aspect ratios 0.5, 1, 2, stride 1/5 of the
    window, ranked by `edge_scores`; the best `limit` are kept.

    The windows are deduplicated by construction (`windows`: no two overlap by more than IoU 0.7), which
    spares a non-maximum suppression over thousands of boxes; `finish` drops exact twins that scaling back
    to a tiny image makes.
    """

    def __init__(self, max_side: int = 500, min_size: int = 4, limit: int = 4000) -> None:
        super().__init__(max_side, min_size)
        self.limit = limit

    def propose(self, image: np.ndarray) -> np.ndarray:
        """RGB uint8 [h, w, 3] -> boxes [P, 4] xyxy (x2, y2 exclusive), best first."""
        boxes = windows(*image.shape[:2])
        scores = edge_scores(edge_map(image), boxes)
        return boxes[np.argsort(-scores, kind="stable")[: self.limit]]


@PROPOSERS.register("sliding_window")
def sliding_window(cfg: ProposalConfig) -> SlidingWindow:
    """Sliding windows with the edge score, on images shrunk to `cfg.max_side` (cfg.mode is not used)."""
    return SlidingWindow(cfg.max_side, cfg.min_size)
