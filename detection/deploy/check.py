"""An exported model against the PyTorch one on the same images: same detections, boxes and scores within
tolerance. Used by detection.export after writing a file, by the tests and by the benchmark.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from datasets.synth import SynthOptions, render_image
from detection.models.base import Detector

from detection.deploy.graphs import grid_rois, split_rois
from detection.deploy.runtime import ExportedDetector

BOX_TOLERANCE = 0.01  # pixels of the S x S frame
SCORE_TOLERANCE = 1e-4


def sample_images(count: int, size: int, seed: int = 0) -> torch.Tensor:
    """`count` synthetic shapes images (datasets.synth) of size x size, [count, 3, size, size] RGB in 0..1."""
    rng = np.random.default_rng(seed)
    options = SynthOptions(image_size=size, min_size=max(4, size // 8), max_size=max(4, size // 2))
    images = [cv2.cvtColor(render_image(rng, options)[0], cv2.COLOR_BGR2RGB) for _ in range(count)]
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255


def sample_proposals(model: Detector, images: torch.Tensor) -> list[torch.Tensor] | None:
    """Grid proposals for families that take them (a fixed input, so both sides score the same boxes)."""
    if not model.takes_proposals:
        return None
    return split_rois(grid_rois(len(images), images.shape[-1], cells=6), len(images))


def differences(got: list[dict], want: list[dict]) -> dict:
    """Per batch: detections compared, images whose detections differ (count, or one without a counterpart of
    its label), the largest box and score gaps. Order is free: near-equal scores may come in either order."""
    report = {"images": len(want), "detections": 0, "mismatched_images": 0, "max_box_diff": 0.0,
              "max_score_diff": 0.0}
    for g, w in zip(got, want):
        gaps = matched_gaps(g, w)
        if gaps is None:
            report["mismatched_images"] += 1
            continue
        report["detections"] += len(w["scores"])
        report["max_box_diff"] = max([report["max_box_diff"], *gaps[0]])
        report["max_score_diff"] = max([report["max_score_diff"], *gaps[1]])
    report["match"] = (report["mismatched_images"] == 0 and report["max_box_diff"] <= BOX_TOLERANCE
                       and report["max_score_diff"] <= SCORE_TOLERANCE)
    return report


def matched_gaps(got: dict, want: dict) -> tuple[list[float], list[float]] | None:
    """Pair each wanted detection with the closest unpaired one of its label -> (box gaps, score gaps); None
    when the counts differ or a detection has no counterpart of its label."""
    if len(got["scores"]) != len(want["scores"]):
        return None
    boxes, free = got["boxes"].float().cpu(), torch.ones(len(got["scores"]), dtype=torch.bool)
    box_gaps, score_gaps = [], []
    for box, score, label in zip(want["boxes"].float().cpu(), want["scores"].float().cpu(), want["labels"].cpu()):
        gap = (boxes - box).abs().amax(dim=1) + (got["scores"].float().cpu() - score).abs()
        gap[~free | (got["labels"].cpu() != label)] = float("inf")
        if not len(gap) or torch.isinf(gap.min()):
            return None
        best = int(gap.argmin())
        free[best] = False
        box_gaps.append(float((boxes[best] - box).abs().max()))
        score_gaps.append(float((got["scores"][best].float().cpu() - score).abs()))
    return box_gaps, score_gaps


@torch.no_grad()
def compare(model: Detector, exported: ExportedDetector, images: torch.Tensor) -> dict:
    """Both models on `images` (with the same proposals where the family takes them) -> `differences`."""
    proposals = sample_proposals(model, images)
    return differences(exported(images, None, proposals), model.eval()(images, None, proposals))
