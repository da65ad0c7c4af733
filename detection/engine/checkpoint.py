"""Checkpoint I/O: plain data (config, weights, categories, metrics, training state), loaded weights_only.

A checkpoint alone rebuilds its model: `load_model(path)` needs nothing else, whatever kind of model it holds.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from datasets.core.atomic import atomic_path
from datasets.core.errors import UserError
from detection.config import Config, config_from_dict, family_of
from detection.engine.migrate import upgrade
from detection.utils.device import resolve_device
from detection.utils.io import read_torch_file

FORMAT = "detpipe-checkpoint"
FORMAT_VERSION = 4  # 2: the detector contract (model.neck, model.postprocess); 3: train.warmup_epochs; 4: the
# vgg16 backbone's maps end at conv3_3..conv5_3 (older vgg16 checkpoints become vgg16_pooled). Older ones are
# upgraded on load (detection.engine.migrate)


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """torch.save `state` (plus format tags) to a temporary name, then rename over `path`."""
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, **state}, tmp)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint with weights_only=True, upgraded to the current format; UserError when missing,
    corrupt or not ours."""
    state = read_torch_file(path, "checkpoint")
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UserError(f"{path}: not a detpipe checkpoint (no 'format: {FORMAT}' tag)")
    if state.get("format_version", 0) > FORMAT_VERSION:
        raise UserError(f"{path}: checkpoint format {state['format_version']} is newer than this code")
    for key in ("config", "model", "categories"):
        if key not in state:
            raise UserError(f"{path}: checkpoint lacks {key!r}")
    return upgrade(state, FORMAT_VERSION)


def checkpoint_config(state: dict, path: str | Path = "checkpoint") -> Config:
    try:
        return config_from_dict(state["config"])
    except UserError as exc:
        raise UserError(f"{path}: stored config is invalid: {exc}") from None


def load_weights(model: torch.nn.Module, weights: dict, path: str | Path = "checkpoint") -> None:
    """Strictly load weights; a mismatch (a checkpoint of another model) is a UserError."""
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise UserError(f"{path}: weights do not fit the model ({first})") from None


KINDS = {"detection": "detector", "siamfc": "siamfc", "reid": "reid"}  # a family's task -> the kind of model
NOUNS = {"detector": "detector", "siamfc": "tracker", "reid": "embedder"}  # "a yolo detector checkpoint"
WANTED = {"detector": "a detector", "siamfc": "a single-object tracker", "reid": "a re-identification embedder"}
USES = {"detector": "detect with it: python -m detection.predict --checkpoint {path} ...; track its objects: "
                    "python -m detection.track --checkpoint {path} --source VIDEO --out DIR",
        "siamfc": "track with it: python -m detection.track --checkpoint {path} --source VIDEO --init x,y,w,h "
                  "--out DIR",
        "reid": "give it to the multi-object tracker: python -m detection.track --checkpoint DET.pt --reid {path} ..."}
RECIPES = {"detector": "configs/demo.yaml", "siamfc": "configs/siamfc_tiny.yaml", "reid": "configs/reid_tiny.yaml"}


class WrongModelKind(UserError):
    """The checkpoint holds another kind of model than the caller needs (a tracker where a detector was asked)."""


@dataclass
class LoadedModel:
    """What a checkpoint holds, rebuilt: its kind ("detector" | "siamfc" | "reid"), the model in eval mode on
    `device` (a Detector, a SiamFCNet, a ReIDNet), its Config, categories, the raw state (epoch, metrics, ...) and
    the file it came from."""

    kind: str
    model: torch.nn.Module
    config: Config
    categories: list[dict]
    state: dict[str, Any]
    path: Path
    device: torch.device


def model_kind(cfg: Config) -> str:
    """The kind of model a config trains: "detector", "siamfc" or "reid" (its family's task)."""
    return KINDS[family_of(cfg.model.name).task]


def check_kind(kind: str, cfg: Config, path: str | Path, expect: str | tuple[str, ...]) -> None:
    """WrongModelKind naming what the checkpoint holds, what it is for, and what was needed."""
    wanted = (expect,) if isinstance(expect, str) else tuple(expect)
    if kind in wanted:
        return
    needed = " or ".join(WANTED[w] for w in wanted)
    raise WrongModelKind(f"{path}: a {cfg.model.name} {NOUNS[kind]} checkpoint, not {needed} "
                         f"({USES[kind].format(path=path)}; train {WANTED[wanted[0]]} from a config like "
                         f"{RECIPES[wanted[0]]})")


def build_model(cfg: Config, num_classes: int) -> torch.nn.Module:
    """The network a config describes, for a checkpoint's weights: the backbone's starting weights
    (model.pretrained) are not read, the checkpoint holds every weight."""
    model_cfg = dataclasses.replace(cfg.model, pretrained="")
    if model_kind(cfg) == "detector":
        from detection.models import build_detector  # late: models import torchvision

        return build_detector(model_cfg, num_classes=num_classes, input_size=cfg.data.input_size)
    return family_of(cfg.model.name).build_network(model_cfg)


def load_model(path: str | Path, device: torch.device | str = "cpu",
               expect: str | tuple[str, ...] | None = None) -> LoadedModel:
    """Read any checkpoint of ours and rebuild what it holds, in eval mode on `device` (auto | cpu | cuda[:N]).

    `expect`: the kind (or kinds) the caller can use; another is a WrongModelKind (a UserError) that says what the
    checkpoint is for, raised before the model is built. UserError when the file is missing, not a checkpoint, its
    config is invalid or its weights do not fit.
    """
    state = load_checkpoint(path)
    cfg = checkpoint_config(state, path)
    kind = model_kind(cfg)
    if expect is not None:
        check_kind(kind, cfg, path, expect)
    model = build_model(cfg, len(state["categories"]))
    load_weights(model, state["model"], path)
    device = device if isinstance(device, torch.device) else resolve_device(device)
    return LoadedModel(kind, model.to(device).eval(), cfg, state["categories"], state, Path(path), device)
