"""Tracking metrics: single-object OTB success AUC and precision@20 px (with their plot), and multi-object
MOTA, IDF1 (motmetrics) and HOTA (hota.py) from MOTChallenge ground truth and results."""
from __future__ import annotations

import os

import numpy as np

from datasets.core.errors import UserError
from datasets.view.plot import pyplot, save_figure
from detection.tracking.boxes import centers, iou_matrix, xywh_to_xyxy
from detection.tracking.hota import FramePairs, hota
from detection.tracking.mot_io import MotRows

SUCCESS_THRESHOLDS = np.linspace(0.0, 1.0, 21)
PRECISION_THRESHOLDS = np.arange(0, 51)
MOT_KEYS = {"mota": "mota", "idf1": "idf1", "idp": "idp", "idr": "idr", "precision": "precision",
            "recall": "recall", "num_switches": "id_switches", "num_false_positives": "false_positives",
            "num_misses": "misses", "num_objects": "gt_boxes", "num_unique_objects": "gt_ids",
            "mostly_tracked": "mostly_tracked", "mostly_lost": "mostly_lost", "num_frames": "frames"}


def paired_ious(a_xywh: np.ndarray, b_xywh: np.ndarray) -> np.ndarray:
    """IoU of row i of `a` with row i of `b` (both [N, 4] xywh): [N]."""
    a, b = xywh_to_xyxy(a_xywh), xywh_to_xyxy(b_xywh)
    return np.array([iou_matrix(a[i], b[i])[0, 0] for i in range(len(a))])


def sot_metrics(gt_xywh: np.ndarray, results_xywh: np.ndarray) -> dict:
    """OTB one-pass evaluation of one sequence (frames whose ground truth has no area are skipped).

    success[t] = share of frames with IoU > t for t = 0, 0.05, ..., 1 (strictly greater, as the OTB toolkit,
    pysot and got10k count, so a perfect tracker scores 20/21 = 0.952); success_auc = their mean. precision[d]
    = share of frames whose centres are at most d px apart, d = 0..50; precision_20 = precision[20].
    mean_iou is the exact area under the continuous success curve.
    """
    if len(results_xywh) < len(gt_xywh):
        raise UserError(f"results have {len(results_xywh)} boxes for {len(gt_xywh)} ground-truth frames")
    gt, results = np.asarray(gt_xywh, float), np.asarray(results_xywh, float)[: len(gt_xywh)]
    valid = np.isfinite(gt).all(axis=1) & (gt[:, 2] > 0) & (gt[:, 3] > 0)
    if not valid.any():
        raise UserError("the ground truth has no box with an area")
    gt, results = gt[valid], np.nan_to_num(results[valid], nan=0.0)
    ious = paired_ious(gt, results)
    errors = np.linalg.norm(centers(gt) - centers(results), axis=1)
    success = (ious[:, None] > SUCCESS_THRESHOLDS[None, :]).mean(axis=0)
    precision = (errors[:, None] <= PRECISION_THRESHOLDS[None, :]).mean(axis=0)
    return {"kind": "sot", "frames": int(valid.sum()), "success_auc": float(success.mean()),
            "precision_20": float(precision[20]), "mean_iou": float(ious.mean()),
            "success": success.round(6).tolist(), "precision": precision.round(6).tolist()}


def success_plot(metrics: dict, path: str | os.PathLike, label: str = "tracker") -> None:
    """OTB's two plots side by side: success (IoU threshold) and precision (location error threshold)."""
    fig, (left, right) = pyplot().subplots(1, 2, figsize=(10, 4))
    left.plot(SUCCESS_THRESHOLDS, metrics["success"], label=f"{label} [{metrics['success_auc']:.3f}]")
    left.set(xlabel="overlap threshold (IoU)", ylabel="success rate", title="Success plot of OPE",
             xlim=(0, 1), ylim=(0, 1.02))
    right.plot(PRECISION_THRESHOLDS, metrics["precision"], label=f"{label} [{metrics['precision_20']:.3f}]")
    right.axvline(20, color="grey", linestyle="--", linewidth=1)
    right.set(xlabel="location error threshold (px)", ylabel="precision", title="Precision plot of OPE",
              xlim=(0, 50), ylim=(0, 1.02))
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left" if ax is left else "lower right")
    fig.tight_layout()
    save_figure(fig, path)


def check_unique(rows: MotRows, source: str) -> None:
    """UserError when one id has two boxes in one frame."""
    pairs, counts = np.unique(np.stack([rows.frames, rows.ids], axis=1), axis=0, return_counts=True)
    if (counts > 1).any():
        frame, track_id = pairs[np.argmax(counts > 1)]
        raise UserError(f"{source}: frame {frame} has id {track_id} more than once")


def dense(ids: np.ndarray) -> dict[int, int]:
    """Each distinct id -> 0, 1, 2, ... in sorted order."""
    return {int(v): i for i, v in enumerate(np.unique(ids))}


def mot_metrics(gt: MotRows, results: MotRows, iou_threshold: float = 0.5) -> dict:
    """CLEAR MOT and identity metrics (motmetrics) and HOTA over every frame of either file.

    Ground-truth rows whose 7th column ('considered') is 0 are left out, as MOTChallenge does; classes are
    not compared (every box may match every box). A pair matches for MOTA / IDF1 at IoU >= iou_threshold.
    """
    import motmetrics

    gt = gt.select(gt.scores != 0)
    check_unique(gt, "ground truth")
    check_unique(results, "results")
    gt_frames, result_frames = gt.by_frame(), results.by_frame()
    gt_dense, result_dense = dense(gt.ids), dense(results.ids)
    accumulator = motmetrics.MOTAccumulator(auto_id=False)
    pairs, none = [], np.zeros(0, np.int64)
    for frame in sorted(set(gt_frames) | set(result_frames)):
        g, r = gt_frames.get(frame, none), result_frames.get(frame, none)
        iou = iou_matrix(xywh_to_xyxy(gt.boxes[g]), xywh_to_xyxy(results.boxes[r]))
        accumulator.update(gt.ids[g], results.ids[r], np.where(iou >= iou_threshold, 1 - iou, np.nan), frameid=frame)
        pairs.append(FramePairs(np.array([gt_dense[int(i)] for i in gt.ids[g]], np.int64),
                                np.array([result_dense[int(i)] for i in results.ids[r]], np.int64), iou))
    summary = motmetrics.metrics.create().compute(accumulator, metrics=[*MOT_KEYS, "motp"], name="all")
    values = {name: summary[key].iloc[0] for key, name in MOT_KEYS.items()}
    out = {"kind": "mot", **{k: float(v) if isinstance(v, float) else int(v) for k, v in values.items()}}
    out.update(hota(pairs, len(gt_dense), len(result_dense)))
    motp = summary["motp"].iloc[0]
    out["motp"] = float(1 - motp) if np.isfinite(motp) else 0.0  # as MOTChallenge: mean IoU of the matches
    out["tracker_ids"] = len(result_dense)
    return {k: (0.0 if isinstance(v, float) and not np.isfinite(v) else v) for k, v in out.items()}
