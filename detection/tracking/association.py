"""Gated one-to-one matching of tracks to detections: IoU cost, optional appearance cost, Hungarian solve.

scipy.optimize.linear_sum_assignment finds the cheapest matching; gated-out pairs are never matched.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from detection.tracking.boxes import iou_matrix

FORBIDDEN = 1e6


def cosine_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """1 - cosine similarity of rows of `a` [N, D] and `b` [M, D]: [N, M] in 0..2."""
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return 1.0 - a @ b.T


def solve(cost: np.ndarray, allowed: np.ndarray) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Cheapest one-to-one matching among allowed pairs: (matches (row, col), unmatched rows, unmatched cols)."""
    rows_n, cols_n = cost.shape
    if rows_n == 0 or cols_n == 0:
        return [], list(range(rows_n)), list(range(cols_n))
    rows, cols = linear_sum_assignment(np.where(allowed, cost, FORBIDDEN))
    matches = [(int(r), int(c)) for r, c in zip(rows, cols) if allowed[r, c]]
    matched_rows, matched_cols = {r for r, _ in matches}, {c for _, c in matches}
    return (matches, [r for r in range(rows_n) if r not in matched_rows],
            [c for c in range(cols_n) if c not in matched_cols])


def associate(track_boxes: np.ndarray, det_boxes: np.ndarray, min_iou: float, *,
              same_class: np.ndarray | None = None, appearance: np.ndarray | None = None,
              appearance_weight: float = 0.5, max_appearance: float = 0.5):
    """Match tracks [T, 4] to detections [D, 4] (xyxy) on IoU >= min_iou.

    same_class [T, D] bool forbids pairs of other classes. appearance [T, D] (cosine distances, NaN where a
    track or detection has no embedding) mixes in: cost = (1 - w) (1 - IoU) + w distance, and pairs farther
    than max_appearance are forbidden. Returns (matches (track, det), unmatched tracks, unmatched dets).
    """
    iou = iou_matrix(track_boxes, det_boxes)
    cost = 1.0 - iou
    allowed = iou >= min_iou
    if same_class is not None:
        allowed &= same_class
    if appearance is not None:
        known = ~np.isnan(appearance)
        distance = np.where(known, appearance, 0.0)
        cost = np.where(known, (1 - appearance_weight) * cost + appearance_weight * distance, cost)
        allowed &= ~known | (distance <= max_appearance)
    return solve(cost, allowed)
