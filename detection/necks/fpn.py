"""Feature pyramid (torchvision.ops.FeaturePyramidNetwork) over chosen backbone maps, or a plain selector.

Both are Backbones: they return an OrderedDict of maps and declare channels and strides.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from detection.backbones.base import Backbone, ShapeSpec
from detection.errors import UserError


class SelectFeatures(Backbone):
    """Pass through the named maps of a backbone (no neck)."""

    def __init__(self, backbone: Backbone, names: list[str]) -> None:
        super().__init__()
        self.body = backbone
        self.names = list(names)

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        maps = self.body(x)
        return OrderedDict((name, maps[name]) for name in self.names)

    def output_shape(self) -> dict[str, ShapeSpec]:
        shapes = self.body.output_shape()
        return {name: shapes[name] for name in self.names}


class FPN(Backbone):
    """Top-down pyramid: maps c_i -> p_i with `channels` each, plus 'pool' (stride x2 of the last)."""

    def __init__(self, backbone: Backbone, names: list[str], channels: int) -> None:
        super().__init__()
        self.body = backbone
        self.names = list(names)
        shapes = backbone.output_shape()
        self.fpn = FeaturePyramidNetwork([shapes[n].channels for n in names], channels,
                                         extra_blocks=LastLevelMaxPool())
        strides = [shapes[n].stride for n in names]
        self._shapes = {f"p{n[1:]}" if n.startswith("c") else f"p_{n}": ShapeSpec(channels, s)
                        for n, s in zip(names, strides)}
        self._shapes["pool"] = ShapeSpec(channels, strides[-1] * 2)

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        maps = self.body(x)
        pyramid = self.fpn(OrderedDict((name, maps[name]) for name in self.names))
        return OrderedDict(zip(self._shapes, pyramid.values()))

    def output_shape(self) -> dict[str, ShapeSpec]:
        return dict(self._shapes)


def build_body(backbone: Backbone, features: list[str], fpn: bool, fpn_channels: int) -> Backbone:
    """Choose maps (default: all with FPN, the last without) and wrap them in FPN or a selector."""
    available = list(backbone.output_shape())
    chosen = list(features) or (available if fpn else available[-1:])
    unknown = [name for name in chosen if name not in available]
    if unknown:
        raise UserError(f"model.features: {unknown} not among the backbone's maps {available}")
    if fpn:
        return FPN(backbone, chosen, fpn_channels)
    return SelectFeatures(backbone, chosen)
