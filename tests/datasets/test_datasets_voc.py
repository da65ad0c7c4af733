"""Pascal VOC: difficult, truncated and occluded kept through import and export; exports VOCDetection reads.

Difficult objects as iscrowd are ignored by COCOeval, as VOC's own evaluation ignores them.
"""
import contextlib
import io
import json
import xml.etree.ElementTree as ET

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from datasets.cli import main

OBJECTS = [  # name, (xmin, ymin, xmax, ymax), flags as VOC writes them
    ("dog", (11, 21, 60, 70), {"difficult": "1", "truncated": "1", "occluded": "1"}),
    ("cat", (71, 11, 110, 50), {"difficult": "0", "truncated": "0"}),
    ("cat", (5, 75, 30, 95), {}),
]


def write_voc(folder):
    """images/a.jpg and xml/a.xml with the three OBJECTS."""
    (folder / "images").mkdir(parents=True)
    (folder / "xml").mkdir()
    cv2.imwrite(str(folder / "images/a.jpg"), np.full((100, 120, 3), 90, np.uint8))
    objects = "".join(
        f"<object><name>{name}</name>{''.join(f'<{k}>{v}</{k}>' for k, v in flags.items())}"
        f"<bndbox><xmin>{box[0]}</xmin><ymin>{box[1]}</ymin><xmax>{box[2]}</xmax><ymax>{box[3]}</ymax></bndbox>"
        "</object>" for name, box, flags in OBJECTS)
    (folder / "xml/a.xml").write_text(f"<annotation><filename>a.jpg</filename><size><width>120</width>"
                                      f"<height>100</height><depth>3</depth></size>{objects}</annotation>")


def ap_of_easy_detections(path):
    """COCOeval AP when the detections are exactly the objects that are not difficult."""
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(path))
        easy = [{"image_id": 1, "category_id": gt.getCatIds(catNms=[name])[0], "score": 1.0,
                 "bbox": [box[0] - 1, box[1] - 1, box[2] - box[0] + 1, box[3] - box[1] + 1]}
                for name, box, flags in OBJECTS if flags.get("difficult") != "1"]
        evaluator = COCOeval(gt, gt.loadRes(easy), "bbox")
        evaluator.evaluate(), evaluator.accumulate(), evaluator.summarize()
    return evaluator.stats[0]


@pytest.mark.parametrize("mode,count,dog_crowd,ap", [("keep", 3, 0, 0.5), ("crowd", 3, 1, 1.0), ("skip", 2, None, 1.0)])
def test_difficult_modes(tmp_path, mode, count, dog_crowd, ap):
    write_voc(tmp_path)
    out = tmp_path / "a.json"
    assert main(["convert", "--from", "voc", "--src", str(tmp_path / "xml"), "--images", str(tmp_path / "images"),
                 "--out", str(out), "--difficult", mode]) == 0
    data = json.loads(out.read_text())
    names = {c["id"]: c["name"] for c in data["categories"]}
    anns = data["annotations"]
    assert len(anns) == count
    dogs = [a for a in anns if names[a["category_id"]] == "dog"]
    assert [a["iscrowd"] for a in dogs] == ([] if dog_crowd is None else [dog_crowd])
    assert [a.get("attributes") for a in anns if names[a["category_id"]] == "cat"] == [
        {"difficult": False, "truncated": False}, None]
    if dogs:
        assert dogs[0]["attributes"] == {"difficult": True, "truncated": True, "occluded": True}
    assert ap_of_easy_detections(out) == pytest.approx(ap, abs=0.02)
    assert main(["export", "--to", "voc", "--annotations", str(out), "--images", str(tmp_path / "images"),
                 "--out", str(tmp_path / "voc")]) == 0
    objects = ET.parse(tmp_path / "voc/Annotations/a.xml").getroot().findall("object")
    assert [(o.findtext("name"), o.findtext("difficult"), o.findtext("truncated"), o.findtext("occluded"))
            for o in objects] == [("dog", "1", "1", "1"), ("cat", "0", "0", None), ("cat", "0", "0", None)][3 - count:]
    again = tmp_path / "again.json"
    assert main(["convert", "--from", "voc", "--src", str(tmp_path / "voc/Annotations"),
                 "--images", str(tmp_path / "voc/JPEGImages"), "--out", str(again), "--difficult", mode]) == 0
    back = json.loads(again.read_text())["annotations"]
    assert [(a["bbox"], a["iscrowd"], bool(a.get("attributes", {}).get("difficult"))) for a in back] == \
        [(a["bbox"], a["iscrowd"], bool(a.get("attributes", {}).get("difficult"))) for a in anns]


def test_voc_export_loads_in_torchvision(shapes, tmp_path, coco_readers):
    datasets = pytest.importorskip("torchvision.datasets")
    path, images, data = shapes
    assert main(["split", str(path), "--out", str(tmp_path / "split"), "--val", "0.3"]) == 0
    root = tmp_path / "VOCdevkit/VOC2007"
    assert main(["export", "--to", "voc", "--split", f"train={tmp_path / 'split/train.json'}",
                 "--split", f"val={tmp_path / 'split/val.json'}", "--images", str(images), "--out", str(root)]) == 0
    names = {c["id"]: c["name"] for c in data["categories"]}
    files = {img["id"]: img["file_name"] for img in data["images"]}
    expected = {}
    for ann in data["annotations"]:
        x, y, w, h = ann["bbox"]
        corners = [str(v) for v in (round(x) + 1, round(y) + 1, round(x + w), round(y + h))]
        expected.setdefault(files[ann["image_id"]].split(".")[0], []).append([names[ann["category_id"]], *corners])
    sizes = {}
    for image_set in ("train", "val", "trainval"):
        reader = datasets.VOCDetection(str(tmp_path), year="2007", image_set=image_set)
        sizes[image_set] = len(reader)
        for index in range(len(reader)):
            image, target = reader[index]
            assert image.size == (128, 128)
            image_id = target["annotation"]["filename"].split(".")[0]
            objects = target["annotation"].get("object", [])
            found = [[o["name"], *(o["bndbox"][k] for k in ("xmin", "ymin", "xmax", "ymax"))] for o in objects]
            assert sorted(found) == sorted(expected.get(image_id, []))
    assert sizes["train"] + sizes["val"] == sizes["trainval"] == len(data["images"]) and sizes["val"] >= 2
    assert (root / "JPEGImages/000000.jpg").read_bytes()[:2] == b"\xff\xd8"  # PNGs re-encoded as JPEG
    assert main(["convert", "--from", "voc", "--src", str(root / "Annotations"), "--images", str(root / "JPEGImages"),
                 "--out", str(tmp_path / "back.json")]) == 0
    coco_readers(tmp_path / "back.json", root / "JPEGImages")
