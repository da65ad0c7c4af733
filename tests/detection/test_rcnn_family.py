"""R-CNN and Fast R-CNN (RoI pool, SPP) through the shared trainer, data path, evaluator and predictor.

Proposals are made once into the cache, follow the augmentation with the ground truth, and are computed
on the fly from the checkpoint alone at inference.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from datasets.core.errors import UserError
from datasets.synthetic.shapes import make_shapes
from detection.cli.eval import main as eval_main
from detection.config import load_config
from detection.data.coco import CocoDetection
from detection.data.proposals import PROPOSAL
from detection.data.transforms import build_transform
from detection.inference.predictor import Predictor
from detection.tasks import build_trainer
from tiny_run import ROOT

FAMILIES = {"rcnn": "rcnn_tiny.yaml", "fast_rcnn": "fast_rcnn_tiny.yaml", "fast_rcnn_spp": "fast_rcnn_tiny.yaml"}


@pytest.fixture(scope="module")
def six_images(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("six")
    make_shapes(out, 6, seed=5)
    return out


def config(name: str, data: Path, out: Path, **extra):
    items = {
        "output_dir": out, "device": "cpu", "data.num_workers": 0, "data.input_size": 128,
        "data.proposal_cache": out.parent / "proposal_cache", "train.batch_size": 3, "train.epochs": 1,
        "train.warmup_epochs": 0, "train.eval_every": 1, "train.plots": False, "train.log_every": 1,
        "data.train.annotations": data / "annotations.json", "data.train.images": data / "images",
        "data.val.annotations": data / "annotations.json", "data.val.images": data / "images",
    }
    if name == "fast_rcnn_spp":
        items["model.fast_rcnn.pool"] = "spp"
    if name == "rcnn":
        items["model.rcnn.proposals.top_n_test"] = 100
    items.update(extra)
    return load_config(ROOT / "configs" / FAMILIES[name], [f"{k}={v}" for k, v in items.items()])


@pytest.mark.parametrize("name", list(FAMILIES))
def test_loss_falls_on_a_repeated_batch(name, six_images, tmp_path):
    trainer = build_trainer(config(name, six_images, tmp_path / name, **{"data.augment.hflip": 0}), progress=False)
    images, targets = next(iter(trainer.loader(trainer.train_set, False, 0)))
    assert all(len(t["proposals"]) > 0 for t in targets), "proposals come through the data path"
    losses = [trainer.train_step(images, targets)["loss"] for _ in range(40)]
    assert np.mean(losses[-4:]) < 0.8 * np.mean(losses[:2]), losses  # RoIs are sampled anew each step: noisy


@pytest.mark.parametrize("name", ["rcnn", "fast_rcnn"])
def test_trains_evaluates_and_predicts_from_the_checkpoint_alone(name, six_images, tmp_path):
    metrics = build_trainer(config(name, six_images, tmp_path / "run"), progress=False).fit()
    assert {"bbox_mAP", "bbox_mAP_50"} <= set(metrics)
    shutil.rmtree(tmp_path / "proposal_cache")  # eval and predict propose from the images themselves
    code = eval_main(["--checkpoint", str(tmp_path / "run" / "best.pt"), "--images", str(six_images / "images"),
                      "--annotations", str(six_images / "annotations.json"), "--out", str(tmp_path / "eval.json")])
    assert code == 0 and "bbox_mAP" in json.loads((tmp_path / "eval.json").read_text())
    assert not (tmp_path / "proposal_cache").exists()
    predictor = Predictor.from_checkpoint(tmp_path / "run" / "best.pt", device="cpu")
    image = np.full((90, 120, 3), 40, np.uint8)
    image[20:60, 30:80] = 220
    (detections,) = predictor.predict([image], score_threshold=0.0)
    for det in detections:
        x, y, w, h = det["bbox"]
        assert 0 <= x and 0 <= y and x + w <= 120.01 and y + h <= 90.01


def test_proposal_cache_is_filled_once_and_reused(six_images, tmp_path):
    build_trainer(config("fast_rcnn", six_images, tmp_path / "a"), progress=False)
    files = sorted((tmp_path / "proposal_cache").rglob("*.npy"))
    assert len(files) == 6, "one file per image (train and val share the images)"
    stamps = [f.stat().st_mtime_ns for f in files]
    build_trainer(config("fast_rcnn", six_images, tmp_path / "b"), progress=False)
    assert [f.stat().st_mtime_ns for f in sorted((tmp_path / "proposal_cache").rglob("*.npy"))] == stamps


def test_proposals_follow_the_geometric_augmentation(six_images):
    dataset = CocoDetection(six_images / "annotations.json", six_images / "images", None)
    image_id = dataset.ids[0]
    boxes, _ = dataset.raw_target(image_id)
    name = dataset.coco.imgs[image_id]["file_name"]
    dataset.proposals = {name: boxes.copy()}  # proposals equal to the ground truth must stay equal to it
    from detection.config import AugmentConfig
    dataset.transform = build_transform(96, True, AugmentConfig(hflip=1.0, scale_min=0.7, scale_max=1.3, color=0),
                                        seed=1)
    for _ in range(3):
        _, target = dataset[0]
        gt = target["boxes"][target["boxes"][:, 0].argsort()]
        proposals = target["proposals"][target["proposals"][:, 0].argsort()]
        assert torch.allclose(gt, proposals, atol=1e-3) and len(gt) > 0
        assert (target["labels"] != PROPOSAL).all()


def test_image_with_no_objects_and_no_proposals_trains_and_predicts(tmp_path):
    data = tmp_path / "data"
    make_shapes(data, 2, seed=1)
    coco = json.loads((data / "annotations.json").read_text())
    empty = coco["images"][0]
    coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] != empty["id"]]
    (data / "annotations.json").write_text(json.dumps(coco))
    file = tmp_path / "proposals.json"
    file.write_text(json.dumps({im["file_name"]: [] for im in coco["images"]}))
    cfg = config("fast_rcnn", data, tmp_path / "run", **{"data.train.proposals": file,
                                                          "data.val.proposals": file, "train.batch_size": 2})
    metrics = build_trainer(cfg, progress=False).fit()
    assert np.isfinite(metrics["bbox_mAP"])


def test_proposals_file_naming_an_unknown_image_is_a_clear_error(six_images, tmp_path):
    file = tmp_path / "proposals.json"
    file.write_text(json.dumps({"nope.png": [[1, 1, 5, 5]]}))
    cfg = config("fast_rcnn", six_images, tmp_path / "run", **{"data.train.proposals": file})
    with pytest.raises(UserError, match=r"proposals\.json.*nope\.png"):
        build_trainer(cfg, progress=False)
