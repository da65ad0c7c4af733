"""NECKS entry `none`: pass chosen backbone maps through unchanged, and the map choice every neck shares.

Default choice: the backbone's last (coarsest) map.
"""
from __future__ import annotations

from collections import OrderedDict

import torch

from datasets.core.errors import UserError
from detection.backbones.base import Backbone, ShapeSpec
from detection.registry import NECKS


def choose_maps(backbone: Backbone, features: list[str], default_last: int | None) -> list[str]:
    """`features` checked against the backbone's maps; empty: the last `default_last` maps (None: all)."""
    available = list(backbone.output_shape())
    chosen = list(features) or available[-default_last if default_last else 0:]
    unknown = [name for name in chosen if name not in available]
    if unknown:
        raise UserError(f"model.features: {unknown} not among the backbone's maps {available}")
    return chosen


def level_name(backbone_map: str) -> str:
    """The name of the map a neck makes from a backbone map: c3 -> p3, any other x -> p_x."""
    return f"p{backbone_map[1:]}" if backbone_map.startswith("c") else f"p_{backbone_map}"


def fixed_levels(neck: str, levels: int) -> None:
    """UserError when model.neck_levels is set for a neck whose number of maps follows model.features."""
    if levels:
        raise UserError(f"model.neck_levels={levels}: the {neck!r} neck puts out one map per model.features entry "
                        f"(leave model.neck_levels at 0; ssd_extra adds levels)")


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


@NECKS.register("none")
def none(backbone: Backbone, features: list[str], channels: int, levels: int = 0) -> SelectFeatures:
    """The backbone's `features` as they are (default: the last map); `channels` is not used."""
    fixed_levels("none", levels)
    return SelectFeatures(backbone, choose_maps(backbone, features, default_last=1))
