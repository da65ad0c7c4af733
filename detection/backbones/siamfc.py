"""AlexNet-like backbones of the SiamFC paper (Bertinetto et al. 2016): no padding, BN, total stride 8.

`siamfc_alexnet` is the paper's network (127 px -> 6x6, 255 px -> 22x22 maps); `siamfc_tiny` a narrow one for CPU.
"""
from __future__ import annotations

from collections import OrderedDict

from torch import nn

from detection.backbones.base import (IMAGENET_MEAN, IMAGENET_STD, FeatureExtractor, ShapeSpec, freeze_stages,
                                      load_pretrained)
from detection.registry import BACKBONES


def conv_bn_relu(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    """An unpadded convolution, BatchNorm and ReLU (padding would break the Siamese translation equivariance)."""
    return [nn.Conv2d(cin, cout, kernel, stride, groups=groups, bias=False), nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True)]


def siamese_net(widths: tuple[int, int, int, int, int], kernels: tuple[int, int], groups: int) -> "OrderedDict":
    """Stages c2 (conv1 stride 2 + 3x3 max-pool stride 2: stride 4) and c3 (conv2, pool, conv3..conv5: stride 8).

    `widths`: channels of conv1..conv5; `kernels`: sizes of conv1 and conv2 (conv3..5 are 3x3); conv2, conv4 and
    conv5 are split in `groups` as AlexNet's two towers. conv5 ends bare (no BN, no ReLU), as in the paper.
    """
    w1, w2, w3, w4, w5 = widths
    c2 = nn.Sequential(*conv_bn_relu(3, w1, kernels[0], 2), nn.MaxPool2d(3, 2))
    c3 = nn.Sequential(*conv_bn_relu(w1, w2, kernels[1], groups=groups), nn.MaxPool2d(3, 2),
                       *conv_bn_relu(w2, w3, 3), *conv_bn_relu(w3, w4, 3, groups=groups),
                       nn.Conv2d(w4, w5, 3, groups=groups))
    return OrderedDict(c2=c2, c3=c3)


def _build(stages: "OrderedDict", pretrained: str, trainable_layers: int) -> FeatureExtractor:
    channels = [m.out_channels for m in stages["c2"] if isinstance(m, nn.Conv2d)][-1]
    out = [m.out_channels for m in stages["c3"] if isinstance(m, nn.Conv2d)][-1]
    shapes = {"c2": ShapeSpec(channels, 4), "c3": ShapeSpec(out, 8)}
    backbone = FeatureExtractor(stages, shapes, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    if pretrained:
        load_pretrained(backbone, pretrained)
    freeze_stages(backbone, trainable_layers)
    return backbone


@BACKBONES.register("siamfc_alexnet")
def siamfc_alexnet(pretrained: str = "", trainable_layers: int = -1) -> FeatureExtractor:
    """The paper's AlexNet (96-256-384-384-256 channels, 11x11 and 5x5 first kernels, two towers), about 2.3M
    parameters; receptive field 87 px. Maps shrink by the receptive field: an S px input gives (S - 87) / 8 + 1."""
    return _build(siamese_net((96, 256, 384, 384, 256), (11, 5), groups=2), pretrained, trainable_layers)


@BACKBONES.register("siamfc_tiny")
def siamfc_tiny(pretrained: str = "", trainable_layers: int = -1) -> FeatureExtractor:
    """A narrow SiamFC AlexNet for CPU tracking (16-32-64-64-64 channels, 5x5 and 3x3 first kernels), about
    0.1M parameters; receptive field 73 px: 127 px -> 7x7, 255 px -> 23x23 maps, a 17x17 response."""
    return _build(siamese_net((16, 32, 64, 64, 64), (5, 3), groups=1), pretrained, trainable_layers)
