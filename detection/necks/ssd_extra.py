"""NECKS entry `ssd_extra`: chosen backbone maps plus SSD's extra layers, stride-2 levels that see larger objects.

Each extra level is a 1x1 conv to channels/2 then a 3x3 stride-2 conv to `channels` (Liu et al., SSD).
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from datasets.core.errors import UserError
from detection.backbones.base import Backbone, ShapeSpec
from detection.necks.select import choose_maps
from detection.registry import NECKS


def extra_level(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout // 2, 1), nn.ReLU(inplace=True),
                         nn.Conv2d(cout // 2, cout, 3, stride=2, padding=1), nn.ReLU(inplace=True))


class ExtraLevels(Backbone):
    """The backbone's `names` maps as they are, then `blocks` e1, e2, ... each at twice the last stride, block i
    putting out `channels[i]` (each block takes the previous map)."""

    def __init__(self, backbone: Backbone, names: list[str], blocks: list[nn.Module], channels: list[int]) -> None:
        super().__init__()
        self.body = backbone
        self.names = list(names)
        shapes = backbone.output_shape()
        self._shapes = {name: shapes[name] for name in names}
        stride = shapes[names[-1]].stride
        for i, cout in enumerate(channels):
            stride *= 2
            self._shapes[f"e{i + 1}"] = ShapeSpec(cout, stride)
        self.extra = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        maps = self.body(x)
        out = OrderedDict((name, maps[name]) for name in self.names)
        last = out[self.names[-1]]
        for i, layer in enumerate(self.extra):
            last = layer(last)
            out[f"e{i + 1}"] = last
        return out

    def output_shape(self) -> dict[str, ShapeSpec]:
        return dict(self._shapes)


@NECKS.register("ssd_extra")
def ssd_extra(backbone: Backbone, features: list[str], channels: int, levels: int = 0) -> ExtraLevels:
    """`features` (default: the backbone's last two maps) plus extra levels up to `levels` maps
    (default: two extra)."""
    names = choose_maps(backbone, features, default_last=2)
    total = levels or len(names) + 2
    if total <= len(names):
        raise UserError(f"model.neck_levels={levels}: ssd_extra needs more levels than the {len(names)} "
                        f"chosen maps {names}")
    cin = backbone.output_shape()[names[-1]].channels
    blocks = [extra_level(cin if i == 0 else channels, channels) for i in range(total - len(names))]
    return ExtraLevels(backbone, names, blocks, [channels] * len(blocks))
