"""NECKS entry `ssdlite_extra`: torchvision's SSDLite extractor (SSDLiteFeatureExtractorMobileNet) over two maps.

The two maps as they are, then four extra levels, each a 1x1 conv, a depthwise 3x3 stride-2 conv and a 1x1 conv with
BatchNorm and ReLU6 (torchvision's blocks and init, so its SSDLite320 weights map one to one).
"""
from __future__ import annotations

import functools

from torch import nn
from torchvision.models.detection.ssdlite import _extra_block, _normal_init

from datasets.core.errors import UserError
from detection.backbones.base import Backbone
from detection.necks.select import choose_maps
from detection.necks.ssd_extra import ExtraLevels
from detection.registry import NECKS

CHANNELS = (512, 256, 256, 128)  # of the extra levels, torchvision's at width 1.0


@NECKS.register("ssdlite_extra")
def ssdlite_extra(backbone: Backbone, features: list[str], channels: int, levels: int = 0) -> ExtraLevels:
    """`features` (default: the backbone's last two maps, MobileNetV3's c4 and c5 in torchvision's SSDLite cut) and
    four extra levels; `channels` is not read (the levels are SSDLite's)."""
    names = choose_maps(backbone, features, default_last=2)
    if len(names) != 2 or levels not in (0, 2 + len(CHANNELS)):
        raise UserError(f"model.features / model.neck_levels: the ssdlite_extra neck reads two maps and puts out "
                        f"{2 + len(CHANNELS)}, got {names} and neck_levels={levels}")
    norm = functools.partial(nn.BatchNorm2d, eps=0.001, momentum=0.03)
    ins = [backbone.output_shape()[names[-1]].channels, *CHANNELS[:-1]]
    blocks = [_extra_block(cin, cout, norm) for cin, cout in zip(ins, CHANNELS)]
    neck = ExtraLevels(backbone, names, blocks, list(CHANNELS))
    _normal_init(neck.extra)
    return neck
