"""What `python -m detection.inspect` looks at: a model from a config, a checkpoint or a backbone name.

Also parses --input (CxHxW). Building never downloads or loads pretrained weights (a config's are dropped).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from datasets.core.errors import UserError

DEFAULT_SIDE = 320  # data.input_size's default: the input of a bare backbone unless --input says otherwise


@dataclass
class Subject:
    """The model to inspect, a title for the report, its default input side, and for a detector its family
    and options (where anchor sizes are read)."""

    model: nn.Module
    title: str
    side: int
    family: str | None = None
    options: Any = None


def parse_input(text: str) -> tuple[int, int, int]:
    """'3x320x320' -> (3, 320, 320); UserError for anything else (the models take RGB: C is 3)."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match:
        raise UserError(f"--input {text!r}: expected CxHxW, e.g. 3x320x320")
    channels, height, width = (int(v) for v in match.groups())
    if channels != 3:
        raise UserError(f"--input {text!r}: the models take RGB images, so C must be 3")
    if height < 1 or width < 1:
        raise UserError(f"--input {text!r}: height and width must be positive")
    return channels, height, width


def from_backbone(name: str) -> Subject:
    from detection.backbones import build_backbone
    from detection.registry import BACKBONES

    if name not in BACKBONES:
        try:
            BACKBONES.get(name)
        except KeyError as exc:
            raise UserError(f"--backbone: {exc.args[0]}") from None
    return Subject(build_backbone(name), f"{name} backbone", DEFAULT_SIDE)


def detector_title(cfg, classes: int, source: str) -> str:
    model = cfg.model
    return (f"{model.name} detector: {model.backbone} backbone, {model.neck} neck, "
            f"{classes} class{'' if classes == 1 else 'es'}, "
            f"built for {cfg.data.input_size} px ({source})")


def from_config(path: str, num_classes: int) -> Subject:
    """The detector a config describes, with `num_classes` classes and no pretrained weights."""
    from detection.config import load_config
    from detection.models import build_detector

    cfg = load_config(path)
    cfg.model.pretrained = ""
    model = build_detector(cfg.model, num_classes=num_classes, input_size=cfg.data.input_size)
    return Subject(model, detector_title(cfg, num_classes, path), cfg.data.input_size, cfg.model.name,
                   cfg.model.options)


def from_checkpoint(path: str) -> Subject:
    """The detector a checkpoint holds, with its weights."""
    from detection.engine.checkpoint import load_model

    if not Path(path).is_file():
        raise UserError(f"checkpoint not found: {path}")
    loaded = load_model(path, expect="detector")
    cfg = loaded.config
    return Subject(loaded.model, detector_title(cfg, len(loaded.categories), path), cfg.data.input_size,
                   cfg.model.name, cfg.model.options)
