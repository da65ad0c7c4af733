"""A tiny training config for tests: configs/demo.yaml pointed at a small dataset, one epoch.

Importable by name from every test folder (pytest puts tests/ on sys.path for tests/conftest.py).
"""
from __future__ import annotations

from pathlib import Path

from detection.config import Config, load_config

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "configs" / "demo.yaml"


def tiny_config(tmp: Path, data: Path, **overrides: str) -> Config:
    """configs/demo.yaml pointed at `data` (annotations.json + images/), writing into `tmp`, 1 epoch."""
    items = {
        "output_dir": str(tmp), "train.epochs": "1", "train.eval_every": "0", "train.max_minutes": "0",
        "train.warmup_iters": "5", "train.log_every": "1",
        "data.train.annotations": str(data / "annotations.json"), "data.train.images": str(data / "images"),
        "data.val.annotations": str(data / "annotations.json"), "data.val.images": str(data / "images"),
    }
    items.update(overrides)
    return load_config(DEMO, [f"{k}={v}" for k, v in items.items()])
