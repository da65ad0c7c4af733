"""Selective search's region features (Uijlings et al. 2013): colour spaces, colour and texture histograms.

Pixels are binned once per colour space; a segmentation's histograms are then one np.bincount over labels.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage

COLOUR_BINS = 25  # per channel
TEXTURE_BINS = 10  # per orientation and channel
ORIENTATIONS = 8


def colour_space(rgb: np.ndarray, name: str) -> np.ndarray:
    """RGB uint8 [H, W, 3] -> uint8 [H, W, C] in `name`: hsv, lab, rgi (normalised r, g and intensity),
    h (hue only) or i (intensity only). Every channel spans 0..255."""
    if name == "hsv":
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV_FULL)
    if name == "lab":
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)
    if name == "h":
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV_FULL)[:, :, :1].copy()
    if name == "i":
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[:, :, None]
    if name == "rgi":
        total = rgb.astype(np.float32).sum(axis=2, keepdims=True)
        chroma = np.where(total > 0, rgb[:, :, :2] / np.maximum(total, 1), 1 / 3)
        planes = np.concatenate([chroma * 255, total / 3], axis=2)
        return np.round(planes).clip(0, 255).astype(np.uint8)
    raise ValueError(f"unknown colour space {name!r}")


def colour_bins(image: np.ndarray) -> np.ndarray:
    """uint8 [H, W, C] -> int64 [H*W, C]: each pixel's histogram column, channel c in c*25 .. c*25+24."""
    bins = (image.reshape(-1, image.shape[2]).astype(np.int64) * COLOUR_BINS) >> 8
    return bins + np.arange(image.shape[2]) * COLOUR_BINS


def orientation_responses(image: np.ndarray) -> np.ndarray:
    """uint8 [H, W, C] -> float32 [H*W, C, 8]: per channel, Gaussian derivatives (sigma 1) in 8 orientations
    45 degrees apart, half-wave rectified (orientation o + 4 is o with the opposite sign)."""
    smooth = cv2.GaussianBlur(image.astype(np.float32), (0, 0), 1.0, borderType=cv2.BORDER_REFLECT)
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT).reshape(-1, image.shape[2], 1)
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT).reshape(-1, image.shape[2], 1)
    angles = np.arange(ORIENTATIONS // 2, dtype=np.float32) * np.float32(np.pi / (ORIENTATIONS // 2))
    steered = gx * np.cos(angles) + gy * np.sin(angles)
    return np.maximum(np.concatenate([steered, -steered], axis=2), 0)


def texture_bins(image: np.ndarray) -> np.ndarray:
    """uint8 [H, W, C] -> int64 [H*W, 8*C]: each pixel's texture histogram column per channel and orientation,
    (c*8 + o)*10 + bin, the response binned in 10 steps up to its largest value in the image."""
    response = orientation_responses(image).reshape(-1, image.shape[2] * ORIENTATIONS)
    top = response.max(axis=0)
    scaled = response * (TEXTURE_BINS / np.where(top > 0, top, 1)).astype(np.float32)
    bins = np.minimum(scaled.astype(np.int64), TEXTURE_BINS - 1)
    return bins + np.arange(bins.shape[1]) * TEXTURE_BINS


def histograms(labels: np.ndarray, bins: np.ndarray, regions: int, width: int) -> np.ndarray:
    """Per-region L1-normalised histograms [regions, width] float64 from flat labels [N] (0..regions-1)
    and each pixel's columns bins [N, K]: one np.bincount."""
    index = (labels[:, None] * width + bins).ravel()
    counts = np.bincount(index, minlength=regions * width).reshape(regions, width).astype(np.float64)
    return counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)


@dataclass
class Regions:
    """An initial segmentation's regions: sizes [R] (pixels), boxes [R, 4] xyxy (x2, y2 exclusive),
    neighbour pairs [E, 2] (i < j), and colour [R, 25C] / texture [R, 80C] histograms (None when unused)."""

    sizes: np.ndarray
    boxes: np.ndarray
    pairs: np.ndarray
    colour: np.ndarray | None
    texture: np.ndarray | None


def neighbour_pairs(labels: np.ndarray) -> np.ndarray:
    """int64 [E, 2] pairs (i < j) of labels that touch horizontally or vertically in labels [H, W]."""
    a = np.concatenate([labels[:, :-1].ravel(), labels[:-1, :].ravel()])
    b = np.concatenate([labels[:, 1:].ravel(), labels[1:, :].ravel()])
    change = a != b
    low, high = np.minimum(a[change], b[change]), np.maximum(a[change], b[change])
    regions = int(labels.max()) + 1
    codes = np.unique(low.astype(np.int64) * regions + high)
    return np.stack([codes // regions, codes % regions], axis=1)


def region_boxes(labels: np.ndarray) -> np.ndarray:
    """float64 [R, 4] xyxy boxes (x2, y2 exclusive) of labels [H, W] numbered 0..R-1."""
    slices = ndimage.find_objects(labels + 1)
    return np.array([[s[1].start, s[0].start, s[1].stop, s[0].stop] for s in slices], np.float64)


def describe(labels: np.ndarray, colour: np.ndarray | None, texture: np.ndarray | None) -> Regions:
    """The Regions of labels [H, W] (0..R-1, all present); colour / texture are colour_bins / texture_bins
    of the image in the strategy's colour space, or None when the similarity does not use them."""
    regions = int(labels.max()) + 1
    flat = labels.ravel()
    channels = None if colour is None else colour.shape[1]
    return Regions(
        sizes=np.bincount(flat, minlength=regions).astype(np.float64),
        boxes=region_boxes(labels),
        pairs=neighbour_pairs(labels),
        colour=None if colour is None else histograms(flat, colour, regions, COLOUR_BINS * channels),
        texture=None if texture is None else histograms(flat, texture, regions, texture.shape[1] * TEXTURE_BINS),
    )
