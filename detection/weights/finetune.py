"""Starting from one of our checkpoints: `model.pretrained=CKPT.pt` in a training config, and `import CKPT.pt
--categories NEW.json` (remap). Tensors whose name and shape fit are loaded, class rows matched by category name.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from datasets.core.errors import UserError
from detection.config import ModelConfig, family_of
from detection.engine.checkpoint import FORMAT, checkpoint_config, load_checkpoint, save_checkpoint
from detection.models import build_detector
from detection.models.base import Detector
from detection.weights.remap import Transfer, check_unique_names, read_categories, transfer


def is_checkpoint(path: str | Path) -> bool:
    """Whether `path` is one of our checkpoints (not a backbone state_dict); read lazily (mmap), never fails."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - anything else is the backbone loader's to explain
        return False
    return isinstance(state, dict) and state.get("format") == FORMAT


def detector_checkpoint(path: str | Path) -> dict:
    """A detector checkpoint, upgraded to the current format; UserError for a tracker's or a broken file."""
    state = load_checkpoint(path)
    family = family_of(checkpoint_config(state, path).model.name)
    if family.task != "detection":
        raise UserError(f"{path}: a {family.name} checkpoint, not a detector's")
    return state


def start_detector(cfg: ModelConfig, categories: list[dict], input_size: int) -> tuple[Detector, dict | None]:
    """The detector a training config asks for, and the record of what it loaded (None: nothing).

    When model.pretrained is one of our checkpoints, every tensor whose name and shape fit is loaded, class rows
    by category name, the rest fresh; a summary line is printed. Else build_detector's way (a backbone state_dict
    in model.pretrained loads as before)."""
    if not cfg.pretrained or not is_checkpoint(cfg.pretrained):
        return build_detector(cfg, len(categories), input_size), None
    state = detector_checkpoint(cfg.pretrained)
    check_unique_names(categories, "the training set's categories")
    model = build_detector(dataclasses.replace(cfg, pretrained=""), len(categories), input_size)
    result = transfer(model, cfg.name, state["model"], state["categories"], categories)
    if result.loaded + result.remapped == 0:
        theirs = checkpoint_config(state, cfg.pretrained).model
        raise UserError(f"model.pretrained {cfg.pretrained}: no tensor fits {cfg.name} on {cfg.backbone} (the "
                        f"checkpoint is {theirs.name} on {theirs.backbone}); set model.* as the checkpoint's config")
    print(result.line(cfg.pretrained), flush=True)
    return model, result.record(str(cfg.pretrained))


def remap_checkpoint(path: str | Path, categories_file: str | Path, out: str | Path) -> Transfer:
    """Write checkpoint `path` onto the categories of `categories_file` as `out`: class rows of known names kept,
    new names fresh (seeded: the same file each time), dropped names gone; no training state."""
    if Path(out).resolve() == Path(path).resolve():
        raise UserError(f"--out {out} would overwrite the checkpoint it reads; give another name")
    state = detector_checkpoint(path)
    cfg = checkpoint_config(state, path)
    categories = read_categories(categories_file)
    torch.manual_seed(0)
    model = build_detector(dataclasses.replace(cfg.model, pretrained=""), len(categories), cfg.data.input_size)
    result = transfer(model, cfg.model.name, state["model"], state["categories"], categories)
    source = {"remapped_from": str(path), "categories": str(categories_file)}
    save_checkpoint(out, {"config": state["config"], "model": model.state_dict(), "categories": categories,
                          "metrics": {}, "source": source})
    return result
