"""Helpers shared by the tests/detection files (imported by name: pytest puts this folder on sys.path).

Not a conftest: tests/conftest.py and tests/*/conftest.py all import as the module `conftest`,
so `from conftest import ...` would depend on collection order.
"""
from __future__ import annotations

from pathlib import Path

from detection.config import Config, load_config

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "configs" / "demo.yaml"


def tiny_config(tmp: Path, data: Path, **overrides: str) -> Config:
    """configs/demo.yaml pointed at `data` (annotations.json + images/), writing into `tmp`, 1 epoch.

    Same defaults as tests/conftest.py's tiny_config.
    """
    items = {
        "output_dir": str(tmp), "train.epochs": "1", "train.eval_every": "0", "train.max_minutes": "0",
        "train.warmup_iters": "5", "train.log_every": "1",
        "data.train.annotations": str(data / "annotations.json"), "data.train.images": str(data / "images"),
        "data.val.annotations": str(data / "annotations.json"), "data.val.images": str(data / "images"),
    }
    items.update(overrides)
    return load_config(DEMO, [f"{k}={v}" for k, v in items.items()])


def overrides_list(cfg_items: dict[str, str]) -> list[str]:
    return [f"{k}={v}" for k, v in cfg_items.items()]
