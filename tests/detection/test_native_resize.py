"""Models that resize images themselves (torchvision's imports) get photos at their own size, not letterboxed: the
Predictor answers torchvision's own detections on a non-square photo, eval and fine-tuning run on non-square images.

The torchvision files are made as tests/detection/test_weights.py makes them (no download).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.models import get_model

from datasets.core.coco import new_coco, save_coco
from datasets.core.errors import UserError
from datasets.core.images import write_image
from detection.config import EVAL_MAX_DETECTIONS, EVAL_SCORE_THRESHOLD, config_from_dict
from detection.data.coco import collate, load_coco
from detection.engine.checkpoint import load_checkpoint, load_model
from detection.engine.report import evaluate_checkpoint, evaluate_results
from detection.inference.detections import to_detections
from detection.inference.predictor import Predictor
from detection.tasks import build_trainer
from detection.weights.catalog import cached_path, find
from detection.weights.finetune import remap_checkpoint
from detection.weights.torchvision_import import import_torchvision
from test_weights import MNV3_320, SSDLITE, compare, ssdlite_file  # tests/detection is on sys.path (pytest prepend)
from weights_files import pictures, torchvision_file

SIZES = [(300, 500), (240, 400), (300, 500)]  # (height, width) of the photos of the tiny COCO set


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch) -> Path:
    home = tmp_path / "torch"
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


def imported(name: str, tmp_path: Path) -> tuple[Path, torch.nn.Module]:
    """(our checkpoint of torchvision's `name`, torchvision's own model in eval mode, on the same weights)."""
    out = tmp_path / f"{name}.pt"
    if name == MNV3_320:  # in torch's cache, so that torchvision's model loads it as its COCO file (FrozenBatchNorm)
        weights = torchvision_file(name, cached_path(find(name)))
        theirs = get_model(name, weights="DEFAULT")
    else:
        weights = ssdlite_file(tmp_path / "ssdlite.pth")
        theirs = get_model(name, weights=None, weights_backbone=None)
        theirs.load_state_dict(torch.load(weights, weights_only=True))
    import_torchvision(name, out, file=weights)
    return out, theirs.eval()


def photo(height: int, width: int, seed: int) -> np.ndarray:
    """RGB uint8 [H, W, 3]."""
    return (pictures(1, height, width, seed)[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()


def as_tensor(image: np.ndarray) -> torch.Tensor:
    """What a torchvision user gives the model: [3, H, W] float in 0..1 (to_tensor)."""
    return torch.from_numpy(image).permute(2, 0, 1).float() / 255


@pytest.mark.parametrize("name", [MNV3_320, SSDLITE])
def test_predictor_on_a_non_square_photo_gives_torchvision_detections(name, torch_home, tmp_path):
    checkpoint, theirs = imported(name, tmp_path)
    predictor = Predictor.from_checkpoint(checkpoint, device="cpu")
    assert predictor.model.resizes_itself
    image = photo(300, 500, 1)
    assert torch.equal(predictor.preprocess(image), as_tensor(image))  # its own size, no letterbox
    with torch.no_grad():
        expected = theirs([as_tensor(image)])
        exact = Predictor.from_checkpoint(checkpoint, device="cpu", optimize=False).model  # BatchNorm not folded
        compare(expected, exact.detect_by_size([as_tensor(image)]), name)  # boxes 1e-4, scores 1e-6
    answer = predictor.predict([image])[0]
    want = expected[0]
    assert len(answer) == len(want["boxes"])
    for found, box, score, label in zip(answer, want["boxes"], want["scores"], want["labels"]):
        assert found["category_id"] == int(label) and found["score"] == pytest.approx(float(score), abs=1e-4)
        x1, y1, x2, y2 = box.tolist()  # answers round boxes to 2 decimals
        assert found["bbox"] == pytest.approx([x1, y1, x2 - x1, y2 - y1], abs=0.01 + 1e-4)
    other = photo(240, 400, 2)  # a call of photos of two sizes: each size its own batch, answers in order
    together = predictor.predict([image, other, image])
    for got, alone in zip(together, (answer, predictor.predict([other])[0], answer)):
        assert len(got) == len(alone) > 0 and [d["category_id"] for d in got] == [d["category_id"] for d in alone]
        assert np.allclose([d["bbox"] for d in got], [d["bbox"] for d in alone], atol=0.02)
        assert np.allclose([d["score"] for d in got], [d["score"] for d in alone], atol=1e-4)


def tiny_coco(folder: Path, predictor: Predictor) -> Path:
    """Non-square photos (SIZES) whose ground truth is the model's own detections scoring 0.3 or more: evaluated at
    their own size every one is found at its place, so AP is 1."""
    (folder / "images").mkdir(parents=True)
    images, annotations = [], []
    for index, (height, width) in enumerate(SIZES, 1):
        image = photo(height, width, 10 + index)
        write_image(folder / "images" / f"{index}.png", np.ascontiguousarray(image[:, :, ::-1]))  # BGR on disk
        images.append({"id": index, "file_name": f"{index}.png", "height": height, "width": width})
        for det in predictor.predict([image], score_threshold=0.3)[0]:
            annotations.append({"id": len(annotations) + 1, "image_id": index, "category_id": det["category_id"],
                                "bbox": det["bbox"], "area": det["bbox"][2] * det["bbox"][3], "iscrowd": 0})
    save_coco(folder / "annotations.json", new_coco(images, annotations, predictor.categories))
    return folder


def remapped(name: str, tmp_path: Path) -> Path:
    """The imported `name` moved onto two COCO categories (their class rows kept), as the docs do before eval."""
    checkpoint, _ = imported(name, tmp_path)
    categories = tmp_path / "categories.json"
    categories.write_text(json.dumps({"categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "car"}]}))
    remap_checkpoint(checkpoint, categories, tmp_path / "mine.pt")
    return tmp_path / "mine.pt"


def test_eval_of_an_import_runs_each_photo_at_its_own_size(torch_home, tmp_path):
    checkpoint = remapped(MNV3_320, tmp_path)
    predictor = Predictor.from_checkpoint(checkpoint, device="cpu")
    data = tiny_coco(tmp_path / "coco", predictor)
    assert json.loads((data / "annotations.json").read_text())["annotations"], "no ground truth made"
    annotations, images = str(data / "annotations.json"), str(data / "images")
    found = evaluate_checkpoint(load_model(checkpoint, "cpu"), annotations, images, batch_size=2, progress=False)
    assert found.metrics["bbox_mAP"] == pytest.approx(1.0)
    results = []  # the same as the model's on each photo given at its own size, at evaluation's values
    for image_id, (height, width) in enumerate(SIZES, 1):
        image = as_tensor(photo(height, width, 10 + image_id))[None]
        with torch.no_grad():
            output = predictor.model(image, score_threshold=EVAL_SCORE_THRESHOLD, max_detections=EVAL_MAX_DETECTIONS)[0]
        for det in to_detections(output, 1.0, (height, width), predictor.categories):
            results.append({"image_id": image_id, "bbox": det["bbox"], "score": det["score"],
                            "category_id": det["category_id"]})
    assert evaluate_results(load_coco(annotations), results).metrics == pytest.approx(found.metrics, abs=1e-6)


def finetune_config(checkpoint: Path, data: Path, out: Path, **extra: str):
    """The checkpoint's own config (its model section, so every tensor loads) training on `data` from it."""
    overrides = {"output_dir": out, "device": "cpu", "model.pretrained": checkpoint, "train.batch_size": 2,
                 "train.epochs": 1, "train.eval_every": 0, "train.plots": "false", "train.warmup_epochs": 0,
                 "data.train.annotations": data / "annotations.json", "data.train.images": data / "images",
                 "data.val.annotations": data / "annotations.json", "data.val.images": data / "images", **extra}
    return config_from_dict(load_checkpoint(checkpoint)["config"], [f"{k}={v}" for k, v in overrides.items()])


@pytest.mark.parametrize("name", [MNV3_320, SSDLITE])
def test_finetune_of_an_import_trains_and_validates_on_photos_at_their_own_size(name, torch_home, tmp_path):
    checkpoint = remapped(name, tmp_path)
    data = tiny_coco(tmp_path / "coco", Predictor.from_checkpoint(checkpoint, device="cpu"))
    trainer = build_trainer(finetune_config(checkpoint, data, tmp_path / "run"), progress=False)
    ops = [type(op).__name__ for op in trainer.train_set.transform.transforms]
    assert "LongestMaxSize" not in ops and "PadIfNeeded" not in ops and "HorizontalFlip" in ops
    assert tuple(trainer.val_set[1][0].shape) == (3, 240, 400) and trainer.val_set[1][1]["scale"] == 1.0
    images, targets = next(iter(trainer.loader(trainer.train_set, False, 0)))
    assert isinstance(images, list) and [tuple(i.shape[-2:]) for i in images] == SIZES[:2]
    losses = trainer.train_step(images, targets)
    assert all(np.isfinite(v) for v in losses.values()), losses
    metrics = trainer.evaluate()  # the trainer's validation: batches of two sizes as lists
    assert 0.0 <= metrics["bbox_mAP"] <= 1.0
    with pytest.raises(UserError, match=r"data\.multi_scale.*leave data\.multi_scale empty"):
        build_trainer(finetune_config(checkpoint, data, tmp_path / "ms", **{"data.multi_scale": "[0.5,1.5]"}),
                      progress=False)


def test_collate_gives_a_list_only_when_sizes_differ():
    square, wide = torch.zeros(3, 8, 8), torch.zeros(3, 8, 12)
    images, _ = collate([(square, {}), (square, {})])
    assert isinstance(images, torch.Tensor) and images.shape == (2, 3, 8, 8)
    images, targets = collate([(square, {"a": 1}), (wide, {"a": 2})])
    assert isinstance(images, list) and [i.shape[-1] for i in images] == [8, 12] and targets == [{"a": 1}, {"a": 2}]


def test_eval_of_a_coco_import_on_a_split_of_some_of_its_classes(torch_home, tmp_path):
    """No remap needed: the split's classes are matched by name (its own ids, other case), the import's other
    classes left out; a class the import lacks is one error naming it and the remap command."""
    checkpoint, _ = imported(MNV3_320, tmp_path)
    data = tiny_coco(tmp_path / "coco", Predictor.from_checkpoint(checkpoint, device="cpu"))
    file = data / "annotations.json"
    coco = json.loads(file.read_text())
    new_id = {old: i + 1 for i, old in enumerate(sorted({a["category_id"] for a in coco["annotations"]}))}
    assert 1 <= len(new_id) < 80
    coco["categories"] = [{"id": new_id[c["id"]], "name": c["name"].upper()} for c in coco["categories"]
                          if c["id"] in new_id]
    for annotation in coco["annotations"]:
        annotation["category_id"] = new_id[annotation["category_id"]]
    file.write_text(json.dumps(coco))
    found = evaluate_checkpoint(load_model(checkpoint, "cpu"), str(file), str(data / "images"), progress=False)
    assert found.metrics["bbox_mAP"] == pytest.approx(1.0)
    coco["categories"].append({"id": 99, "name": "tree"})
    file.write_text(json.dumps(coco))
    with pytest.raises(UserError, match=r"\['tree'\] are not the checkpoint's.*weights import CHECKPOINT"):
        evaluate_checkpoint(load_model(checkpoint, "cpu"), str(file), str(data / "images"), progress=False)
