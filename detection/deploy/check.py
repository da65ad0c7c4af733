"""An exported model against the PyTorch one on the same images: same detections, boxes and scores within
tolerance. Used by detection.export after writing a file, by the tests and by the benchmark.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from datasets.synthetic.shapes import SynthOptions, render_image
from detection.models.base import Detector

from detection.deploy.graphs import grid_rois, split_rois
from detection.deploy.runtime import ExportedDetector

BOX_TOLERANCE = 0.01  # pixels of the S x S frame
SCORE_TOLERANCE = 1e-4
TIE_TOLERANCE = 1e-6  # scores this close are a tie (float noise between runtimes is about 1e-7)


def sample_images(count: int, size: int, seed: int = 0) -> torch.Tensor:
    """`count` synthetic shapes images (datasets.synthetic.shapes) of size x size, [count, 3, size, size] RGB in 0..1,
    with a little pixel noise: on flat regions every window would look alike and score exactly the same, and
    two runtimes may break such ties (in NMS, in a top-k cut) differently."""
    rng = np.random.default_rng(seed)
    options = SynthOptions(image_size=size, min_size=max(4, size // 8), max_size=max(4, size // 2))
    images = np.stack([cv2.cvtColor(render_image(rng, options)[0], cv2.COLOR_BGR2RGB) for _ in range(count)])
    noisy = np.clip(images + rng.normal(0, 3, images.shape), 0, 255).astype(np.float32) / 255
    return torch.from_numpy(noisy).permute(0, 3, 1, 2).contiguous()


def sample_proposals(model: Detector, images: torch.Tensor) -> list[torch.Tensor] | None:
    """Grid proposals for families that take them (a fixed input, so both sides score the same boxes)."""
    if not model.takes_proposals:
        return None
    return split_rois(grid_rois(len(images), images.shape[-1], cells=6), len(images))


def differences(got: list[dict], want: list[dict]) -> dict:
    """Per batch: detections compared, images whose detections differ, ties broken the other way, and the
    largest box and score gaps of paired detections. Order is free: equal scores may come in either order."""
    report = {"images": len(want), "detections": 0, "mismatched_images": 0, "tie_swaps": 0, "max_box_diff": 0.0,
              "max_score_diff": 0.0}
    for g, w in zip(got, want):
        paired = pair_detections(g, w)
        if paired is None:
            report["mismatched_images"] += 1
            continue
        box_gaps, score_gaps, swaps = paired
        report["detections"] += len(w["scores"])
        report["tie_swaps"] += swaps
        report["max_box_diff"] = max([report["max_box_diff"], *box_gaps])
        report["max_score_diff"] = max([report["max_score_diff"], *score_gaps])
    report["match"] = report["mismatched_images"] == 0
    return report


def pair_detections(got: dict, want: dict) -> tuple[list[float], list[float], int] | None:
    """Pair each wanted detection with an unpaired one of its label whose box and score are within tolerance
    -> (box gaps, score gaps, tie swaps). What is left pairs by label and equal score alone: a tie (equal scores,
    other boxes) that NMS or the top-k cut broke the other way. None when the counts differ or one stays alone."""
    if len(got["scores"]) != len(want["scores"]):
        return None
    g_boxes, g_scores, g_labels = got["boxes"].float().cpu(), got["scores"].float().cpu(), got["labels"].cpu()
    free = torch.ones(len(g_scores), dtype=torch.bool)
    box_gaps, score_gaps, alone = [], [], []
    for box, score, label in zip(want["boxes"].float().cpu(), want["scores"].float().cpu(), want["labels"].cpu()):
        box_gap, score_gap = (g_boxes - box).abs().amax(dim=1), (g_scores - score).abs()
        close = free & (g_labels == label) & (box_gap <= BOX_TOLERANCE) & (score_gap <= SCORE_TOLERANCE)
        if not close.any():
            alone.append((score, label))
            continue
        best = int(torch.where(close, box_gap, torch.full_like(box_gap, float("inf"))).argmin())
        free[best] = False
        box_gaps.append(float(box_gap[best]))
        score_gaps.append(float(score_gap[best]))
    for score, label in alone:
        tied = free & (g_labels == label) & ((g_scores - score).abs() <= TIE_TOLERANCE)
        if not tied.any():
            return None
        free[int(tied.nonzero()[0])] = False
    return box_gaps, score_gaps, len(alone)


@torch.no_grad()
def compare(model: Detector, exported: ExportedDetector, images: torch.Tensor) -> dict:
    """Both models on `images` (with the same proposals where the family takes them) -> `differences`."""
    proposals = sample_proposals(model, images)
    return differences(exported(images, None, proposals), model.eval()(images, None, proposals))
