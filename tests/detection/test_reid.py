"""The re-id embedder: the batch-hard triplet loss, unit-norm embeddings, a few Trainer steps on generated shapes
(the loss falls, a checkpoint loads as an Embedder), and `detection.track --reid` on a crossing sequence."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from datasets.core.errors import UserError
from datasets.synthetic.sequences import make_sequences
from datasets.synthetic.shapes import make_shapes
from detection.cli.track import main
from detection.config import load_config
from detection.engine.checkpoint import WrongModelKind, load_model
from detection.tasks import build_trainer
from detection.tracking.load import load_embedder, load_tracker
from detection.tracking.metrics import mot_metrics
from detection.tracking.mot_io import read_mot
from detection.tracking.reid_net import batch_hard_triplet_loss, build_reid_net
from tiny_run import ROOT


def test_loss_is_zero_for_well_separated_identities_and_positive_otherwise():
    identities = torch.tensor([0, 0, 1, 1])
    separated = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    assert batch_hard_triplet_loss(separated, identities, margin=0.3) == 0
    mixed = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])  # each nearer the other identity
    assert batch_hard_triplet_loss(mixed, identities, margin=0.3) > 1
    assert batch_hard_triplet_loss(separated, torch.tensor([0, 1, 2, 3]), margin=0.3) == 0  # no positive pair


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp("reid")
    annotations = make_shapes(root / "shapes", 8, seed=2)
    return root, annotations


def reid_config(root, annotations, **overrides):
    items = {"output_dir": root / "run", "device": "cpu", "train.epochs": 3, "train.eval_every": 3,
             "train.max_minutes": 0, "train.warmup_epochs": 0, "train.log_every": 1, "train.lr": 0.003,
             "model.reid.objects_per_epoch": 64, "model.reid.crop_size": 32, "model.reid.val_objects": 16,
             "data.train.annotations": annotations, "data.train.images": annotations.parent / "images",
             "data.val.annotations": annotations, "data.val.images": annotations.parent / "images", **overrides}
    return load_config(ROOT / "configs" / "reid_tiny.yaml", [f"{k}={v}" for k, v in items.items()])


def test_embeddings_are_unit_norm(shapes):
    cfg = reid_config(*shapes)
    net = build_reid_net(cfg.model).eval()
    embeddings = net(torch.rand(5, 3, 32, 32))
    assert embeddings.shape == (5, 64)
    assert torch.allclose(embeddings.norm(dim=1), torch.ones(5), atol=1e-5)


@pytest.fixture(scope="module")
def trained(shapes):
    root, annotations = shapes
    torch.manual_seed(0)
    metrics = build_trainer(reid_config(root, annotations), progress=False).fit()
    return root / "run", metrics


def test_a_tiny_reid_model_trains_through_the_trainer_and_its_loss_falls(trained):
    run, metrics = trained
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss_triplet"] for r in records if "loss_triplet" in r]
    assert len(losses) >= 6 and np.mean(losses[-3:]) < np.mean(losses[:3])
    assert 0 <= metrics["top1"] <= 1 and (run / "best.pt").is_file()


def test_a_reid_run_resumes_from_its_last_checkpoint(shapes, trained, tmp_path):
    shutil.copytree(trained[0], tmp_path / "run")
    cfg = reid_config(tmp_path, shapes[1], **{"train.epochs": 4})
    trainer = build_trainer(cfg, resume=True, progress=False)
    assert trainer.epoch == 3
    trainer.fit()
    assert trainer.epoch == 4 and "top1" in trainer.metrics


def test_the_checkpoint_loads_as_an_embedder(trained):
    embed = load_embedder(trained[0] / "best.pt")
    image = np.random.default_rng(0).integers(0, 255, (64, 80, 3), dtype=np.uint8)
    found = embed(image, np.array([[2, 3, 30, 40], [40, 10, 79, 63]], np.float32))
    assert found.shape == (2, 64) and np.allclose(np.linalg.norm(found, axis=1), 1, atol=1e-5)
    assert embed(image, np.zeros((0, 4))).shape == (0, 64)


def test_an_embedder_is_not_a_detector_nor_a_single_object_tracker(trained):
    with pytest.raises(UserError, match="not a detector.*--reid"):
        load_model(trained[0] / "best.pt", expect="detector")
    with pytest.raises(WrongModelKind, match="not a single-object tracker"):
        load_tracker(trained[0] / "best.pt")


def test_a_detector_checkpoint_is_not_an_embedder(trained, tmp_path):
    state = torch.load(trained[0] / "best.pt", weights_only=True)
    state["config"]["model"] = {"name": "yolo", "backbone": "tiny"}
    torch.save(state, tmp_path / "det.pt")
    with pytest.raises(UserError, match="not a re-identification embedder"):
        load_embedder(tmp_path / "det.pt")


def test_track_cli_accepts_reid(shapes, trained, tmp_path, capsys):
    root, annotations = shapes
    folder = make_sequences(annotations, annotations.parent / "images", root / "seqs", 1, seed=3, frames=12,
                            objects=3, size=128)[0]
    gt = read_mot(folder / "gt" / "gt.txt")
    lines = [f"{f},-1,{b[0]:g},{b[1]:g},{b[2]:g},{b[3]:g},0.9,-1,-1,-1" for f, b in zip(gt.frames, gt.boxes)]
    (tmp_path / "det.txt").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    assert main(["--source", str(folder / "seq-0001.mp4"), "--detections", str(tmp_path / "det.txt"), "--out",
                 str(out), "--reid", str(trained[0] / "best.pt"), "--no-video", "--device", "cpu"]) == 0
    assert "frames/s" in capsys.readouterr().out
    assert mot_metrics(gt, read_mot(out / "seq-0001.txt"))["mota"] > 0.8
