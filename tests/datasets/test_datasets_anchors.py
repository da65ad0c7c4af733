"""`python -m datasets anchors`: k-means with IoU distance finds known clusters; boxes are letterboxed first."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from datasets.checks.anchors import kmeans_anchors, letterboxed_sizes, shape_iou
from datasets.cli import main


def coco_with(sizes: list[tuple[float, float]], width: int = 100, height: int = 100) -> dict:
    images = [{"id": i + 1, "file_name": f"{i}.png", "width": width, "height": height} for i in range(len(sizes))]
    anns = [{"id": i + 1, "image_id": i + 1, "category_id": 1, "bbox": [1, 1, w, h], "area": w * h, "iscrowd": 0}
            for i, (w, h) in enumerate(sizes)]
    return {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "thing"}]}


GROUPS = [(10, 10), (30, 60), (80, 40)]


def known_sizes(seed: int = 0) -> list[tuple[float, float]]:
    rng = np.random.default_rng(seed)
    return [(w + rng.uniform(-1, 1), h + rng.uniform(-1, 1)) for w, h in GROUPS for _ in range(30)]


def test_kmeans_finds_the_three_groups():
    sizes = np.asarray(known_sizes())
    anchors = kmeans_anchors(sizes, 3, seed=1)
    assert anchors.round().tolist() == [[10, 10], [30, 60], [80, 40]]  # sorted by area
    assert shape_iou(sizes, anchors).max(axis=1).mean() > 0.9


def test_boxes_are_letterboxed_to_the_input_size():
    data = coco_with([(40, 20)], width=200, height=100)
    assert letterboxed_sizes(data, 100).tolist() == [[20.0, 10.0]]  # longest side 200 -> 100: scale 0.5


def test_cli_prints_anchors_iou_and_a_config_line(tmp_path, capsys):
    path = tmp_path / "boxes.json"
    path.write_text(json.dumps(coco_with(known_sizes())))
    assert main(["anchors", str(path), "--k", "3", "--levels", "3", "--input-size", "100"]) == 0
    out = capsys.readouterr().out
    assert "10x10  30x60  80x40" in out
    assert float(re.search(r"mean best IoU .*: ([0-9.]+)", out).group(1)) > 0.9
    assert out.strip().splitlines()[-1] == "model.yolo.anchors=[[10,10],[30,60],[80,40]]"


@pytest.mark.parametrize("args", [["--k", "4"], ["--k", "0"], ["--k", "30", "--levels", "3"]])
def test_cli_bad_counts_are_one_error_line(tmp_path, capsys, args):
    path = tmp_path / "boxes.json"
    path.write_text(json.dumps(coco_with(known_sizes()[:20])))
    assert main(["anchors", str(path), *args]) == 1
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "Traceback" not in err
