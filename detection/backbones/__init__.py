"""Backbone registry entries, one file per kind; the BACKBONES registry imports them when first read.

Use `build_backbone(name, ...)` or `detection.registry.BACKBONES.get(name)`.
"""
from datasets.core.errors import UserError
from detection.backbones.base import Backbone, FeatureExtractor, ShapeSpec
from detection.registry import BACKBONES


def build_backbone(name: str, pretrained: str = "", trainable_layers: int = -1) -> FeatureExtractor:
    """Build a registered backbone; an unknown name is a UserError listing close matches."""
    try:
        factory = BACKBONES.get(name)
    except KeyError as exc:
        raise UserError(f"model.backbone: {exc.args[0]}") from None
    return factory(pretrained=pretrained, trainable_layers=trainable_layers)


def list_backbones() -> list[str]:
    return BACKBONES.names()


__all__ = ["Backbone", "FeatureExtractor", "ShapeSpec", "build_backbone", "list_backbones", "BACKBONES"]
