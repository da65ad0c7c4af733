"""NECKS entry `pan`: a path-aggregation network (PANet, as in YOLOv4/v5), top-down then bottom-up over chosen maps.

Every output level p<i> has `channels` channels and its backbone map's stride; conv-BN-SiLU blocks throughout.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from detection.backbones.base import Backbone, ShapeSpec, conv_bn_silu
from detection.necks.select import choose_maps, fixed_levels, level_name
from detection.registry import NECKS


class PAN(Backbone):
    """Lateral 1x1 convs to `channels`; top-down: upsample, add, 3x3 conv; bottom-up: 3x3 stride-2 conv, add, 3x3 conv."""

    def __init__(self, backbone: Backbone, names: list[str], channels: int) -> None:
        super().__init__()
        self.body = backbone
        self.names = list(names)
        shapes = backbone.output_shape()
        self.lateral = nn.ModuleList(conv_bn_silu(shapes[n].channels, channels, 1) for n in names)
        self.top_down = nn.ModuleList(conv_bn_silu(channels, channels) for _ in names[:-1])
        self.down = nn.ModuleList(conv_bn_silu(channels, channels, 3, 2) for _ in names[:-1])
        self.bottom_up = nn.ModuleList(conv_bn_silu(channels, channels) for _ in names[:-1])
        self._shapes = {level_name(n): ShapeSpec(channels, shapes[n].stride) for n in names}

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        maps = self.body(x)
        lateral = [conv(maps[name]) for conv, name in zip(self.lateral, self.names)]
        inner = [lateral[-1]]  # top-down, coarsest first
        for i in range(len(lateral) - 2, -1, -1):
            up = F.interpolate(inner[0], size=lateral[i].shape[-2:], mode="nearest")
            inner.insert(0, self.top_down[i](lateral[i] + up))
        outs = [inner[0]]  # bottom-up, finest first
        for i in range(1, len(inner)):
            outs.append(self.bottom_up[i - 1](inner[i] + self.down[i - 1](outs[-1])))
        return OrderedDict(zip(self._shapes, outs))

    def output_shape(self) -> dict[str, ShapeSpec]:
        return dict(self._shapes)


@NECKS.register("pan")
def pan(backbone: Backbone, features: list[str], channels: int, levels: int = 0) -> PAN:
    """PAN over `features` (default: the backbone's last three maps), `channels` per level."""
    fixed_levels("pan", levels)
    return PAN(backbone, choose_maps(backbone, features, default_last=3), channels)
