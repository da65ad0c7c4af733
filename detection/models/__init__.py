"""Detector families, one file each; importing this package registers them.

`build_detector(model_cfg, num_classes, input_size)` is the one place config becomes a model.
"""
from torch import nn

from detection.config import ModelConfig
from detection.errors import UserError
from detection.models import faster_rcnn  # noqa: F401  (registers "faster_rcnn")
from detection.registry import DETECTORS


def build_detector(cfg: ModelConfig, num_classes: int, input_size: int) -> nn.Module:
    """Build the registered detector `cfg.name` for `num_classes` object classes."""
    try:
        factory = DETECTORS.get(cfg.name)
    except KeyError as exc:
        raise UserError(f"model.name: {exc.args[0]}") from None
    return factory(cfg, num_classes=num_classes, input_size=input_size)


def list_detectors() -> list[str]:
    return DETECTORS.names()
