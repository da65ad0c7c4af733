"""HOTA (Luiten et al., "HOTA: A Higher Order Metric for Evaluating Multi-Object Tracking", IJCV 2021).

motmetrics 1.4 has no HOTA; this follows the paper's definition as TrackEval's reference code computes it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

ALPHAS = np.arange(0.05, 0.99, 0.05)  # localisation thresholds 0.05, 0.10, ..., 0.95
EPS = np.finfo(float).eps


@dataclass
class FramePairs:
    """One frame: gt id indices [G] and tracker id indices [R] (0-based, dense), IoU [G, R]."""

    gt: np.ndarray
    tracker: np.ndarray
    iou: np.ndarray


def global_alignment(frames: list[FramePairs], num_gt: int, num_tracker: int) -> tuple:
    """Jaccard alignment of every gt id with every tracker id over the sequence (soft, IoU-weighted), and
    each id's detection count: (alignment [G, R], gt counts [G, 1], tracker counts [1, R])."""
    potential = np.zeros((num_gt, num_tracker))
    gt_count, tracker_count = np.zeros((num_gt, 1)), np.zeros((1, num_tracker))
    for frame in frames:
        sim = frame.iou
        denominator = sim.sum(0, keepdims=True) + sim.sum(1, keepdims=True) - sim
        share = np.divide(sim, denominator, out=np.zeros_like(sim), where=denominator > EPS)
        potential[frame.gt[:, None], frame.tracker[None, :]] += share
        gt_count[frame.gt] += 1
        tracker_count[0, frame.tracker] += 1
    return potential / (gt_count + tracker_count - potential + EPS), gt_count, tracker_count


def hota(frames: list[FramePairs], num_gt: int, num_tracker: int) -> dict[str, float]:
    """HOTA, DetA, AssA and LocA, each the mean over the 19 thresholds alpha = 0.05..0.95."""
    alignment, gt_count, tracker_count = global_alignment(frames, num_gt, num_tracker)
    tp, fn, fp, loc = (np.zeros(len(ALPHAS)) for _ in range(4))
    matched = np.zeros((len(ALPHAS), num_gt, num_tracker))
    for frame in frames:
        if len(frame.gt) == 0 or len(frame.tracker) == 0:
            fn += len(frame.gt)
            fp += len(frame.tracker)
            continue
        score = alignment[frame.gt[:, None], frame.tracker[None, :]] * frame.iou
        rows, cols = linear_sum_assignment(-score)
        for a, alpha in enumerate(ALPHAS):
            ok = frame.iou[rows, cols] >= alpha - EPS
            count = int(ok.sum())
            tp[a] += count
            fn[a] += len(frame.gt) - count
            fp[a] += len(frame.tracker) - count
            loc[a] += frame.iou[rows[ok], cols[ok]].sum()
            matched[a, frame.gt[rows[ok]], frame.tracker[cols[ok]]] += 1
    ass_a = np.array([np.sum(m * m / np.maximum(1, gt_count + tracker_count - m)) for m in matched])
    ass_a = ass_a / np.maximum(1, tp)
    det_a = tp / np.maximum(1, tp + fn + fp)
    loc_a = np.maximum(1e-10, loc) / np.maximum(1e-10, tp)
    return {"hota": float(np.mean(np.sqrt(det_a * ass_a))), "deta": float(np.mean(det_a)),
            "assa": float(np.mean(ass_a)), "loca": float(np.mean(loc_a))}
