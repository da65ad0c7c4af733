"""Proposals for the families that take them (R-CNN, Fast R-CNN): given through the data path in training,
computed from the image by the model's own proposal method when not given (eval, predict, serve).
`ProposalDetector` is their shared forward: proposals -> the RoI head over the family's features.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch

from detection.models.base import Detector
from detection.proposals.base import ProposalConfig, build_proposer


class ProposalInput:
    """Turns given proposals, or none, into the [P, 4] xyxy tensors the RoI head reads, one per image.

    Not a module: it holds no weights, and its proposer is built on first use (checkpoints stay data).
    """

    def __init__(self, cfg: ProposalConfig) -> None:
        self.cfg = cfg
        self._proposer = None

    @property
    def proposer(self):
        if self._proposer is None:
            self._proposer = build_proposer(self.cfg)
        return self._proposer

    def __call__(self, images: torch.Tensor, given: list[torch.Tensor] | None, training: bool) -> list[torch.Tensor]:
        """Images [N, 3, S, S] in 0..1 and their proposals (or None) -> at most top_n per image, inside the
        image, never empty (an image with no proposals gets the whole-image box)."""
        top_n = self.cfg.top_n_train if training else self.cfg.top_n_test
        if given is None:
            given = [torch.from_numpy(self.proposer(as_uint8(image))) for image in images]
        side = images.shape[-1]
        return [usable(boxes[:top_n], side, images.device) for boxes in given]


def as_uint8(image: torch.Tensor) -> np.ndarray:
    """[3, S, S] float in 0..1 -> RGB uint8 [S, S, 3], what proposal methods read."""
    return (image.detach().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()


def usable(boxes: torch.Tensor, side: int, device: torch.device) -> torch.Tensor:
    """Proposals clipped to the S x S image, those with no area dropped; the whole image when none is left."""
    boxes = boxes.to(device=device, dtype=torch.float32).reshape(-1, 4).clamp(0, side)
    boxes = boxes[(boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])]
    if len(boxes) == 0:
        boxes = torch.tensor([[0.0, 0.0, side, side]], device=device)
    return boxes


class ProposalDetector(Detector):
    """A detector that scores external proposals with an RoI head (`self.roi_heads`, torchvision's RoIHeads)
    over what `features(images)` gives; subclasses set `roi_heads` and `proposal_input` and define `features`."""

    takes_proposals = True
    roi_heads: torch.nn.Module
    proposal_input: ProposalInput

    def features(self, images: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        raise NotImplementedError

    def forward(self, images: torch.Tensor, targets: list[dict] | None = None,
                proposals: list[torch.Tensor] | None = None, *, score_threshold: float | None = None,
                max_detections: int | None = None):
        boxes = self.proposal_input(images, proposals, self.training)
        shapes = [tuple(images.shape[-2:])] * len(images)
        if self.training:
            return self.roi_heads(self.features(images), boxes, shapes, targets)[1]
        opts = self.call_options(score_threshold, max_detections)
        detections, _ = self.roi_heads(self.features(images), boxes, shapes, None, opts.score_threshold)
        return [self.postprocess(d["boxes"], d["scores"], d["labels"], opts) for d in detections]
