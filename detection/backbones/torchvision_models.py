"""Registry entries wrapping torchvision.models classification networks as multi-scale backbones.

Each entry cuts the network into stages whose maps are c2..c5 (strides 4..32), declares torchvision's ImageNet
input normalisation (what its pretrained weights expect) and never downloads weights.
"""
from __future__ import annotations

import functools
from collections import OrderedDict
from typing import Callable

import torch
import torchvision
from torch import nn

from detection.backbones.base import (IMAGENET_MEAN, IMAGENET_STD, FeatureExtractor, ShapeSpec, freeze_stages,
                                      load_pretrained)
from detection.registry import BACKBONES

CLASSIFIER_KEYS = ("fc.", "classifier.")


def measure_shapes(stages: "OrderedDict[str, nn.Module]", size: int = 128) -> dict[str, ShapeSpec]:
    """Run a dummy image through the stages to read each map's channels and stride."""
    extractor = FeatureExtractor(stages, {name: ShapeSpec(0, 1) for name in stages})
    was_training = extractor.training
    extractor.eval()
    with torch.no_grad():
        maps = extractor(torch.zeros(1, 3, size, size))
    extractor.train(was_training)
    shapes = {}
    for name, fmap in maps.items():
        stride = 2 ** round(torch.log2(torch.tensor(size / fmap.shape[-1])).item())
        shapes[name] = ShapeSpec(channels=fmap.shape[1], stride=int(stride))
    return shapes


def _from_sequential(features: nn.Sequential, cuts: dict[str, tuple[int, int]]) -> "OrderedDict[str, nn.Module]":
    """Slice a torchvision `features` Sequential into named stages at [start, stop) indices."""
    return OrderedDict((name, features[start:stop]) for name, (start, stop) in cuts.items())


Split = Callable[[nn.Module], "OrderedDict[str, nn.Module]"]
# entry name -> (the torchvision network it cuts, how): read by `classifier_names`
SPLITS: dict[str, tuple[Callable[[], nn.Module], Split]] = {}


def _build(make: Callable[[], nn.Module], split: Split, pretrained: str, trainable_layers: int,
           maps: tuple[str, ...] = ()) -> FeatureExtractor:
    """The network cut into stages; every stage's output is a map, or only those named in `maps`."""
    net = make()
    if pretrained:
        load_pretrained(net, pretrained, optional=CLASSIFIER_KEYS)
    stages = split(net)
    shapes = {name: spec for name, spec in measure_shapes(stages).items() if not maps or name in maps}
    backbone = FeatureExtractor(stages, shapes, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    freeze_stages(backbone, trainable_layers)
    return backbone


def classifier_names(name: str) -> dict[str, str]:
    """Entry `name`'s weight names -> those of the torchvision classification network it cuts, e.g.
    stages.c3.0.conv1.weight -> layer2.0.conv1.weight (built on the meta device: no memory, no weights)."""
    make, split = SPLITS[name]
    with torch.device("meta"):
        net = make()
        ours = nn.ModuleDict(split(net))
    theirs = {id(t): key for key, t in net.state_dict(keep_vars=True).items()}
    return {f"stages.{key}": theirs[id(t)] for key, t in ours.state_dict(keep_vars=True).items()}


def _resnet_stages(net: nn.Module) -> "OrderedDict[str, nn.Module]":
    stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1)
    return OrderedDict(c2=stem, c3=net.layer2, c4=net.layer3, c5=net.layer4)


def _register_resnet(name: str) -> None:
    make = getattr(torchvision.models, name)
    SPLITS[name] = (lambda: make(weights=None), _resnet_stages)

    @BACKBONES.register(name)
    def factory(pretrained: str = "", trainable_layers: int = -1) -> FeatureExtractor:
        return _build(lambda: make(weights=None), _resnet_stages, pretrained, trainable_layers)


for _name in ("resnet18", "resnet34", "resnet50", "resnet101"):
    _register_resnet(_name)


# Stage cuts of `features` for the Sequential-based families, as [start, stop) indices.
SEQUENTIAL_CUTS: dict[str, dict[str, tuple[int, int]]] = {
    "mobilenet_v2": {"c2": (0, 4), "c3": (4, 7), "c4": (7, 14), "c5": (14, 19)},
    "mobilenet_v3_small": {"c2": (0, 2), "c3": (2, 4), "c4": (4, 9), "c5": (9, 13)},
    "mobilenet_v3_large": {"c2": (0, 4), "c3": (4, 7), "c4": (7, 13), "c5": (13, 17)},
    "squeezenet1_1": {"c2": (0, 5), "c3": (5, 8), "c4": (8, 13)},
    "alexnet": {"c3": (0, 3), "c4": (3, 6), "c5": (6, 13)},
    "efficientnet_b0": {"c2": (0, 3), "c3": (3, 4), "c4": (4, 6), "c5": (6, 9)},
}


def _register_sequential(name: str, cuts: dict[str, tuple[int, int]]) -> None:
    make = getattr(torchvision.models, name)
    SPLITS[name] = (lambda: make(weights=None), lambda net: _from_sequential(net.features, cuts))

    @BACKBONES.register(name)
    def factory(pretrained: str = "", trainable_layers: int = -1) -> FeatureExtractor:
        return _build(lambda: make(weights=None), lambda net: _from_sequential(net.features, cuts),
                      pretrained, trainable_layers)


for _name, _cuts in SEQUENTIAL_CUTS.items():
    _register_sequential(_name, _cuts)


# VGG-16: each map ends at the last ReLU of its stride, where torchvision's SSD300 and the Fast R-CNN paper read it
# (c2 conv3_3, receptive field 40; c3 conv4_3, 92; c4 conv5_3, 196; c5 pool5, 212), and the pooling layer that
# halves the resolution starts the next stage. c0 (conv1) and c1 (conv2) are stages without a map, so that
# trainable_layers can freeze what torchvision's detectors freeze: its trainable_backbone_layers k is our k + 1
# (our c5, pool5, has no weights).
VGG16_CUTS = {"c0": (0, 4), "c1": (4, 9), "c2": (9, 16), "c3": (16, 23), "c4": (23, 30), "c5": (30, 31)}
VGG16_MAPS = ("c2", "c3", "c4", "c5")
# Before checkpoint format 4 the `vgg16` entry cut after the pooling layers (c2..c5 = pool2..pool5, c3's receptive
# field 44); `vgg16_pooled` keeps that cut, so older checkpoints load as they were trained (detection.engine.migrate).
VGG16_POOLED_CUTS = {"c2": (0, 10), "c3": (10, 17), "c4": (17, 24), "c5": (24, 31)}
SPLITS["vgg16"] = (lambda: torchvision.models.vgg16(weights=None),
                   lambda net: _from_sequential(net.features, VGG16_CUTS))
SPLITS["vgg16_pooled"] = (lambda: torchvision.models.vgg16(weights=None),
                          lambda net: _from_sequential(net.features, VGG16_POOLED_CUTS))


@BACKBONES.register("vgg16")
def vgg16(pretrained: str = "", trainable_layers: int = -1) -> FeatureExtractor:
    """VGG-16 with maps c2..c5 at strides 4..32 ending at conv3_3, conv4_3, conv5_3 and pool5; takes vgg16's
    ImageNet weights. Stages c0..c5: trainable_layers=5 freezes conv1 only (torchvision's SSD300 default)."""
    make, split = SPLITS["vgg16"]
    return _build(make, split, pretrained, trainable_layers, maps=VGG16_MAPS)


@BACKBONES.register("vgg16_pooled")
def vgg16_pooled(pretrained: str = "", trainable_layers: int = -1) -> FeatureExtractor:
    """VGG-16 cut after its pooling layers (maps c2..c5 = pool2..pool5), the `vgg16` entry of checkpoints before
    format 4; takes vgg16's ImageNet weights."""
    make, split = SPLITS["vgg16_pooled"]
    return _build(make, split, pretrained, trainable_layers)


# torchvision's Faster R-CNN MobileNetV3-Large FPN reads the outputs of block 13 (the first of the stride-32 stage,
# 160 channels) and of the last conv (960): c4 and c5 here, both at stride 32. trainable_layers=2 freezes what
# torchvision's default (3) freezes: blocks 0..6.
MOBILENET_DET_CUTS = {"c2": (0, 4), "c3": (4, 7), "c4": (7, 14), "c5": (14, 17)}
SPLITS["mobilenet_v3_large_det"] = (lambda: torchvision.models.mobilenet_v3_large(weights=None),
                                    lambda net: _from_sequential(net.features, MOBILENET_DET_CUTS))


@BACKBONES.register("mobilenet_v3_large_det")
def mobilenet_v3_large_det(pretrained: str = "", trainable_layers: int = -1) -> FeatureExtractor:
    """MobileNetV3-Large cut where torchvision's detectors cut it: maps c4 (block 13, 160 channels) and c5
    (960 channels), both at stride 32; takes mobilenet_v3_large's ImageNet weights."""
    make, split = SPLITS["mobilenet_v3_large_det"]
    return _build(make, split, pretrained, trainable_layers, maps=("c4", "c5"))


def _ssdlite_stages(net: nn.Module) -> "OrderedDict[str, nn.Module]":
    """torchvision's SSDLite cut: c4 ends inside block 13 (the first of stride 32) after its expansion conv, c5 is
    the rest of that block and the last conv."""
    f = net.features
    return OrderedDict(c2=f[0:4], c3=f[4:7], c4=nn.Sequential(*f[7:13], f[13].block[0]),
                       c5=nn.Sequential(f[13].block[1:], *f[14:]))


def _mobilenet_ssdlite() -> nn.Module:
    norm = functools.partial(nn.BatchNorm2d, eps=0.001, momentum=0.03)
    return torchvision.models.mobilenet_v3_large(weights=None, reduced_tail=True, norm_layer=norm)


SPLITS["mobilenet_v3_large_ssdlite"] = (_mobilenet_ssdlite, _ssdlite_stages)


@BACKBONES.register("mobilenet_v3_large_ssdlite")
def mobilenet_v3_large_ssdlite(pretrained: str = "", trainable_layers: int = -1) -> FeatureExtractor:
    """MobileNetV3-Large as torchvision's COCO SSDLite320 has it: the reduced tail (480 channels last), BatchNorm
    momentum 0.03, maps c4 (block 13's expansion, 672 channels, stride 16) and c5 (480 channels, stride 32).
    mobilenet_v3_large's ImageNet weights do not load into it: their tail is not reduced."""
    return _build(_mobilenet_ssdlite, _ssdlite_stages, pretrained, trainable_layers, maps=("c4", "c5"))
