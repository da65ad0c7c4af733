"""NECKS entry `ssd300_vgg`: torchvision's SSD300 feature extractor (SSDFeatureExtractorVGG) over VGG-16's maps.

conv4_3 through an L2Norm, then pool5 (3x3, stride 1), fc6 and fc7 as convolutions, and four extra levels (Liu et
al., SSD, fig. 2). The weight names follow torchvision's, so its SSD300 weights map one to one.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from datasets.core.errors import UserError
from detection.backbones.base import Backbone, ShapeSpec
from detection.necks.select import choose_maps
from detection.registry import NECKS

# the maps it puts out, with SSD300's strides: at its 300 px input the last two levels, 3x3 convolutions without
# padding, leave 3x3 and 1x1 maps, 100 and 300 px apart (torchvision's steps)
LEVELS = {"conv4_3": 8, "fc7": 16, "conv8_2": 32, "conv9_2": 64, "conv10_2": 100, "conv11_2": 300}
EXTRA = [(1024, 256, 512, 2, 1), (512, 128, 256, 2, 1), (256, 128, 256, 1, 0), (256, 128, 256, 1, 0)]


def extra_level(cin: int, mid: int, cout: int, stride: int, padding: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, mid, 1), nn.ReLU(inplace=True),
                         nn.Conv2d(mid, cout, 3, stride=stride, padding=padding), nn.ReLU(inplace=True))


def xavier(module: nn.Module) -> None:
    """torchvision's init of the layers VGG does not have: Xavier-uniform weights, zero biases."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)


def round_up_first_pool(backbone: Backbone, name: str) -> None:
    """The max pool that starts stage `name` (VGG-16's pool3 before c3) rounds up, as torchvision's SSD300 sets
    it: 75 -> 38 at a 300 px input. Maps of inputs divisible by 8 are the same either way."""
    stages = getattr(backbone, "stages", None)
    stage = stages[name] if isinstance(stages, nn.ModuleDict) and name in stages else None
    first = stage[0] if isinstance(stage, nn.Sequential) and len(stage) else None
    if isinstance(first, nn.MaxPool2d):
        first.ceil_mode = True


class SSD300Extras(Backbone):
    """Maps conv4_3 (the first of `names`, L2-normalised and scaled per channel, initially by 20), fc7 (after the
    second of `names`: pool5, fc6 a 3x3 conv of dilation 6, fc7 a 1x1 conv, 1024 channels) and conv8_2..conv11_2."""

    def __init__(self, backbone: Backbone, names: list[str]) -> None:
        super().__init__()
        self.body, self.names = backbone, list(names)
        shapes = backbone.output_shape()
        first, second = shapes[names[0]], shapes[names[1]]
        self.scale_weight = nn.Parameter(torch.full((first.channels,), 20.0))
        self.fc = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1),
                                nn.Conv2d(second.channels, 1024, 3, padding=6, dilation=6), nn.ReLU(inplace=True),
                                nn.Conv2d(1024, 1024, 1), nn.ReLU(inplace=True))
        self.extra = nn.ModuleList(extra_level(*spec) for spec in EXTRA)
        xavier(self.fc)
        xavier(self.extra)
        channels = [first.channels, 1024] + [spec[2] for spec in EXTRA]
        self._shapes = {name: ShapeSpec(c, stride) for (name, stride), c in zip(LEVELS.items(), channels)}

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        maps = self.body(x)
        out = OrderedDict(conv4_3=self.scale_weight.view(1, -1, 1, 1) * F.normalize(maps[self.names[0]]))
        last = self.fc(maps[self.names[1]])
        out["fc7"] = last
        for name, layer in zip(list(LEVELS)[2:], self.extra):
            last = layer(last)
            out[name] = last
        return out

    def output_shape(self) -> dict[str, ShapeSpec]:
        return dict(self._shapes)


@NECKS.register("ssd300_vgg")
def ssd300_vgg(backbone: Backbone, features: list[str], channels: int, levels: int = 0) -> SSD300Extras:
    """`features` (default: the backbone's stride-8 and stride-16 maps, VGG-16's conv4_3 and conv5_3) and the six
    maps of torchvision's SSD300; `channels` is not read (the layers are SSD300's)."""
    shapes = backbone.output_shape()
    names = choose_maps(backbone, features, None) if features else [
        next((n for n, s in shapes.items() if s.stride == stride), f"<none at stride {stride}>") for stride in (8, 16)]
    strides = [shapes[n].stride if n in shapes else 0 for n in names]
    if strides != [8, 16]:
        raise UserError(f"model.features: the ssd300_vgg neck reads a stride-8 and a stride-16 map (VGG-16's c3 "
                        f"and c4), got {names} of the backbone's {list(shapes)}")
    if levels not in (0, len(LEVELS)):
        raise UserError(f"model.neck_levels={levels}: the ssd300_vgg neck puts out its {len(LEVELS)} maps "
                        f"(leave model.neck_levels at 0)")
    round_up_first_pool(backbone, names[0])
    return SSD300Extras(backbone, names)
