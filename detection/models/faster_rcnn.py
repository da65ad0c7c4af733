"""Faster R-CNN on any registry backbone and neck: torchvision's RPN, then the RoI head of the R-CNN lineage.

Options are read from `model.faster_rcnn`; the contract (inputs, outputs, box formats) is models/base.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torch import nn
from torchvision.models.detection.faster_rcnn import FastRCNNConvFCHead, TwoMLPHead
from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform

from datasets.core.errors import UserError
from detection.backbones.base import Backbone, freeze_batchnorm
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
    # torchvision's variants (the defaults keep this project's own Faster R-CNN; imports set them, see
    # detection/weights/torchvision_import.py)
    min_size: int = 0  # > 0: torchvision's resize (GeneralizedRCNNTransform): shorter side to min_size, longer
    max_size: int = 0  # at most max_size, boxes mapped back to the input frame; 0: run at the size given
    anchor_sizes_on_every_map: bool = False  # every map gets all anchor_sizes (torchvision's MobileNet FPN)
    rpn_score_thresh: float = 0.0  # proposals scoring below it are dropped (torchvision's MobileNet: 0.05)
    rpn_conv_depth: int = 1  # 3x3 convs in the RPN head (torchvision's v2: 2)
    box_head_convs: int = 0  # 0: two FC layers; n: n conv-BN-ReLU (256 channels) then one FC (v2: 4)
    frozen_bn: bool = False  # the backbone's BatchNorm as torchvision's FrozenBatchNorm2d (fixed statistics)
    frozen_bn_eps: float = 1e-5  # its eps (torchvision's fasterrcnn_resnet50_fpn COCO weights: 0.0)

    def check(self, prefix: str) -> None:
        if self.min_size < 0 or self.max_size < 0 or (self.min_size > 0) != (self.max_size > 0):
            raise UserError(f"config keys '{prefix}min_size' and '{prefix}max_size': give both (> 0, torchvision's "
                            f"resize) or neither (0), got {self.min_size} and {self.max_size}")
        if self.rpn_conv_depth < 1 or self.box_head_convs < 0:
            raise UserError(f"config key '{prefix}rpn_conv_depth' must be at least 1 and '{prefix}box_head_convs' "
                            f"0 or more, got {self.rpn_conv_depth} and {self.box_head_convs}")


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
        if opts.frozen_bn:
            freeze_batchnorm(getattr(body, "body", body), opts.frozen_bn_eps)  # the backbone inside the neck
        roi_heads = box_roi_heads(
            roi_align(roi_maps, 7), box_head(channels, opts), opts.representation_size,
            num_classes, rois_per_image=opts.box_batch_size_per_image, positive_fraction=0.25, fg_iou=0.5,
            bg_iou=0.5, top_n=opts.rpn_post_nms_top_n_test)
        self.resize = opts.min_size > 0
        sizes = (opts.min_size, opts.max_size) if self.resize else (input_size, input_size)
        transform = GeneralizedRCNNTransform(*sizes, list(mean), list(std))
        # torchvision's FasterRCNN is exactly GeneralizedRCNN(backbone, rpn, roi_heads, transform); the
        # attribute name `model` and these parts keep the weight names of format-1 checkpoints
        self.model = GeneralizedRCNN(body, region_proposals(channels, len(shapes), opts), roi_heads, transform)

    @property
    def resizes_itself(self) -> bool:
        """With min_size / max_size: torchvision's resize, so images come at their own size."""
        return self.resize

    def forward(self, images: torch.Tensor, targets: list[dict] | None = None, proposals=None, *,
                score_threshold: float | None = None, max_detections: int | None = None):
        if self.training:
            if not self.resize:  # torchvision would resize to input_size; multi-scale batches keep their size
                side = images.shape[-1]
                self.model.transform.min_size, self.model.transform.max_size = (side,), side
            return self.model(list(images), targets)
        opts = self.call_options(score_threshold, max_detections)
        if self.resize:
            return self.detect_resized(images, opts)
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

    def detect_resized(self, images: torch.Tensor, opts) -> list[dict]:
        """Eval with torchvision's resize (options min_size / max_size): GeneralizedRCNN's own inference, the
        shared postprocess in the resized frame (where torchvision's NMS runs), then boxes back in the input's."""
        model = self.model
        originals = [(image.shape[-2], image.shape[-1]) for image in images]
        batch, _ = model.transform(list(images))
        features = model.backbone(batch.tensors)
        boxes, _ = model.rpn(batch, features)
        detections, _ = model.roi_heads(features, boxes, batch.image_sizes, None, opts.score_threshold)
        detections = [self.postprocess(out["boxes"], out["scores"], out["labels"], opts) for out in detections]
        return model.transform.postprocess(detections, batch.image_sizes, originals)


def shared_channels(shapes: dict) -> int:
    """The channels every map has: the RPN head and the RoI head are shared across maps."""
    channels = {spec.channels for spec in shapes.values()}
    if len(channels) > 1:
        listed = ", ".join(f"{name}: {spec.channels}" for name, spec in shapes.items())
        raise UserError(f"faster_rcnn shares its RPN and RoI heads across maps, so they need equal channels, "
                        f"but the maps have {listed}; use model.neck=fpn, or one map in model.features")
    return channels.pop()


def box_head(channels: int, opts: FasterRCNNOptions) -> nn.Module:
    """The RoI head's trunk on 7x7 pooled maps: two FC layers, or torchvision's conv-FC head (v2)."""
    if opts.box_head_convs == 0:
        return TwoMLPHead(channels * 49, opts.representation_size)
    return FastRCNNConvFCHead((channels, 7, 7), [256] * opts.box_head_convs, [opts.representation_size],
                              norm_layer=nn.BatchNorm2d)


def region_proposals(channels: int, levels: int, opts: FasterRCNNOptions) -> RegionProposalNetwork:
    """torchvision's RPN with its defaults (IoU 0.7 / 0.3, half positives, NMS 0.7) and our counts."""
    anchors = anchor_generator(opts, levels)
    head = RPNHead(channels, anchors.num_anchors_per_location()[0], conv_depth=opts.rpn_conv_depth)
    return RegionProposalNetwork(
        anchors, head, fg_iou_thresh=0.7, bg_iou_thresh=0.3,
        batch_size_per_image=opts.rpn_batch_size_per_image, positive_fraction=0.5,
        pre_nms_top_n={"training": opts.rpn_pre_nms_top_n_train, "testing": opts.rpn_pre_nms_top_n_test},
        post_nms_top_n={"training": opts.rpn_post_nms_top_n_train, "testing": opts.rpn_post_nms_top_n_test},
        nms_thresh=0.7, score_thresh=opts.rpn_score_thresh)


def anchor_generator(opts: FasterRCNNOptions, levels: int) -> AnchorGenerator:
    """All sizes on a single map (or on every map, with anchor_sizes_on_every_map); else one size per map."""
    ratios = tuple(opts.aspect_ratios)
    if levels == 1 or opts.anchor_sizes_on_every_map:
        return AnchorGenerator((tuple(opts.anchor_sizes),) * levels, (ratios,) * levels)
    if len(opts.anchor_sizes) != levels:
        raise UserError(f"model.faster_rcnn.anchor_sizes: {len(opts.anchor_sizes)} sizes for "
                        f"{levels} feature maps; give one size per map")
    return AnchorGenerator(tuple((s,) for s in opts.anchor_sizes), (ratios,) * levels)


@register_family("faster_rcnn", FasterRCNNOptions, default_neck="fpn")
def faster_rcnn(parts: DetectorParts, options: FasterRCNNOptions) -> FasterRCNN:
    """Faster R-CNN with `parts.num_classes` object classes (label 0 is background inside the RoI head)."""
    return FasterRCNN(parts.body, parts.num_classes, input_size=parts.input_size, mean=parts.mean,
                      std=parts.std, options=options, postprocess=parts.postprocess)
