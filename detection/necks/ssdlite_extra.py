"""NECKS entry `ssdlite_extra`: torchvision's SSDLite extractor (SSDLiteFeatureExtractorMobileNet) over two maps.

The two maps as they are, then four extra levels, each a 1x1 conv, a depthwise 3x3 stride-2 conv and a 1x1 conv with
BatchNorm and ReLU6 (torchvision's blocks and init, so its SSDLite320 weights map one to one).
"""
from __future__ import annotations

import functools
from collections import OrderedDict

import torch
from torch import nn
from torchvision.models.detection.ssdlite import _extra_block, _normal_init

from datasets.core.errors import UserError
from detection.backbones.base import Backbone, ShapeSpec
from detection.necks.select import choose_maps
from detection.registry import NECKS

CHANNELS = (512, 256, 256, 128)  # of the extra levels, torchvision's at width 1.0


class SSDLiteExtras(Backbone):
    """The backbone's `names` maps (two), then extra levels e1..e4 at twice the stride each."""

    def __init__(self, backbone: Backbone, names: list[str]) -> None:
        super().__init__()
        self.body, self.names = backbone, list(names)
        shapes = backbone.output_shape()
        self._shapes = {name: shapes[name] for name in names}
        norm = functools.partial(nn.BatchNorm2d, eps=0.001, momentum=0.03)
        cin, stride, blocks = shapes[names[-1]].channels, shapes[names[-1]].stride, []
        for i, cout in enumerate(CHANNELS):
            blocks.append(_extra_block(cin, cout, norm))
            stride *= 2
            self._shapes[f"e{i + 1}"] = ShapeSpec(cout, stride)
            cin = cout
        self.extra = nn.ModuleList(blocks)
        _normal_init(self.extra)

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


@NECKS.register("ssdlite_extra")
def ssdlite_extra(backbone: Backbone, features: list[str], channels: int, levels: int = 0) -> SSDLiteExtras:
    """`features` (default: the backbone's last two maps, MobileNetV3's c4 and c5 in torchvision's SSDLite cut) and
    four extra levels; `channels` is not read (the levels are SSDLite's)."""
    names = choose_maps(backbone, features, default_last=2)
    if len(names) != 2 or levels not in (0, 2 + len(CHANNELS)):
        raise UserError(f"model.features / model.neck_levels: the ssdlite_extra neck reads two maps and puts out "
                        f"{2 + len(CHANNELS)}, got {names} and neck_levels={levels}")
    return SSDLiteExtras(backbone, names)
