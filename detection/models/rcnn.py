"""R-CNN (Girshick et al. 2014) on any registry backbone: each proposal, widened by context padding, is warped
to a fixed square crop and run through the backbone on its own; a softmax over K+1 classes and class-specific
box regression score it (the shared RoI head: IoU sampling, multi-task loss, decoding); per-class NMS at test.

The paper's SVMs are replaced by the softmax it fine-tunes, as Fast R-CNN later showed works as well.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import torch
from torch import nn
from torchvision.ops import roi_align

from detection.backbones.base import Backbone
from detection.models.base import DetectorParts, register_family
from detection.models.external_proposals import ProposalDetector, ProposalInput
from detection.models.roi_heads import box_roi_heads
from detection.proposals.base import ProposalConfig


@dataclass
class RCNNOptions:
    """`model.rcnn`: crop size and context, the head's size, RoI sampling and where proposals come from."""

    crop_size: int = 64  # proposals are warped to crop_size x crop_size (the paper: 227)
    context_padding: int = 5  # pixels of context around the box at the warped size (the paper: 16 at 227)
    representation_size: int = 256  # the fully connected layer over the flattened last map (the paper's fc6)
    rois_per_image: int = 32  # crops per image in training (the paper: 128 per batch, 32 positive)
    positive_fraction: float = 0.25  # of them with IoU >= fg_iou with a ground-truth box
    fg_iou: float = 0.5
    bg_iou: float = 0.5
    crops_per_pass: int = 256  # crops the backbone takes at once (memory)
    proposals: ProposalConfig = field(default_factory=lambda: ProposalConfig(top_n_test=500))


def context_boxes(boxes: torch.Tensor, size: int, padding: int) -> torch.Tensor:
    """Boxes [R, 4] xyxy grown about their centres so that, warped to size x size, `padding` pixels of
    context surround the original box on every side."""
    grow = size / max(1, size - 2 * padding)
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]) / 2 * grow
    return torch.cat([centre - half, centre + half], dim=1)


class WarpCrops(nn.Module):
    """The R-CNN 'pooler': each proposal's context box bilinearly warped out of the normalised image ->
    [R, 3, size, size]. Outside the image it reads 0, the mean colour, as the paper pads."""

    def __init__(self, size: int, padding: int) -> None:
        super().__init__()
        self.size, self.padding = size, padding

    def forward(self, features: "OrderedDict[str, torch.Tensor]", boxes: list[torch.Tensor],
                image_shapes: list[tuple[int, int]]) -> torch.Tensor:
        grown = [context_boxes(b, self.size, self.padding) for b in boxes]
        return roi_align(features["image"], grown, self.size, spatial_scale=1.0, sampling_ratio=2, aligned=True)


class CropFeatures(nn.Module):
    """Crops [R, 3, c, c] -> backbone (last map) -> flattened -> FC + ReLU -> [R, representation].

    Flattening keeps where in the crop things are, as the paper's fc6 over pool5 does: a loose box around
    an object must score lower than a tight one, and an average over the map cannot tell them apart.
    """

    def __init__(self, body: Backbone, representation_size: int, crop_size: int, crops_per_pass: int) -> None:
        super().__init__()
        self.body, self.crops_per_pass = body, crops_per_pass
        self.last = list(body.output_shape())[-1]
        self.fc = nn.Linear(flat_size(body, self.last, crop_size), representation_size)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        # a traced graph runs every crop in one pass: the number of parts would be fixed when traced
        parts = [crops] if torch.jit.is_tracing() else crops.split(self.crops_per_pass)
        maps = [self.body(part)[self.last].flatten(1) for part in parts]
        return torch.relu(self.fc(torch.cat(maps)))


@torch.no_grad()
def flat_size(body: Backbone, name: str, crop_size: int) -> int:
    """Values in map `name` of one crop_size x crop_size crop (one dry run in eval mode: no statistics move)."""
    was_training = body.training
    body.eval()
    size = body(torch.zeros(1, 3, crop_size, crop_size))[name].numel()
    body.train(was_training)
    return size


class RCNN(ProposalDetector):
    """Per proposal: context crop -> backbone -> features -> K+1 scores and class-specific box deltas."""

    def __init__(self, parts: DetectorParts, options: RCNNOptions) -> None:
        super().__init__(parts.num_classes, parts.input_size, parts.postprocess)
        self.set_normalization(parts.mean, parts.std)
        head = CropFeatures(parts.body, options.representation_size, options.crop_size, options.crops_per_pass)
        self.roi_heads = box_roi_heads(
            WarpCrops(options.crop_size, options.context_padding), head, options.representation_size,
            parts.num_classes, rois_per_image=options.rois_per_image, positive_fraction=options.positive_fraction,
            fg_iou=options.fg_iou, bg_iou=options.bg_iou, top_n=options.proposals.top_n_test)
        self.proposal_input = ProposalInput(options.proposals)

    def features(self, images: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        return OrderedDict(image=self.normalize(images))  # WarpCrops reads the image itself


@register_family("rcnn", RCNNOptions, default_neck="none")
def rcnn(parts: DetectorParts, options: RCNNOptions) -> RCNN:
    """R-CNN with `parts.num_classes` object classes over external proposals, crops through `parts.body`."""
    return RCNN(parts, options)
