"""A call's score threshold and max detections are the model's post-processing, below or above the checkpoint's
own `model.postprocess` (only the default of a call that gives none): predict's CLI, and eval, which asks for its
own values (EVAL_*), whatever the checkpoint says. Per family: test_contract.py; ONNX: test_export.py.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from detection.cli.eval import main as eval_main
from detection.cli.predict import main as predict_main
from detection.config import DEFAULT_SCORE_THRESHOLD, EVAL_MAX_DETECTIONS, EVAL_SCORE_THRESHOLD, PostprocessConfig
from detection.engine.checkpoint import load_checkpoint, save_checkpoint
from detection.inference.predictor import Predictor


def with_own_postprocess(source: Path, target: Path, **postprocess) -> Path:
    """The checkpoint `source` saved as `target` with its model.postprocess changed."""
    state = load_checkpoint(source)
    state["config"]["model"]["postprocess"].update(postprocess)
    save_checkpoint(target, state)
    return target


@pytest.fixture(scope="module")
def strict_checkpoint(tiny_checkpoint, shapes_image, tmp_path_factory):
    """(the tiny checkpoint with its own threshold between the worst and best score it gives `shapes_image` and
    max_detections 2, that threshold)."""
    from datasets.core.images import read_rgb

    every = Predictor.from_checkpoint(tiny_checkpoint, "cpu").predict([read_rgb(shapes_image)], 0.0, 1000)[0]
    scores = [d["score"] for d in every]
    assert len(scores) > 4 and max(scores) - min(scores) > 1e-3, "the test needs detections of other scores"
    own = round((min(scores) + max(scores)) / 2, 4)
    path = with_own_postprocess(tiny_checkpoint, tmp_path_factory.mktemp("strict") / "strict.pt",
                                score_threshold=own, max_detections=2)
    return path, own


def predictions(checkpoint: Path, image: Path, out: Path, *flags: str) -> list[dict]:
    assert predict_main(["--checkpoint", str(checkpoint), "--source", str(image), "--out", str(out), "--no-draw",
                         "--device", "cpu", *flags]) == 0
    return json.loads((out / "predictions.json").read_text())


def test_predict_cli_goes_below_the_checkpoints_threshold_and_above_its_max(strict_checkpoint, shapes_image,
                                                                             tmp_path):
    checkpoint, own = strict_checkpoint
    default = predictions(checkpoint, shapes_image, tmp_path / "default")
    assert 0 < len(default) <= 2 and all(r["score"] >= own for r in default)
    low = predictions(checkpoint, shapes_image, tmp_path / "low", "--score-threshold", "0.001",
                      "--max-detections", "500")
    assert len(low) > 2 and min(r["score"] for r in low) < own
    assert all(r["score"] >= 0.001 for r in low)


def test_one_default_threshold():
    assert PostprocessConfig().score_threshold == DEFAULT_SCORE_THRESHOLD
    cut = PostprocessConfig(score_threshold=0.4, max_detections=7, nms_iou=0.3)
    assert cut.with_call() is cut
    assert cut.with_call(0.001) == PostprocessConfig(score_threshold=0.001, max_detections=7, nms_iou=0.3)
    assert cut.with_call(None, 500) == PostprocessConfig(score_threshold=0.4, max_detections=500, nms_iou=0.3)


def test_eval_asks_for_its_own_values_not_the_checkpoints(strict_checkpoint, tiny_checkpoint, shapes_dir,
                                                          tmp_path, capsys):
    """COCO AP needs the low-scoring detections: a checkpoint's strict post-processing does not cut evaluation."""
    def metrics(checkpoint: Path, *flags: str) -> dict:
        out = tmp_path / f"{len(list(tmp_path.iterdir()))}.json"
        assert eval_main(["--checkpoint", str(checkpoint), "--annotations", str(shapes_dir / "annotations.json"),
                          "--images", str(shapes_dir / "images"), "--out", str(out), "--device", "cpu",
                          *flags]) == 0
        return {k: v for k, v in json.loads(out.read_text()).items() if k.startswith("bbox_")}

    strict, own = strict_checkpoint
    assert (EVAL_SCORE_THRESHOLD, EVAL_MAX_DETECTIONS) == (0.001, 300)
    evaluated = metrics(strict)
    assert evaluated == metrics(tiny_checkpoint)  # the checkpoint's threshold and max do not matter
    cut = metrics(strict, "--score-threshold", str(own), "--max-detections", "2")  # as the checkpoint would cut
    assert evaluated["bbox_AR_100"] > cut["bbox_AR_100"]
    capsys.readouterr()


def test_evaluator_runs_the_model_at_the_eval_values(monkeypatch):
    """The trainer's evaluation (predict_loader) passes EVAL_* as the call's values, through the model's forward."""
    from detection.engine import evaluator

    seen = []

    class Model(torch.nn.Module):
        def forward(self, images, targets=None, proposals=None, *, score_threshold=None, max_detections=None):
            seen.append((score_threshold, max_detections))
            return [{"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.int64)}
                    for _ in images]

    loader = [(torch.zeros(1, 3, 8, 8), [{"image_id": 1, "scale": 1.0, "orig_size": (8, 8)}])]
    assert evaluator.predict_loader(Model(), loader, [{"id": 1, "name": "a"}], torch.device("cpu")) == []
    assert seen == [(EVAL_SCORE_THRESHOLD, EVAL_MAX_DETECTIONS)]
