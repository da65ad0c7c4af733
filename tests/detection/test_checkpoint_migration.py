"""Checkpoints of format 1 (before the detector contract) load through the upgrade step and answer the same.

The fixture was written by that code (tests/fixtures/checkpoint_v1/README.md says how).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from datasets.core.images import read_rgb
from detection.config import config_from_dict
from detection.engine.checkpoint import FORMAT_VERSION, load_checkpoint, save_checkpoint
from detection.engine.migrate import upgrade
from detection.inference.predictor import Predictor

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "checkpoint_v1"
ROOT = Path(__file__).resolve().parents[2]


def test_fixture_is_format_1():
    raw = torch.load(FIXTURE / "best.pt", weights_only=True)
    assert raw["format_version"] == 1
    assert raw["config"]["model"]["fpn"] is True and "detections_per_img" in raw["config"]["model"]["faster_rcnn"]


def test_upgrade_moves_the_keys_that_moved():
    state = load_checkpoint(FIXTURE / "best.pt")
    assert state["format_version"] == FORMAT_VERSION == 4
    model = state["config"]["model"]
    assert model["neck"] == "fpn" and model["neck_channels"] == 16 and "fpn" not in model
    assert model["postprocess"] == {"score_threshold": 0.05, "nms_iou": 0.5, "max_detections": 50}
    assert not {"box_score_thresh", "box_nms_thresh", "detections_per_img"} & set(model["faster_rcnn"])


def test_upgrade_of_fpn_false_gives_no_neck_and_leaves_the_input_alone():
    old = {"format_version": 1, "config": {"model": {"name": "faster_rcnn", "fpn": False, "fpn_channels": 8,
                                                      "faster_rcnn": {"box_nms_thresh": 0.6}}}}
    new = upgrade(old, 2)
    assert new["config"]["model"]["neck"] == "none" and new["config"]["model"]["postprocess"] == {"nms_iou": 0.6}
    assert old["config"]["model"]["fpn"] is False  # the loaded dict is not changed in place
    assert upgrade(new, 2) == new  # current checkpoints pass through


def test_upgrade_drops_warmup_iters_for_warmup_epochs():
    """Format 2 counted warmup in iterations (train.warmup_iters); format 3 in epochs, before the schedule."""
    old = {"format_version": 2, "config": {"model": {"name": "yolo"}, "train": {"warmup_iters": 200, "lr": 0.01}}}
    new = upgrade(old, 3)
    assert new["config"]["train"] == {"lr": 0.01} and new["format_version"] == 3
    assert old["config"]["train"]["warmup_iters"] == 200
    assert config_from_dict(new["config"]).train.warmup_epochs == 1.0


def test_format_3_vgg16_checkpoint_loads_its_old_cut_and_answers_the_same(tmp_path):
    """Before format 4 the vgg16 maps were pool2..pool5: such a checkpoint rebuilds on vgg16_pooled, that cut, with
    the weights it was saved with; other backbones pass through."""
    from detection.engine.checkpoint import FORMAT, load_model
    from detection.models import build_detector

    cfg = config_from_dict({"data": {"input_size": 64}, "model": {
        "name": "ssd", "backbone": "vgg16_pooled", "features": ["c4", "c5"], "neck_channels": 32,
        "postprocess": {"score_threshold": 0.0, "max_detections": 20}}})
    torch.manual_seed(0)
    model = build_detector(cfg.model, num_classes=2, input_size=64).eval()
    config = cfg.to_dict()
    config["model"]["backbone"] = "vgg16"  # what format 3 wrote for this model
    torch.save({"format": FORMAT, "format_version": 3, "config": config, "model": model.state_dict(),
                "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}, tmp_path / "old.pt")
    loaded = load_model(tmp_path / "old.pt")
    assert loaded.config.model.backbone == "vgg16_pooled" and loaded.state["format_version"] == 4
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        for a, b in zip(model(images), loaded.model(images)):
            assert len(a["boxes"]) == 20 and torch.equal(a["boxes"], b["boxes"])
            assert torch.equal(a["scores"], b["scores"]) and torch.equal(a["labels"], b["labels"])
    other = {"format_version": 3, "config": {"model": {"name": "ssd", "backbone": "resnet18"}}}
    assert upgrade(other, 4) == {**other, "format_version": 4}


def test_format_1_checkpoint_gives_the_same_detections():
    expected = json.loads((FIXTURE / "detections.json").read_text())
    predictor = Predictor.from_checkpoint(FIXTURE / "best.pt", device="cpu")
    images = [read_rgb(FIXTURE / "images" / name) for name in expected["images"]]
    answers = predictor.predict(images)  # the checkpoint's own post-processing (0.05, 50), as when recorded
    assert [len(a) for a in answers] == [len(e) for e in expected["detections"]]
    assert sum(len(a) for a in answers) > 0
    for answer, want in zip(answers, expected["detections"]):
        for got, old in zip(answer, want):
            assert got["category_id"] == old["category_id"] and got["category"] == old["category"]
            assert got["score"] == pytest.approx(old["score"], abs=1e-4)
            assert got["bbox"] == pytest.approx(old["bbox"], abs=1e-2)


def test_resaved_format_1_checkpoint_is_current(tmp_path):
    state = load_checkpoint(FIXTURE / "best.pt")
    save_checkpoint(tmp_path / "again.pt", state)
    raw = torch.load(tmp_path / "again.pt", weights_only=True)
    assert raw["format_version"] == FORMAT_VERSION and "neck" in raw["config"]["model"]
    assert isinstance(Predictor.from_checkpoint(tmp_path / "again.pt", "cpu").model, torch.nn.Module)


def test_predict_cli_on_format_1_checkpoint(tmp_path):
    """The scripts take an old checkpoint like a new one (here: predict over the fixture images)."""
    out = tmp_path / "pred"
    result = subprocess.run([sys.executable, "-m", "detection.predict", "--checkpoint", str(FIXTURE / "best.pt"),
                             "--source", str(FIXTURE / "images"), "--out", str(out), "--score-threshold", "0.05",
                             "--device", "cpu"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    results = json.loads((out / "predictions.json").read_text())
    expected = json.loads((FIXTURE / "detections.json").read_text())
    assert len(results) == sum(len(d) for d in expected["detections"])

