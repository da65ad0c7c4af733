"""A tiny training config for tests: configs/demo.yaml pointed at a small dataset, one epoch.

Importable by name from every test folder (pytest puts tests/ on sys.path for tests/conftest.py).
"""
from __future__ import annotations

from pathlib import Path

from datasets.synthetic.shapes import make_shapes
from detection.config import Config, load_config

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "configs" / "demo.yaml"
# The demo model on 64 px images with fewer proposals; with shapes_64's 8 images, batch 4 is two steps an epoch.
FAST_64 = {"data.input_size": "64", "train.batch_size": "4", "model.faster_rcnn.anchor_sizes": "[8,16,32,64]",
           "model.faster_rcnn.rpn_pre_nms_top_n_train": "200", "model.faster_rcnn.rpn_post_nms_top_n_train": "100",
           "model.faster_rcnn.rpn_pre_nms_top_n_test": "100", "model.faster_rcnn.rpn_post_nms_top_n_test": "50",
           "train.warmup_epochs": "0"}


def shapes_64(root: Path) -> Path:
    """8 synthetic 64 px shapes images with their annotations.json in `root`."""
    make_shapes(root, 8, seed=5, image_size=64, min_size=12, max_size=32)
    return root


def tiny_config(tmp: Path, data: Path, **overrides: str) -> Config:
    """configs/demo.yaml pointed at `data` (annotations.json + images/), writing into `tmp`, 1 epoch."""
    items = {
        "output_dir": str(tmp), "train.epochs": "1", "train.eval_every": "0", "train.max_minutes": "0",
        "train.warmup_epochs": "0", "train.log_every": "1",
        "data.train.annotations": str(data / "annotations.json"), "data.train.images": str(data / "images"),
        "data.val.annotations": str(data / "annotations.json"), "data.val.images": str(data / "images"),
    }
    items.update(overrides)
    return load_config(DEMO, [f"{k}={v}" for k, v in items.items()])
