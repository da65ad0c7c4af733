"""Checkpoint I/O: plain data (config, weights, categories, metrics, training state), loaded weights_only.

A checkpoint alone rebuilds its model: `build_from_checkpoint` needs nothing else.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from datasets.core.atomic import atomic_path
from detection.config import Config, config_from_dict, family_of
from detection.engine.migrate import upgrade
from detection.errors import UserError
from detection.utils.io import read_torch_file

FORMAT = "detpipe-checkpoint"
FORMAT_VERSION = 3  # 2: the detector contract (model.neck, model.postprocess); 3: train.warmup_epochs. Older
# ones are upgraded on load (detection.engine.migrate)


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


def build_from_checkpoint(path: str | Path, device: torch.device | str = "cpu"):
    """(model in eval mode on `device`, Config, state) from a checkpoint path alone."""
    from detection.models import build_detector  # late: models import torchvision

    state = load_checkpoint(path)
    cfg = checkpoint_config(state, path)
    if family_of(cfg.model.name).task == "reid":
        raise UserError(f"{path}: a {cfg.model.name} embedder checkpoint, not a detector (give it to the multi-object "
                        f"tracker: python -m detection.track --checkpoint DET.pt --reid {path} ...)")
    if family_of(cfg.model.name).task != "detection":
        raise UserError(f"{path}: a {cfg.model.name} tracker checkpoint, not a detector (track with it: "
                        f"python -m detection.track --checkpoint {path} --source VIDEO --init x,y,w,h --out DIR)")
    # the checkpoint holds every weight: the backbone's starting weights (model.pretrained) are not needed
    model_cfg = dataclasses.replace(cfg.model, pretrained="")
    model = build_detector(model_cfg, num_classes=len(state["categories"]), input_size=cfg.data.input_size)
    load_weights(model, state["model"], path)
    return model.to(device).eval(), cfg, state
