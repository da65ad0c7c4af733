"""Detector families, one file each, found by the DETECTORS registry; the contract is in base.py.

`build_detector(model_cfg, num_classes, input_size)` is the one place a model config becomes a model.
"""
from __future__ import annotations

from datasets.core.errors import UserError
from detection.backbones import build_backbone
from detection.config import ModelConfig, family_of
from detection.models.base import Detector, DetectorParts
from detection.necks import build_neck
from detection.registry import DETECTORS


def build_detector(cfg: ModelConfig, num_classes: int, input_size: int) -> Detector:
    """Build the backbone and neck once, then hand them to the registered family `cfg.name`."""
    family = family_of(cfg.name)
    if family.task != "detection":
        raise UserError(f"model.name: {cfg.name!r} is a {family.task} tracker, not a detector (track with it: "
                        f"python -m detection.track --checkpoint CKPT --init x,y,w,h)")
    options = cfg.options if cfg.options is not None else family.options()
    if not isinstance(options, family.options):
        raise UserError(f"model.{cfg.name}: options are a {type(options).__name__}, "
                        f"expected {family.options.__name__}")
    backbone = build_backbone(cfg.backbone, cfg.pretrained, cfg.trainable_layers)
    body = build_neck(cfg.neck or family.default_neck, backbone, cfg.features, cfg.neck_channels, cfg.neck_levels)
    parts = DetectorParts(body=body, num_classes=num_classes, input_size=input_size,
                          mean=backbone.mean, std=backbone.std, postprocess=cfg.postprocess)
    return family(parts, options)


def list_detectors() -> list[str]:
    return DETECTORS.names()


__all__ = ["Detector", "DetectorParts", "build_detector", "list_detectors"]
