"""Faster R-CNN on any registry backbone and neck: torchvision's RPN, then the RoI head of the R-CNN lineage.

Options are read from `model.faster_rcnn`; the contract (inputs, outputs, box formats) is models/base.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import TwoMLPHead
from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform

from datasets.core.errors import UserError
from detection.backbones.base import Backbone
from detection.models.base import Detector, DetectorParts, register_family
from detection.models.roi_heads import box_roi_heads, roi_align


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
    """Faster R-CNN (Ren et al.): torchvision's RPN proposes, then the RoI head Fast R-CNN and R-CNN share
    (roi_heads.py) scores the proposals pooled by RoI align over `body`'s maps.

    Takes the built body (backbone + neck) and keyword-only options, so it works without the config system.
    The RoI head returns every scored box; per-class or class-agnostic NMS and top-k are the shared postprocess.
    """

    def __init__(self, body: Backbone, num_classes: int, *, input_size: int, mean: tuple, std: tuple,
                 options: FasterRCNNOptions, postprocess) -> None:
        super().__init__(num_classes, input_size, postprocess)
        shapes = body.output_shape()
        body.out_channels = shared_channels(shapes)  # what torchvision's FasterRCNN reads
        channels = body.out_channels
        roi_maps = [name for name in shapes if name != "pool"]
        opts = options
        roi_heads = box_roi_heads(
            roi_align(roi_maps, 7), TwoMLPHead(channels * 49, opts.representation_size), opts.representation_size,
            num_classes, rois_per_image=opts.box_batch_size_per_image, positive_fraction=0.25, fg_iou=0.5,
            bg_iou=0.5, top_n=opts.rpn_post_nms_top_n_test)
        transform = GeneralizedRCNNTransform(input_size, input_size, list(mean), list(std))
        # torchvision's FasterRCNN is exactly GeneralizedRCNN(backbone, rpn, roi_heads, transform); the
        # attribute name `model` and these parts keep the weight names of format-1 checkpoints
        self.model = GeneralizedRCNN(body, region_proposals(channels, len(shapes), opts), roi_heads, transform)

    def forward(self, images: torch.Tensor, targets: list[dict] | None = None, proposals=None, *,
                score_threshold: float | None = None, max_detections: int | None = None):
        if self.training:
            side = images.shape[-1]  # torchvision would resize to input_size; multi-scale batches keep their size
            self.model.transform.min_size, self.model.transform.max_size = (side,), side
            return self.model(list(images), targets)
        opts = self.call_options(score_threshold, max_detections)
        return [self.postprocess(out["boxes"], out["scores"], out["labels"], opts)
                for out in self.detect(images, opts.score_threshold)]

    def detect(self, images: torch.Tensor, score_threshold: float | torch.Tensor) -> list[dict]:
        """Eval: GeneralizedRCNN's inference without its resize and box rescale, which are identities here (the
        images are already the size they are run at). Without them the image size stays free in a traced graph.
        Every box scoring >= score_threshold, before NMS."""
        model = self.model
        batch = model.transform.batch_images(list(model.transform.normalize(images)),
                                             size_divisible=model.transform.size_divisible)
        sizes = [(image.shape[-2], image.shape[-1]) for image in images]
        features = model.backbone(batch)
        boxes, _ = model.rpn(ImageList(batch, sizes), features)
        detections, _ = model.roi_heads(features, boxes, sizes, None, score_threshold)
        return detections


def shared_channels(shapes: dict) -> int:
    """The channels every map has: the RPN head and the RoI head are shared across maps."""
    channels = {spec.channels for spec in shapes.values()}
    if len(channels) > 1:
        listed = ", ".join(f"{name}: {spec.channels}" for name, spec in shapes.items())
        raise UserError(f"faster_rcnn shares its RPN and RoI heads across maps, so they need equal channels, "
                        f"but the maps have {listed}; use model.neck=fpn, or one map in model.features")
    return channels.pop()


def region_proposals(channels: int, levels: int, opts: FasterRCNNOptions) -> RegionProposalNetwork:
    """torchvision's RPN with its defaults (IoU 0.7 / 0.3, half positives, NMS 0.7) and our counts."""
    anchors = anchor_generator(opts, levels)
    return RegionProposalNetwork(
        anchors, RPNHead(channels, anchors.num_anchors_per_location()[0]), fg_iou_thresh=0.7, bg_iou_thresh=0.3,
        batch_size_per_image=opts.rpn_batch_size_per_image, positive_fraction=0.5,
        pre_nms_top_n={"training": opts.rpn_pre_nms_top_n_train, "testing": opts.rpn_pre_nms_top_n_test},
        post_nms_top_n={"training": opts.rpn_post_nms_top_n_train, "testing": opts.rpn_post_nms_top_n_test},
        nms_thresh=0.7)


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
