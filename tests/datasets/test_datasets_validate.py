"""validate finds each kind of defect it claims to, and --fix writes a copy that passes."""
import copy
import json

import cv2
import numpy as np
import pytest

from datasets.checks.repair import repair_coco
from datasets.checks.validate import validate_coco
from datasets.cli import main


def first_ann(d):
    return d["annotations"][0]


DEFECTS = {
    "duplicate-id": lambda d: d["annotations"][1].update(id=d["annotations"][0]["id"]),
    "bad-id": lambda d: first_ann(d).update(id="7"),
    "iscrowd": lambda d: first_ann(d).update(iscrowd=False),
    "bbox-outside": lambda d: first_ann(d).update(bbox=[100.0, 100.0, 40.0, 10.0]),
    "bbox-empty": lambda d: first_ann(d).update(bbox=[10.0, 10.0, 0.0, 5.0]),
    "bbox-format": lambda d: first_ann(d).update(bbox=[1, 2, 3]),
    "unknown-category": lambda d: first_ann(d).update(category_id=99),
    "unknown-image": lambda d: first_ann(d).update(image_id=999),
    "area": lambda d: first_ann(d).update(area=-3),
    "area-mismatch": lambda d: first_ann(d).update(area=first_ann(d)["area"] * 3),
    "segmentation": lambda d: first_ann(d).update(segmentation=[[1, 2, 3]]),
    "segmentation-empty": lambda d: first_ann(d).update(segmentation=[[0, 0, 0, 0, 0, 0]]),
    "missing-info": lambda d: d.pop("info"),
    "missing-licenses": lambda d: d.pop("licenses"),
    "duplicate-category": lambda d: d["categories"][1].update(name="circle"),
    "image-size": lambda d: d["images"][0].update(width=0),
    "image-size-mismatch": lambda d: d["images"][0].update(width=200),
    "image-missing": lambda d: d["images"][0].update(file_name="nope.png"),
    "duplicate-file-name": lambda d: d["images"][1].update(file_name=d["images"][0]["file_name"]),
}


@pytest.mark.parametrize("kind", sorted(DEFECTS))
def test_each_defect_is_found_and_fixed(shapes, kind):
    _, images, data = shapes
    assert validate_coco(data, images) == []
    broken = copy.deepcopy(data)
    DEFECTS[kind](broken)
    problems = validate_coco(broken, images)
    assert kind in {p.kind for p in problems}, problems
    fixed, notes = repair_coco(broken, images)
    assert validate_coco(fixed, images) == []
    assert [img["id"] for img in fixed["images"]] == list(range(1, len(fixed["images"]) + 1))
    assert [a["id"] for a in fixed["annotations"]] == list(range(1, len(fixed["annotations"]) + 1))
    assert len(fixed["annotations"]) >= len(data["annotations"]) - 4


def test_fix_clips_boxes_and_recomputes_area(shapes):
    _, images, data = shapes
    broken = copy.deepcopy(data)
    ann = first_ann(broken)
    x, y, w, h = ann["bbox"]
    ann.update(bbox=[x - 500, y, w + 500, h], area=1.0, iscrowd=False, segmentation=[])
    fixed, _ = repair_coco(broken, images)
    repaired = first_ann(fixed)
    assert repaired["bbox"] == [0.0, y, x + w, h]
    assert repaired["area"] == (x + w) * h and repaired["iscrowd"] == 0


def test_problem_messages_name_ids(shapes):
    _, images, data = shapes
    broken = copy.deepcopy(data)
    broken["annotations"][2]["bbox"] = [120.0, 0.0, 30.0, 10.0]
    message = str(validate_coco(broken, images)[0])
    assert f"annotation {broken['annotations'][2]['id']}" in message and "image" in message and "128x128" in message


def test_cli_exit_status_and_fix_output(shapes, tmp_path, capsys):
    path, images, data = shapes
    assert main(["validate", str(path), "--images", str(images)]) == 0
    broken = copy.deepcopy(data)
    broken["annotations"][0]["category_id"] = 42
    broken["images"][3]["height"] = 64
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(broken))
    assert main(["validate", str(bad), "--images", str(images)]) == 1
    out = capsys.readouterr()
    assert "category_id 42" in out.out and "[image-size-mismatch]" in out.out and "error: 6 problems" in out.err
    assert main(["validate", str(bad), "--images", str(images), "--fix", str(tmp_path / "fixed.json")]) == 0
    assert main(["validate", str(tmp_path / "fixed.json"), "--images", str(images)]) == 0
    assert main(["validate", str(bad), "--fix", str(bad)]) == 1
    assert json.loads(bad.read_text()) == broken


def test_unreadable_image_is_reported(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    (images / "a.png").write_bytes(b"not an image")
    cv2.imwrite(str(images / "b.png"), np.zeros((8, 8, 3), np.uint8))
    data = {"info": {}, "licenses": [], "categories": [{"id": 1, "name": "x"}], "annotations": [],
            "images": [{"id": 1, "file_name": "a.png", "width": 8, "height": 8},
                       {"id": 2, "file_name": "b.png", "width": 8, "height": 8}]}
    assert [p.kind for p in validate_coco(data, images)] == ["image-unreadable"]


def test_fix_reindexes_duplicate_ids_without_losing_annotations(shapes):
    _, images, data = shapes
    broken = copy.deepcopy(data)
    for ann in broken["annotations"]:
        ann["id"] = 5
    fixed, _ = repair_coco(broken, images)
    assert len(fixed["annotations"]) == len(data["annotations"])
    assert [a["bbox"] for a in fixed["annotations"]] == [a["bbox"] for a in data["annotations"]]
