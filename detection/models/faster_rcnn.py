"""Faster R-CNN on any registry backbone and neck: torchvision's RPN, RoI heads and box coder.

Options are read from `model.faster_rcnn`; the contract (inputs, outputs, box formats) is models/base.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torchvision.models.detection import FasterRCNN as TorchvisionFasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.ops import MultiScaleRoIAlign

from detection.backbones.base import Backbone
from detection.errors import UserError
from detection.models.base import Detector, DetectorParts, register_family


@dataclass
class FasterRCNNOptions:
    """`model.faster_rcnn`: anchors, RPN proposal counts and sampling, RoI head size."""

    anchor_sizes: list[int] = field(default_factory=lambda: [32, 64, 128, 256, 512])  # one per map (one map: all)
    aspect_ratios: list[float] = field(default_factory=lambda: [0.5, 1.0, 2.0])
    rpn_pre_nms_top_n_train: int = 2000
    rpn_post_nms_top_n_train: int = 2000
    rpn_pre_nms_top_n_test: int = 1000
    rpn_post_nms_top_n_test: int = 1000
    rpn_batch_size_per_image: int = 256
    box_batch_size_per_image: int = 512
    representation_size: int = 1024


class FasterRCNN(Detector):
    """Faster R-CNN (Ren et al.) over `body`'s maps; torchvision's implementation does the work.

    Takes the built body (backbone + neck) and keyword-only options, so it works without the config system.
    RoI heads return every scored box; per-class or class-agnostic NMS and top-k are the shared postprocess.
    """

    def __init__(self, body: Backbone, num_classes: int, *, input_size: int, mean: tuple, std: tuple,
                 options: FasterRCNNOptions, postprocess) -> None:
        super().__init__(num_classes, input_size, postprocess)
        shapes = body.output_shape()
        body.out_channels = shared_channels(shapes)  # what torchvision's FasterRCNN reads
        channels = body.out_channels
        roi_maps = [name for name in shapes if name != "pool"]
        opts = options
        self.model = TorchvisionFasterRCNN(  # the attribute name keeps weight names of format-1 checkpoints
            body, num_classes=None,
            min_size=input_size, max_size=input_size, image_mean=list(mean), image_std=list(std),
            rpn_anchor_generator=anchor_generator(opts, len(shapes)),
            box_roi_pool=MultiScaleRoIAlign(roi_maps, output_size=7, sampling_ratio=2),
            box_head=TwoMLPHead(channels * 49, opts.representation_size),
            box_predictor=FastRCNNPredictor(opts.representation_size, num_classes + 1),
            rpn_pre_nms_top_n_train=opts.rpn_pre_nms_top_n_train,
            rpn_post_nms_top_n_train=opts.rpn_post_nms_top_n_train,
            rpn_pre_nms_top_n_test=opts.rpn_pre_nms_top_n_test,
            rpn_post_nms_top_n_test=opts.rpn_post_nms_top_n_test,
            rpn_batch_size_per_image=opts.rpn_batch_size_per_image,
            box_batch_size_per_image=opts.box_batch_size_per_image,
            box_score_thresh=postprocess.score_threshold, box_nms_thresh=1.0,  # NMS: in postprocess
            box_detections_per_img=opts.rpn_post_nms_top_n_test * num_classes,
        )

    def forward(self, images: torch.Tensor, targets: list[dict] | None = None, proposals=None):
        side = images.shape[-1]  # torchvision would resize to input_size; multi-scale batches keep their size
        self.model.transform.min_size, self.model.transform.max_size = (side,), side
        if self.training:
            return self.model(list(images), targets)
        outputs = self.model(list(images))
        return [self.postprocess(out["boxes"], out["scores"], out["labels"]) for out in outputs]


def shared_channels(shapes: dict) -> int:
    """The channels every map has: the RPN head and the RoI head are shared across maps."""
    channels = {spec.channels for spec in shapes.values()}
    if len(channels) > 1:
        listed = ", ".join(f"{name}: {spec.channels}" for name, spec in shapes.items())
        raise UserError(f"faster_rcnn shares its RPN and RoI heads across maps, so they need equal channels, "
                        f"but the maps have {listed}; use model.neck=fpn, or one map in model.features")
    return channels.pop()


def anchor_generator(opts: FasterRCNNOptions, levels: int) -> AnchorGenerator:
    """All sizes on a single map; else one size per map."""
    ratios = tuple(opts.aspect_ratios)
    if levels == 1:
        return AnchorGenerator((tuple(opts.anchor_sizes),), (ratios,))
    if len(opts.anchor_sizes) != levels:
        raise UserError(f"model.faster_rcnn.anchor_sizes: {len(opts.anchor_sizes)} sizes for "
                        f"{levels} feature maps; give one size per map")
    return AnchorGenerator(tuple((s,) for s in opts.anchor_sizes), (ratios,) * levels)


@register_family("faster_rcnn", FasterRCNNOptions, default_neck="fpn")
def faster_rcnn(parts: DetectorParts, options: FasterRCNNOptions) -> FasterRCNN:
    """Faster R-CNN with `parts.num_classes` object classes (label 0 is background inside the RoI head)."""
    return FasterRCNN(parts.body, parts.num_classes, input_size=parts.input_size, mean=parts.mean,
                      std=parts.std, options=options, postprocess=parts.postprocess)
