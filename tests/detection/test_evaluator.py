"""Evaluator (COCOeval), model-output -> COCO detections, checkpoint I/O and the Predictor."""
from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
import torch
from pycocotools.cocoeval import COCOeval

from datasets.core.errors import UserError
from datasets.core.images import read_rgb
from detection.data.coco import CocoDetection, collate, load_coco
from detection.data.transforms import build_transform
from detection.engine.checkpoint import load_checkpoint, load_model, save_checkpoint
from detection.engine.evaluator import METRIC_NAMES, coco_metrics, evaluate, predict_loader
from detection.inference.detections import to_detections
from detection.inference.predictor import Predictor

EXPECTED = ["bbox_mAP", "bbox_mAP_50", "bbox_mAP_75", "bbox_mAP_small", "bbox_mAP_medium", "bbox_mAP_large",
            "bbox_AR_1", "bbox_AR_10", "bbox_AR_100", "bbox_AR_small", "bbox_AR_medium", "bbox_AR_large"]


def gt_as_results(coco) -> list[dict]:
    return [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": list(a["bbox"]), "score": 1.0}
            for a in coco.dataset["annotations"] if not a.get("iscrowd", 0)]


def test_ground_truth_as_predictions_gives_ap_one(shapes_dir):
    coco = load_coco(shapes_dir / "annotations.json")
    metrics, table = coco_metrics(coco, gt_as_results(coco))
    assert list(metrics) == EXPECTED == METRIC_NAMES
    assert metrics["bbox_mAP"] == pytest.approx(1.0, abs=1e-6)
    assert metrics["bbox_mAP_50"] == pytest.approx(1.0, abs=1e-6)
    assert metrics["bbox_mAP_75"] == pytest.approx(1.0, abs=1e-6)
    assert metrics["bbox_AR_100"] == pytest.approx(1.0, abs=1e-6)
    assert table.count("Average Precision") == 6 and table.count("Average Recall") == 6


def test_wrong_predictions_score_below_one(shapes_dir):
    coco = load_coco(shapes_dir / "annotations.json")
    results = gt_as_results(coco)
    cats = sorted(coco.getCatIds())
    shifted = [dict(r, bbox=[r["bbox"][0] + r["bbox"][2] * 0.6, r["bbox"][1], r["bbox"][2], r["bbox"][3]])
               for r in results]  # IoU 0.25: a miss at every threshold
    assert coco_metrics(coco, shifted)[0]["bbox_mAP_50"] < 0.05
    relabelled = [dict(r, category_id=cats[(cats.index(r["category_id"]) + 1) % len(cats)]) for r in results]
    assert coco_metrics(coco, relabelled)[0]["bbox_mAP"] < 0.05
    half = results[::2]  # every other object found
    got = coco_metrics(coco, half)[0]
    assert 0.2 < got["bbox_mAP"] < 0.8


def test_empty_results_are_zeros(shapes_dir):
    coco = load_coco(shapes_dir / "annotations.json")
    metrics, table = coco_metrics(coco, [])
    assert list(metrics) == METRIC_NAMES
    assert all(v == 0.0 for v in metrics.values())
    assert "no detections" in table


def test_to_detections_converts_to_original_pixels():
    categories = [{"id": 5, "name": "a"}, {"id": 9, "name": "b"}]
    output = {"boxes": torch.tensor([[10.0, 20.0, 30.0, 60.0], [0.0, 0.0, 64.0, 64.0], [-5.0, 50.0, 20.0, 70.0]]),
              "scores": torch.tensor([0.5, 0.9, 0.2]), "labels": torch.tensor([1, 2, 1])}
    # original 100 (h) x 50 (w) letterboxed to 64: scale 0.64
    dets = to_detections(output, 0.64, (100, 50), categories)
    assert [d["score"] for d in dets] == [0.9, 0.5, 0.2]  # sorted by score
    assert [d["category_id"] for d in dets] == [9, 5, 5] and dets[0]["category"] == "b"
    assert dets[1]["bbox"] == pytest.approx([15.62, 31.25, 31.25, 62.5], abs=0.01)  # xywh in original pixels
    assert dets[0]["bbox"] == pytest.approx([0, 0, 50, 100], abs=0.01)  # clipped to 50 x 100
    assert dets[2]["bbox"][0] == 0 and dets[2]["bbox"][1] + dets[2]["bbox"][3] <= 100
    assert len(to_detections(output, 0.64, (100, 50), categories, score_threshold=0.3)) == 2
    assert [d["score"] for d in to_detections(output, 0.64, (100, 50), categories, max_detections=1)] == [0.9]
    empty = {"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.int64)}
    assert to_detections(empty, 1.0, (10, 10), categories) == []


@pytest.mark.parametrize("label", [0, 3])
def test_to_detections_refuses_labels_outside_the_categories(label):
    """Defect 2: label 0 (background) was mapped to the last category by categories[label - 1]."""
    categories = [{"id": 5, "name": "a"}, {"id": 9, "name": "b"}]
    output = {"boxes": torch.tensor([[0.0, 0.0, 4.0, 4.0]]), "scores": torch.tensor([0.9]),
              "labels": torch.tensor([label])}
    with pytest.raises(ValueError, match=f"label {label}: labels must be 1..2"):
        to_detections(output, 1.0, (10, 10), categories)


# ---- checkpoints --------------------------------------------------------------------------------

def test_checkpoint_is_plain_data_and_rebuilds_the_model(tiny_checkpoint):
    raw = torch.load(tiny_checkpoint, map_location="cpu", weights_only=True)
    assert raw["format"] == "detpipe-checkpoint"
    for key in ("config", "model", "categories", "epoch", "metrics"):
        assert key in raw
    assert [c["name"] for c in raw["categories"]] == ["circle", "square", "triangle"]
    loaded = load_model(tiny_checkpoint)
    model, cfg = loaded.model, loaded.config
    assert loaded.kind == "detector" and loaded.categories == raw["categories"] and not model.training
    assert cfg.model.backbone == raw["config"]["model"]["backbone"]
    for key, value in model.state_dict().items():
        assert torch.equal(value, raw["model"][key]), key


def test_save_checkpoint_round_trip_is_atomic(tmp_path):
    state = {"config": {"seed": 1}, "model": {"w": torch.arange(3.0)}, "categories": [{"id": 1, "name": "x"}]}
    save_checkpoint(tmp_path / "c.pt", state)
    loaded = load_checkpoint(tmp_path / "c.pt")
    assert torch.equal(loaded["model"]["w"], torch.arange(3.0)) and loaded["categories"] == state["categories"]
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


def test_bad_checkpoints_are_user_errors(tmp_path, tiny_checkpoint):
    with pytest.raises(UserError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    torch.save({"weight": torch.zeros(2)}, tmp_path / "plain.pt")
    with pytest.raises(UserError, match="plain.pt.*not a detpipe checkpoint"):
        load_checkpoint(tmp_path / "plain.pt")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(tiny_checkpoint.read_bytes()[:5000])
    with pytest.raises(UserError, match="truncated.pt"):
        load_checkpoint(truncated)
    save_checkpoint(tmp_path / "future.pt", {"config": {}, "model": {}, "categories": [], "format_version": 99})
    with pytest.raises(UserError, match="newer"):
        load_checkpoint(tmp_path / "future.pt")
    save_checkpoint(tmp_path / "partial.pt", {"config": {}, "categories": []})
    with pytest.raises(UserError, match="'model'"):
        load_checkpoint(tmp_path / "partial.pt")


def test_checkpoint_with_code_is_refused(tmp_path):
    """weights_only=True: a pickled object is refused, not executed."""
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"format": "detpipe-checkpoint", "config": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(UserError, match="evil.pt"):
        load_checkpoint(tmp_path / "evil.pt")


# ---- evaluate over a loader, predictor ---------------------------------------------------------

def test_evaluate_runs_model_over_loader(tiny_checkpoint, shapes_dir):
    loaded = load_model(tiny_checkpoint)
    model, cfg = loaded.model, loaded.config
    ds = CocoDetection(shapes_dir / "annotations.json", shapes_dir / "images",
                       build_transform(cfg.data.input_size, train=False))
    loader = torch.utils.data.DataLoader(ds, batch_size=8, collate_fn=collate)
    metrics = evaluate(model, loader, torch.device("cpu"))
    assert list(metrics) == METRIC_NAMES
    results = predict_loader(model, loader, ds.categories, torch.device("cpu"))
    # the named numbers are COCOeval's own stats, in COCOeval's order
    with contextlib.redirect_stdout(io.StringIO()):
        direct = COCOeval(ds.coco, ds.coco.loadRes(results), "bbox")
        direct.evaluate(), direct.accumulate(), direct.summarize()
    assert [metrics[name] for name in METRIC_NAMES] == pytest.approx(list(direct.stats))
    assert metrics["bbox_mAP_large"] == -1.0  # no ground truth box is large in 128 px shapes: COCO says -1
    ids = set(ds.coco.getImgIds())
    assert results and all(r["image_id"] in ids for r in results)
    assert {r["category_id"] for r in results} <= set(ds.coco.getCatIds())
    assert coco_metrics(ds.coco, results)[0] == metrics


def test_predictor_batched_equals_single_and_boxes_inside(tiny_checkpoint, shapes_dir):
    predictor = Predictor.from_checkpoint(tiny_checkpoint, device="cpu")
    images = [read_rgb(p) for p in sorted((shapes_dir / "images").iterdir())[:2]]
    wide = np.ascontiguousarray(np.concatenate([images[0], images[1]], axis=1))  # 128 x 256: other size
    assert predictor.predict([]) == []
    together = predictor.predict([images[0], wide, images[1]], score_threshold=0.0, max_detections=30)
    alone = predictor.predict([images[0]], score_threshold=0.0, max_detections=30)[0]
    assert len(together) == 3 and alone
    assert len(alone) == len(together[0])
    for a, b in zip(alone, together[0]):
        assert a["category_id"] == b["category_id"]
        assert a["score"] == pytest.approx(b["score"], abs=1e-4)
        assert a["bbox"] == pytest.approx(b["bbox"], abs=1e-2)
    for image, dets in zip([images[0], wide, images[1]], together):
        h, w = image.shape[:2]
        assert len(dets) <= 30
        for d in dets:
            x, y, bw, bh = d["bbox"]
            assert 0 <= x and 0 <= y and bw >= 0 and bh >= 0 and x + bw <= w + 0.01 and y + bh <= h + 0.01
            assert d["category"] in {"circle", "square", "triangle"}
    json.dumps(together)  # JSON-ready
