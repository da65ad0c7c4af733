"""Shared fixtures: a tiny synthetic shapes set and a checkpoint trained on it for a few seconds.

Session-scoped, so the whole suite builds them once.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from datasets.synthetic.shapes import make_shapes
from tiny_run import tiny_config

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


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
    from detection.tasks import build_trainer

    out = tmp_path_factory.mktemp("run") / "tiny"
    cfg = tiny_config(out, shapes_dir, **{"train.epochs": "2"})
    build_trainer(cfg, progress=False).fit()
    return out / "best.pt"
