"""Every shipped detector recipe in configs/ builds its model and runs one training step on tiny data.

Only the data, output folder, batch and local weights are swapped; the model is the file's.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from datasets.synthetic.shapes import make_shapes
from detection.config import load_config
from detection.tasks import build_trainer
from tiny_run import ROOT

RECIPES = sorted(p for p in (ROOT / "configs").glob("*.yaml") if "model" in (yaml.safe_load(p.read_text()) or {}))


def test_recipes_are_found():
    assert {"demo.yaml", "faster_rcnn_tiny.yaml", "faster_rcnn_r50_fpn.yaml"} <= {p.name for p in RECIPES}


@pytest.fixture(scope="module")
def two_images(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("two")
    make_shapes(out, 2, seed=11)
    return out


@pytest.mark.parametrize("recipe", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_builds_and_takes_one_training_step(recipe: Path, two_images: Path, tmp_path: Path):
    file_size = load_config(recipe).data.input_size
    overrides = {
        "output_dir": tmp_path, "model.pretrained": "", "data.num_workers": 0, "train.batch_size": 2,
        "data.input_size": min(file_size, 192), "device": "cpu",
        "data.train.annotations": two_images / "annotations.json", "data.train.images": two_images / "images",
        "data.val.annotations": "", "data.val.images": "", "data.proposal_cache": tmp_path / "proposals",
    }
    if load_config(recipe).model.name == "rcnn":  # a crop per proposal through the backbone: keep them few and small
        overrides.update({"model.rcnn.crop_size": 64, "model.rcnn.rois_per_image": 8})
    cfg = load_config(recipe, [f"{k}={v}" for k, v in overrides.items()])
    trainer = build_trainer(cfg, progress=False)
    before = [p.detach().clone() for p in trainer.model.parameters() if p.requires_grad]
    images, targets = next(iter(trainer.loader(trainer.train_set, True, cfg.seed)))
    losses = trainer.train_step(images, targets)
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values()), losses
    after = [p for p in trainer.model.parameters() if p.requires_grad]
    assert any(not torch.equal(a, b) for a, b in zip(before, after)), "the step changed no weight"
