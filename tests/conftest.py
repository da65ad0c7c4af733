"""Shared fixtures: a tiny synthetic shapes set and a checkpoint trained on it for a few seconds.

Session-scoped, so the whole suite builds them once.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from datasets.synth import make_shapes
from detection.config import load_config

ROOT = Path(__file__).resolve().parents[1]

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


def tiny_config(tmp: Path, data: Path, **overrides: str):
    """configs/demo.yaml pointed at `data`, writing into `tmp`, with short training."""
    items = {
        "output_dir": str(tmp), "train.epochs": "1", "train.eval_every": "0", "train.max_minutes": "0",
        "train.warmup_iters": "5", "train.log_every": "1",
        "data.train.annotations": str(data / "annotations.json"), "data.train.images": str(data / "images"),
        "data.val.annotations": str(data / "annotations.json"), "data.val.images": str(data / "images"),
    }
    items.update(overrides)
    return load_config(ROOT / "configs" / "demo.yaml", [f"{k}={v}" for k, v in items.items()])


@pytest.fixture(scope="session")
def shapes_dir(tmp_path_factory) -> Path:
    """16 synthetic shapes images (128x128) with annotations.json and images/."""
    out = tmp_path_factory.mktemp("shapes")
    make_shapes(out, 16, seed=3)
    return out


@pytest.fixture(scope="session")
def shapes_image(shapes_dir: Path) -> Path:
    return sorted((shapes_dir / "images").iterdir())[0]


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, shapes_dir: Path) -> Path:
    """best.pt of Faster R-CNN (tiny backbone) trained 2 epochs on `shapes_dir`: weak but real."""
    from detection.engine.trainer import Trainer

    out = tmp_path_factory.mktemp("run") / "tiny"
    cfg = tiny_config(out, shapes_dir, **{"train.epochs": "2"})
    Trainer(cfg, progress=False).fit()
    return out / "best.pt"
