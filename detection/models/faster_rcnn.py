"""Faster R-CNN on any registry backbone: torchvision's RPN, RoI heads and box coder.

Input: images [N, 3, S, S] float in 0..1 (letterboxed); boxes are absolute [x1, y1, x2, y2] in that frame.
"""
from __future__ import annotations

import torch
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.ops import MultiScaleRoIAlign

from detection.backbones import build_backbone
from detection.config import FasterRCNNConfig, ModelConfig
from detection.errors import UserError
from detection.necks import build_body
from detection.registry import DETECTORS

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


class FasterRCNNDetector(nn.Module):
    """Batch-tensor face of torchvision's FasterRCNN, shared by every detector family.

    train: forward(images, targets) -> dict of scalar losses, targets a list of
    {"boxes": [K, 4] xyxy, "labels": [K] int64 in 1..num_classes}.
    eval: forward(images) -> list of {"boxes": [D, 4] xyxy, "scores": [D], "labels": [D]}.
    """

    def __init__(self, model: FasterRCNN) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor, targets: list[dict] | None = None):
        return self.model(list(images), targets)


def _anchors(opts: FasterRCNNConfig, levels: int) -> AnchorGenerator:
    ratios = tuple(opts.aspect_ratios)
    if levels == 1:
        return AnchorGenerator((tuple(opts.anchor_sizes),), (ratios,))
    if len(opts.anchor_sizes) != levels:
        raise UserError(f"model.faster_rcnn.anchor_sizes: {len(opts.anchor_sizes)} sizes for "
                        f"{levels} feature maps; give one size per map")
    return AnchorGenerator(tuple((s,) for s in opts.anchor_sizes), (ratios,) * levels)


@DETECTORS.register("faster_rcnn")
def faster_rcnn(cfg: ModelConfig, num_classes: int, input_size: int) -> FasterRCNNDetector:
    """Faster R-CNN with `num_classes` object classes (label 0 is background)."""
    backbone = build_backbone(cfg.backbone, cfg.pretrained, cfg.trainable_layers)
    body = build_body(backbone, cfg.features, cfg.fpn, cfg.fpn_channels)
    shapes = body.output_shape()
    roi_maps = [name for name in shapes if name != "pool"]
    channels = body.out_channels
    opts = cfg.faster_rcnn
    model = FasterRCNN(
        body, num_classes=None,
        min_size=input_size, max_size=input_size, image_mean=IMAGENET_MEAN, image_std=IMAGENET_STD,
        rpn_anchor_generator=_anchors(opts, len(shapes)),
        box_roi_pool=MultiScaleRoIAlign(roi_maps, output_size=7, sampling_ratio=2),
        box_head=TwoMLPHead(channels * 49, opts.representation_size),
        box_predictor=FastRCNNPredictor(opts.representation_size, num_classes + 1),
        rpn_pre_nms_top_n_train=opts.rpn_pre_nms_top_n_train,
        rpn_post_nms_top_n_train=opts.rpn_post_nms_top_n_train,
        rpn_pre_nms_top_n_test=opts.rpn_pre_nms_top_n_test,
        rpn_post_nms_top_n_test=opts.rpn_post_nms_top_n_test,
        rpn_batch_size_per_image=opts.rpn_batch_size_per_image,
        box_batch_size_per_image=opts.box_batch_size_per_image,
        box_score_thresh=opts.box_score_thresh, box_nms_thresh=opts.box_nms_thresh,
        box_detections_per_img=opts.detections_per_img,
    )
    return FasterRCNNDetector(model)
