"""Round trips through YOLO and VOC, and the LabelMe and CSV readers, to the pixel."""
import json
from collections import defaultdict

import cv2
import numpy as np
import pytest

from datasets.cli import main
from datasets.formats.convert import convert_to_coco


def boxes_by_image(data):
    """file_name -> sorted (category name, box) pairs."""
    names = {c["id"]: c["name"] for c in data["categories"]}
    files = {img["id"]: img["file_name"] for img in data["images"]}
    out = defaultdict(list)
    for ann in data["annotations"]:
        if not ann["iscrowd"]:
            out[files[ann["image_id"]]].append((names[ann["category_id"]], tuple(ann["bbox"])))
    return {k: sorted(v) for k, v in out.items()}


def assert_same_boxes(before, after, tolerance):
    a, b = boxes_by_image(before), boxes_by_image(after)
    assert a.keys() == b.keys() and sum(map(len, a.values())) > 10
    for name in a:
        assert [c for c, _ in a[name]] == [c for c, _ in b[name]]
        assert np.abs(np.array([x for _, x in a[name]]) - np.array([x for _, x in b[name]])).max() <= tolerance


@pytest.mark.parametrize("fmt,src,exported_images,tolerance", [
    ("yolo", "labels/train", "images/train", 0.01),
    ("voc", "Annotations", None, 0.0),  # VOC's JPEGImages hold re-encoded copies; the XML finds the PNG by stem
])
def test_round_trip_keeps_every_box(shapes, tmp_path, fmt, src, exported_images, tolerance):
    path, images, data = shapes
    out = tmp_path / fmt
    assert main(["export", "--to", fmt, "--annotations", str(path), "--images", str(images), "--out", str(out)]) == 0
    back = tmp_path / f"{fmt}.json"
    read_from = out / exported_images if exported_images else images
    assert main(["convert", "--from", fmt, "--src", str(out / src), "--images", str(read_from),
                 "--out", str(back)]) == 0
    converted = json.loads(back.read_text())
    assert [c["name"] for c in converted["categories"]] == ["circle", "square", "triangle"]
    assert len(converted["images"]) == len(data["images"])
    assert_same_boxes(data, converted, tolerance)


def test_yolo_round_trip_fractional_boxes(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "a.png"), np.zeros((50, 80, 3), np.uint8))
    data = {"info": {}, "licenses": [], "categories": [{"id": 1, "name": "x"}, {"id": 2, "name": "y"}],
            "images": [{"id": 1, "file_name": "a.png", "width": 80, "height": 50}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 2, "iscrowd": 0, "area": 10.0,
                             "bbox": [3.25, 4.5, 20.75, 30.125]}]}
    (tmp_path / "a.json").write_text(json.dumps(data))
    assert main(["export", "--to", "yolo", "--annotations", str(tmp_path / "a.json"), "--images", str(images),
                 "--out", str(tmp_path / "y")]) == 0
    back = convert_to_coco("yolo", tmp_path / "y/labels/train", images)
    assert np.allclose(back["annotations"][0]["bbox"], [3.25, 4.5, 20.75, 30.125], atol=1e-3)
    assert back["annotations"][0]["category_id"] == 2


def test_labelme_shapes_and_groups(tmp_path):
    images, labels = tmp_path / "images", tmp_path / "labelme"
    images.mkdir(), labels.mkdir()
    cv2.imwrite(str(images / "pic.jpg"), np.zeros((60, 100, 3), np.uint8))
    shapes = [
        {"label": "cat", "points": [[10, 10], [30, 10], [30, 40], [10, 40]], "shape_type": "polygon"},
        {"label": "dog", "points": [[50, 5], [70, 25]], "shape_type": "rectangle"},
        {"label": "dog", "points": [[80, 40], [80, 50]], "shape_type": "circle"},
        {"label": "cat", "points": [[40, 40], [45, 40], [45, 45]], "group_id": 3},
        {"label": "cat", "points": [[60, 50], [65, 50], [65, 55]], "group_id": 3},
        {"label": "cat", "points": [[1, 1], [2, 2]], "shape_type": "line"},
    ]
    (labels / "pic.json").write_text(json.dumps({"imagePath": "../images/pic.jpg", "imageWidth": 100,
                                                 "imageHeight": 60, "shapes": shapes}))
    data = convert_to_coco("labelme", labels, images)
    anns = data["annotations"]
    assert [c["name"] for c in data["categories"]] == ["cat", "dog"]
    assert len(anns) == 4 and data["images"][0]["file_name"] == "pic.jpg"
    assert anns[0]["bbox"] == [10, 10, 20, 30] and anns[0]["area"] == 600
    assert anns[1]["bbox"] == [50, 5, 20, 20]
    assert anns[2]["bbox"] == pytest.approx([70, 30, 20, 20], abs=0.1)
    assert len(anns[3]["segmentation"]) == 2 and anns[3]["bbox"] == [40, 40, 25, 15]


def test_csv_boxes_and_empty_images(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(images / name), np.zeros((40, 60, 3), np.uint8))
    (tmp_path / "boxes.csv").write_text("file_name,x1,y1,x2,y2,category,note\n"
                                        "a.png,1,2,11,22,car,x\na.png,5,5,50,30,bus,\nb.png,,,,,,\n")
    data = convert_to_coco("csv", tmp_path / "boxes.csv", images, None)
    assert [img["file_name"] for img in data["images"]] == ["a.png", "b.png"]
    assert [(a["category_id"], a["bbox"]) for a in data["annotations"]] == [(2, [1, 2, 10, 20]), (1, [5, 5, 45, 25])]


def test_yolo_segment_lines_and_yaml_names(tmp_path):
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir(), labels.mkdir()
    cv2.imwrite(str(images / "p.png"), np.zeros((100, 200, 3), np.uint8))
    (tmp_path / "data.yaml").write_text("names:\n  0: ant\n  1: bee\n")
    (labels / "p.txt").write_text("1 0.1 0.1 0.3 0.1 0.3 0.5 0.1 0.5\n0 0.5 0.5 0.2 0.2\n")
    data = convert_to_coco("yolo", labels, images)
    assert [c["name"] for c in data["categories"]] == ["ant", "bee"]
    bee, ant = data["annotations"]
    assert bee["category_id"] == 2 and bee["bbox"] == [20, 10, 40, 40] and bee["area"] == 1600
    assert ant["category_id"] == 1 and ant["bbox"] == [80, 40, 40, 20]
