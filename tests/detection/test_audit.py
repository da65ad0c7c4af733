"""`python -m detection.audit`: a dropped box, a changed class and a shifted box injected into a small set are ranked
at the top, each as its kind; the gallery; --exclude-images; a checkpoint of other categories is one error line;
and the four kinds with their scores on hand-made images (no model)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from datasets.synthetic.shapes import make_shapes
from detection.audit.label_errors import ImageData, IssueOptions, find_issues
from detection.cli.audit import main
from detection.config import load_config
from detection.tasks import build_trainer
from detection.tracking.boxes import xywh_to_xyxy
from tiny_run import ROOT

NAMES = {1: "circle", 2: "square", 3: "triangle"}


@pytest.fixture(scope="module")
def overfit(tmp_path_factory) -> tuple[Path, Path]:
    """(best.pt, data folder): a tiny SSD trained full-batch on 8 clean 64 px images until it knows them
    (bbox mAP@0.5 1.0 on them in about 40 steps; 45 steps take 2-5 s on one CPU core): the good model an audit needs."""
    root = tmp_path_factory.mktemp("audit")
    make_shapes(root / "data", 8, seed=2, image_size=64, min_size=14, max_size=32, max_objects=2)
    data = root / "data"
    items = {
        "output_dir": str(root / "run"), "device": "cpu", "seed": "0", "train.epochs": "45", "train.batch_size": "8",
        "train.optimizer": "adamw", "train.lr": "0.003", "train.weight_decay": "0", "train.warmup_epochs": "0",
        "train.eval_every": "0", "train.max_minutes": "0", "train.log_every": "1000", "train.plots": "false",
        "data.train.annotations": str(data / "annotations.json"), "data.train.images": str(data / "images"),
        "data.val.annotations": "", "data.val.images": "", "data.input_size": "64", "data.num_workers": "0",
        "data.augment.hflip": "0", "data.augment.color": "0", "data.augment.scale_min": "1",
        "data.augment.scale_max": "1", "model.neck": "ssd_extra", "model.neck_channels": "32",
        "model.neck_levels": "4", "model.ssd.min_scale": "0.2", "model.ssd.max_scale": "0.8",
    }
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 2 threads on 2 shared cores wait on each other: many times slower under load
    try:
        build_trainer(load_config(ROOT / "configs" / "ssd_tiny.yaml", [f"{k}={v}" for k, v in items.items()]),
                progress=False).fit()
    finally:
        torch.set_num_threads(threads)
    return root / "run" / "last.pt", data


def inject_faults(src: Path, dst: Path) -> list[dict]:
    """A copy of a COCO file with three faults, each in its own image: the largest box of the first image with a
    box dropped, of the second given another class, of the third moved by 40% of its size right and down."""
    data = json.loads(src.read_text())
    by_image: dict = {}
    for ann in data["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    names = {img["id"]: img["file_name"] for img in data["images"]}
    ids = sorted(by_image)
    largest = [max(by_image[i], key=lambda a: a["area"]) for i in ids[:3]]
    dropped, changed, shifted = largest
    data["annotations"].remove(dropped)
    changed["category_id"] = changed["category_id"] % 3 + 1
    x, y, w, h = shifted["bbox"]
    shifted["bbox"] = [x + 0.4 * w, y + 0.4 * h, w, h]
    dst.write_text(json.dumps(data))
    return [{"kind": kind, "file_name": names[ann["image_id"]], "box": box}
            for kind, ann, box in (("missing", dropped, dropped["bbox"]), ("wrong_class", changed, changed["bbox"]),
                                   ("bad_box", shifted, shifted["bbox"]))]


def iou_xywh(a, b) -> float:
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    inter = max(0, min(ax2, bx2) - max(a[0], b[0])) * max(0, min(ay2, by2) - max(a[1], b[1]))
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def test_injected_faults_are_ranked_at_the_top(overfit, tmp_path, capsys):
    checkpoint, data = overfit
    faulty = tmp_path / "faulty.json"
    injected = inject_faults(data / "annotations.json", faulty)
    out = tmp_path / "audit"
    assert main(["--checkpoint", str(checkpoint), "--annotations", str(faulty), "--images", str(data / "images"),
                 "--out", str(out), "--gallery-each", "--device", "cpu"]) == 0
    issues = json.loads((out / "issues.json").read_text())
    top = issues[:len(injected) + 1]  # K = 3 injected: each in the top 4
    for fault in injected:
        hits = [i for i in top if i["file_name"] == fault["file_name"] and i["kind"] == fault["kind"]
                and iou_xywh(i["bbox"], fault["box"]) > 0.5]
        assert hits, (fault, top)
    assert [i["rank"] for i in issues] == list(range(1, len(issues) + 1))
    assert all(0 <= i["score"] <= 1 for i in issues) and issues == sorted(issues, key=lambda i: -i["score"])
    assert {"file_name", "kind", "bbox", "category", "score"} <= set(issues[0])
    wrong = next(i for i in issues if i["kind"] == "wrong_class")
    assert wrong["model_category"] != wrong["category"] and wrong["iou"] >= 0.5
    summary = json.loads((out / "summary.json").read_text())
    assert summary["audited"] == 8 and summary["kinds"]["missing"] >= 1
    assert (out / "issues.png").stat().st_size > 1000
    assert len(list((out / "issues").glob("*.png"))) == len(issues)
    printed = capsys.readouterr().out
    assert "audited 8 of 8 images" in printed and "#1 " in printed


def test_exclude_images_skips_them(overfit, tmp_path):
    checkpoint, data = overfit
    listed = tmp_path / "trained_on.txt"
    listed.write_text("000000.png\n000001.png\n")
    out = tmp_path / "audit"
    assert main(["--checkpoint", str(checkpoint), "--annotations", str(data / "annotations.json"),
                 "--images", str(data / "images"), "--out", str(out), "--exclude-images", str(listed)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["audited"] == 6 and summary["excluded"] == 2
    issues = json.loads((out / "issues.json").read_text())
    assert not {i["file_name"] for i in issues} & {"000000.png", "000001.png"}
    # a clean set the model knows: nothing confident to report
    assert all(i["score"] < 0.5 for i in issues), issues[:3]


def test_categories_not_matching_the_checkpoint_are_one_error_line(overfit, tmp_path, capsys):
    checkpoint, data = overfit
    coco = json.loads((data / "annotations.json").read_text())
    coco["categories"][2]["name"] = "tri"
    coco["categories"].append({"id": 4, "name": "star"})
    other = tmp_path / "other.json"
    other.write_text(json.dumps(coco))
    assert main(["--checkpoint", str(checkpoint), "--annotations", str(other), "--images", str(data / "images"),
                 "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "only in the checkpoint: 3 triangle" in err and "only in the file: 3 tri, 4 star" in err
    assert not (tmp_path / "o").exists()


def image(gts, dets, crowd=()) -> ImageData:
    """gts: (x, y, w, h, category id); dets: (x, y, w, h, category id, score)."""
    dets = sorted(dets, key=lambda d: -d[5])
    return ImageData("a.png", 1, xywh_to_xyxy([g[:4] for g in gts]), np.array([g[4] for g in gts], dtype=np.int64),
                     list(range(1, len(gts) + 1)), xywh_to_xyxy(list(crowd)), xywh_to_xyxy([d[:4] for d in dets]),
                     np.array([d[5] for d in dets]), np.array([d[4] for d in dets], dtype=np.int64))


def test_the_four_kinds_and_their_scores_by_hand():
    good = [(100 * k, 0, 10, 10, 1, 0.9) for k in range(8)]  # 8 circles found
    gts = [(100 * k, 0, 10, 10, 1) for k in range(8)]
    gts += [(0, 100, 20, 20, 1),  # wrong_class: a square is detected on it
            (100, 100, 20, 20, 2),  # bad_box: its square is detected 10 px to the right (IoU 1/3)
            (200, 100, 20, 20, 3)]  # spurious: nothing there
    dets = good + [(0, 100, 20, 20, 2, 0.8), (110, 100, 20, 20, 2, 0.7),
                   (300, 100, 20, 20, 3, 0.95),  # missing: no box under it
                   (500, 500, 20, 20, 1, 0.99)]  # inside a crowd region: not missing
    issues, rel = find_issues([image(gts, dets, crowd=[(490, 490, 50, 50)])], NAMES, IssueOptions())
    kinds = {i["kind"]: i for i in issues}
    assert sorted(kinds) == ["bad_box", "missing", "spurious", "wrong_class"] and len(issues) == 4
    p_square, p_triangle = rel.precision[2], rel.precision[3]
    assert p_square == pytest.approx((0 + 1) / (2 + 2)) and rel.precision[1] == pytest.approx((8 + 1) / (8 + 2))
    assert kinds["wrong_class"]["score"] == pytest.approx(0.8 * p_square * 1.0 * (1 - 0), abs=1e-4)
    assert kinds["wrong_class"]["category"] == "circle" and kinds["wrong_class"]["model_category"] == "square"
    assert kinds["bad_box"]["iou"] == pytest.approx(1 / 3, abs=1e-3)
    assert kinds["bad_box"]["score"] == pytest.approx(0.7 * p_square * (1 - 1 / 3), abs=1e-3)
    assert kinds["missing"]["bbox"] == [300, 100, 20, 20] and kinds["missing"]["category"] == "triangle"
    assert kinds["missing"]["score"] == pytest.approx(0.95 * p_triangle, abs=1e-4)
    assert kinds["spurious"]["score"] == pytest.approx(rel.recall[3], abs=1e-4)  # nothing near it: 1 - 0
    # a labelled box that a confident detection of its class matches is no issue, whatever else is near
    assert not [i for i in issues if i["bbox"] == [0, 0, 10, 10]]
