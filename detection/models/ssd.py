"""SSD (Liu et al., 2016) on any registry backbone and neck: multi-scale default boxes, per-location class and box
predictors, hard negative mining 3:1 with smooth L1 plus cross-entropy. Options: `model.ssd`; contract: base.py."""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection.ssd import SSDHead
from torchvision.models.detection.ssdlite import SSDLiteHead

from datasets.core.errors import UserError
from detection.backbones.base import Backbone
from detection.models.anchors import grid_anchors, ssd_box_sizes
from detection.models.base import DenseOutputs, Detector, DetectorParts, register_family
from detection.models.box_coder import decode, encode
from detection.models.matching import match_anchors


@dataclass
class SSDOptions:
    """`model.ssd`: default-box scales and ratios, matching, mining and the predictor kind."""

    min_scale: float = 0.2  # default-box scale of the finest map, as a fraction of the input
    max_scale: float = 0.95  # of the coarsest map
    aspect_ratios: list[float] = field(default_factory=lambda: [2.0, 3.0])  # each adds r and 1/r boxes
    iou_threshold: float = 0.5  # an anchor is positive at this IoU with a box (each box also gets its best)
    negative_ratio: float = 3.0  # hard negatives per positive
    head: str = "conv"  # conv: 3x3 convs (SSD); lite: depthwise-separable (SSDLite)
    pre_nms_top_k: int = 400  # best candidates per image kept before NMS

    def check(self, prefix: str) -> None:
        if not 0 < self.min_scale < self.max_scale <= 1:
            raise UserError(f"{prefix}min_scale and max_scale: need 0 < min_scale < max_scale <= 1, "
                            f"got {self.min_scale}, {self.max_scale}")
        if self.head not in ("conv", "lite"):
            raise UserError(f"config key '{prefix}head': {self.head!r} is not one of conv, lite")
        if any(r <= 0 for r in self.aspect_ratios):
            raise UserError(f"config key '{prefix}aspect_ratios' must be positive, got {self.aspect_ratios}")


class SSD(Detector):
    """Single-shot detector over every map of `body`; default boxes from `options`, softmax over K + 1 classes."""

    def __init__(self, body: Backbone, num_classes: int, *, input_size: int, mean: tuple, std: tuple,
                 options: SSDOptions, postprocess) -> None:
        super().__init__(num_classes, input_size, postprocess)
        self.body, self.options = body, options
        shapes = body.output_shape()
        self.strides = [spec.stride for spec in shapes.values()]
        self.box_sizes = ssd_box_sizes(len(shapes), input_size, options.min_scale, options.max_scale,
                                       options.aspect_ratios)
        channels, per_cell = [s.channels for s in shapes.values()], [len(s) for s in self.box_sizes]
        if options.head == "lite":
            norm = functools.partial(nn.BatchNorm2d, eps=1e-3, momentum=0.03)
            self.head = SSDLiteHead(channels, per_cell, num_classes + 1, norm)
        else:
            self.head = SSDHead(channels, per_cell, num_classes + 1)
        self.set_normalization(mean, std)

    def forward(self, images: torch.Tensor, targets: list[dict] | None = None, proposals=None, *,
                score_threshold: float | None = None, max_detections: int | None = None):
        deltas, logits, anchors = self.head_outputs(images)
        if self.training:
            return self.loss(deltas, logits, anchors, targets)
        opts = self.call_options(score_threshold, max_detections)
        return self.detect_dense(self.candidates(deltas, logits, anchors), opts)

    def head_outputs(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Box deltas [N, A, 4], class logits [N, A, K + 1] and the default boxes [A, 4] they refer to."""
        maps = list(self.body(self.normalize(images)).values())
        out = self.head(maps)
        levels = grid_anchors(self.box_sizes, self.strides, [m.shape[-2:] for m in maps])
        return out["bbox_regression"], out["cls_logits"], torch.cat(levels).to(images.device)

    def dense_outputs(self, images: torch.Tensor) -> DenseOutputs:
        return self.candidates(*self.head_outputs(images))

    def loss(self, deltas: torch.Tensor, logits: torch.Tensor, anchors: torch.Tensor, targets: list[dict]) -> dict:
        """Smooth L1 on positives' encoded boxes; cross-entropy on positives and the hardest negatives."""
        box_losses, cls_losses, positives = [], [], 0
        for delta, logit, target in zip(deltas, logits, targets):
            matched = match_anchors(anchors, target["boxes"], self.options.iou_threshold)
            pos = matched >= 0
            labels = torch.zeros_like(matched)
            labels[pos] = target["labels"][matched[pos]]
            wanted = encode(target["boxes"][matched[pos]], anchors[pos])
            box_losses.append(F.smooth_l1_loss(delta[pos], wanted, reduction="sum", beta=1 / 9))
            ce = F.cross_entropy(logit, labels, reduction="none")
            cls_losses.append(ce[pos].sum() + hardest_negatives(ce, pos, self.options.negative_ratio).sum())
            positives += int(pos.sum())
        scale = max(1, positives)
        return {"loss_box_reg": sum(box_losses) / scale, "loss_classifier": sum(cls_losses) / scale}

    def candidates(self, deltas: torch.Tensor, logits: torch.Tensor, anchors: torch.Tensor) -> DenseOutputs:
        """Decoded boxes clipped to the input and class scores (no background) of every default box."""
        scores = F.softmax(logits, dim=-1)[..., 1:]  # [N, A, K]
        boxes = decode(deltas, anchors).clamp(0, self.input_size)
        return DenseOutputs(boxes, scores, self.options.pre_nms_top_k)

def hardest_negatives(ce: torch.Tensor, pos: torch.Tensor, ratio: float) -> torch.Tensor:
    """The `ratio` x positives highest losses among negatives (at least `ratio` when an image has no object)."""
    count = int(ratio * max(1, int(pos.sum())))
    negative = ce.detach().masked_fill(pos, -1.0)
    count = min(count, int((~pos).sum()))
    return ce[negative.topk(count).indices]


@register_family("ssd", SSDOptions, default_neck="ssd_extra")
def ssd(parts: DetectorParts, options: SSDOptions) -> SSD:
    """SSD with `parts.num_classes` object classes (softmax index 0 is background)."""
    return SSD(parts.body, parts.num_classes, input_size=parts.input_size, mean=parts.mean, std=parts.std,
               options=options, postprocess=parts.postprocess)
