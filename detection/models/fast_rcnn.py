"""Fast R-CNN (Girshick 2015) on any registry backbone: one feature map per image, RoI pooling over external
proposals, the shared RoI head; `model.fast_rcnn.pool: spp` gives SPP-net's pyramid pooling instead.

It is Faster R-CNN with the RPN replaced by external proposals (selective search by default).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torchvision.models.detection.faster_rcnn import TwoMLPHead

from datasets.core.errors import UserError
from detection.models.base import DetectorParts, register_family
from detection.models.external_proposals import ProposalDetector, ProposalInput
from detection.models.faster_rcnn import shared_channels
from detection.models.roi_heads import RoIPool, SpatialPyramidPool, box_roi_heads, roi_align
from detection.proposals.base import ProposalConfig

POOLS = ("roi_pool", "roi_align", "spp")


@dataclass
class FastRCNNOptions:
    """`model.fast_rcnn`: the RoI pooling, the head's size, RoI sampling and where proposals come from."""

    pool: str = "roi_pool"  # roi_pool (the paper's max pooling) | roi_align | spp (SPP-net's pyramid)
    roi_size: int = 7  # roi_pool / roi_align: bins per side
    spp_levels: list[int] = field(default_factory=lambda: [1, 2, 4])  # spp: bins per side of each level
    representation_size: int = 1024  # the two fully connected layers after pooling
    rois_per_image: int = 64  # sampled per image in training (the paper: 128 over 2 images)
    positive_fraction: float = 0.25  # of them with IoU >= fg_iou (the paper: 25%)
    fg_iou: float = 0.5
    bg_iou: float = 0.5  # background: best IoU below this
    proposals: ProposalConfig = field(default_factory=ProposalConfig)


class FastRCNN(ProposalDetector):
    """Backbone maps of the whole image, then per proposal: pool -> two FC layers -> K+1 scores and
    class-specific box deltas (torchvision's RoIHeads: sampling, loss and decoding)."""

    def __init__(self, parts: DetectorParts, options: FastRCNNOptions) -> None:
        super().__init__(parts.num_classes, parts.input_size, parts.postprocess)
        self.set_normalization(parts.mean, parts.std)
        self.body = parts.body
        pooler, pooled = make_pooler(parts.body.output_shape(), options)
        head = TwoMLPHead(pooled, options.representation_size)
        self.roi_heads = box_roi_heads(
            pooler, head, options.representation_size, parts.num_classes,
            rois_per_image=options.rois_per_image, positive_fraction=options.positive_fraction,
            fg_iou=options.fg_iou, bg_iou=options.bg_iou, top_n=options.proposals.top_n_test)
        self.proposal_input = ProposalInput(options.proposals)

    def features(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.body(self.normalize(images))


def make_pooler(shapes: dict, options: FastRCNNOptions):
    """The pooler `options.pool` over the body's maps -> (pooler, values per RoI it gives the head)."""
    if options.pool not in POOLS:
        raise UserError(f"model.fast_rcnn.pool: {options.pool!r} is not one of {', '.join(POOLS)}")
    channels = shared_channels(shapes)
    if options.pool == "roi_align":
        return roi_align(list(shapes), options.roi_size), channels * options.roi_size ** 2
    if len(shapes) != 1:
        raise UserError(f"model.fast_rcnn.pool={options.pool} pools one map, but the body gives {list(shapes)}; "
                        f"choose one with model.features, or use pool=roi_align")
    (name, spec), = shapes.items()
    if options.pool == "roi_pool":
        return RoIPool(name, spec.stride, options.roi_size), channels * options.roi_size ** 2
    if not options.spp_levels or min(options.spp_levels) < 1:
        raise UserError(f"model.fast_rcnn.spp_levels: {options.spp_levels} needs bins per side >= 1")
    return SpatialPyramidPool(name, spec.stride, options.spp_levels), channels * sum(n * n for n in options.spp_levels)


@register_family("fast_rcnn", FastRCNNOptions, default_neck="none")
def fast_rcnn(parts: DetectorParts, options: FastRCNNOptions) -> FastRCNN:
    """Fast R-CNN with `parts.num_classes` object classes over external proposals."""
    return FastRCNN(parts, options)
