"""Necks: what sits between a backbone's maps and a detector head (NECKS registry, one file per entry).

`build_neck(name, backbone, features, channels, levels)` picks the maps a head uses and wraps them.
"""
from __future__ import annotations

from datasets.core.errors import UserError
from detection.backbones.base import Backbone
from detection.registry import NECKS


def build_neck(name: str, backbone: Backbone, features: list[str], channels: int, levels: int = 0) -> Backbone:
    """The registered neck `name` over `backbone`; the result is a Backbone (maps + output_shape()).

    `features`: backbone maps to use (empty: the neck's default); `channels`: of the maps the neck makes;
    `levels`: how many maps it puts out (0: its default; a neck with a fixed number refuses others).
    """
    try:
        factory = NECKS.get(name)
    except KeyError as exc:
        raise UserError(f"model.neck: {exc.args[0]}") from None
    return factory(backbone, features, channels, levels)


def list_necks() -> list[str]:
    return NECKS.names()


__all__ = ["build_neck", "list_necks", "NECKS"]
