"""A tiny CNN backbone (about 0.3M parameters) for CPU tests, demos and small images.

Four stages c2..c5 at strides 4, 8, 16, 32, each conv-BN-ReLU twice.
"""
from __future__ import annotations

from collections import OrderedDict

from torch import nn

from detection.backbones.base import (IMAGENET_MEAN, IMAGENET_STD, FeatureExtractor, ShapeSpec, freeze_stages,
                                      load_pretrained)
from detection.registry import BACKBONES


def conv_bn_relu(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def stage(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(conv_bn_relu(cin, cout, stride), conv_bn_relu(cout, cout))


@BACKBONES.register("tiny")
def tiny(pretrained: str = "", trainable_layers: int = -1, width: int = 16) -> FeatureExtractor:
    """Maps c2..c5 with width*2, *4, *6, *8 channels at strides 4, 8, 16, 32; ImageNet normalisation
    (trained from scratch, any would do: this one lets it swap with the torchvision entries)."""
    w = width
    stages = OrderedDict(
        c2=nn.Sequential(conv_bn_relu(3, w, 2), stage(w, 2 * w, 2)),
        c3=stage(2 * w, 4 * w, 2),
        c4=stage(4 * w, 6 * w, 2),
        c5=stage(6 * w, 8 * w, 2),
    )
    shapes = {"c2": ShapeSpec(2 * w, 4), "c3": ShapeSpec(4 * w, 8),
              "c4": ShapeSpec(6 * w, 16), "c5": ShapeSpec(8 * w, 32)}
    backbone = FeatureExtractor(stages, shapes, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    if pretrained:
        load_pretrained(backbone, pretrained)
    freeze_stages(backbone, trainable_layers)
    return backbone
