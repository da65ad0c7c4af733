"""NECKS entries `fpn` and `fpn_bn` (BatchNorm in its convs): a top-down feature pyramid
(torchvision.ops.FeaturePyramidNetwork) over chosen maps.

Maps c_i become p_i with `channels` each, plus 'pool' (max-pooled last level, stride x2).
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from detection.backbones.base import Backbone, ShapeSpec
from detection.necks.select import choose_maps, fixed_levels, level_name
from detection.registry import NECKS


class FPN(Backbone):
    """Top-down pyramid: maps c_i -> p_i with `channels` each, plus 'pool' (stride x2 of the last)."""

    def __init__(self, backbone: Backbone, names: list[str], channels: int, norm_layer=None) -> None:
        super().__init__()
        self.body = backbone
        self.names = list(names)
        shapes = backbone.output_shape()
        self.fpn = FeaturePyramidNetwork([shapes[n].channels for n in names], channels,
                                         extra_blocks=LastLevelMaxPool(), norm_layer=norm_layer)
        strides = [shapes[n].stride for n in names]
        self._shapes = {level_name(n): ShapeSpec(channels, s) for n, s in zip(names, strides)}
        self._shapes["pool"] = ShapeSpec(channels, strides[-1] * 2)

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        maps = self.body(x)
        pyramid = self.fpn(OrderedDict((name, maps[name]) for name in self.names))
        return OrderedDict(zip(self._shapes, pyramid.values()))

    def output_shape(self) -> dict[str, ShapeSpec]:
        return dict(self._shapes)


@NECKS.register("fpn")
def fpn(backbone: Backbone, features: list[str], channels: int, levels: int = 0) -> FPN:
    """FPN over `features` (default: every map of the backbone), `channels` per level, plus 'pool'."""
    fixed_levels("fpn", levels)
    return FPN(backbone, choose_maps(backbone, features, default_last=None), channels)


@NECKS.register("fpn_bn")
def fpn_bn(backbone: Backbone, features: list[str], channels: int, levels: int = 0) -> FPN:
    """FPN with BatchNorm after each of its convs (torchvision's fasterrcnn_resnet50_fpn_v2), plus 'pool'."""
    fixed_levels("fpn_bn", levels)
    return FPN(backbone, choose_maps(backbone, features, default_last=None), channels, norm_layer=nn.BatchNorm2d)
