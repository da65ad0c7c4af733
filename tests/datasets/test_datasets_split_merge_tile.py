"""split keeps every category in every split (and a tiled photo in one); merge re-indexes; tile keeps boxes."""
import json

import cv2
import numpy as np
import pytest

from datasets.checks.validate import validate_coco
from datasets.cli import main
from datasets.core.errors import UserError
from datasets.edit.merge import merge_coco
from datasets.edit.split import split_coco
from datasets.edit.tile import tile_dataset
from datasets.synthetic.shapes import make_shapes


def categories_in(part):
    return {a["category_id"] for a in part["annotations"]}


def test_split_is_stratified_complete_and_deterministic(tmp_path):
    path = make_shapes(tmp_path / "s", 40, seed=4, imbalance=12.0)
    data = json.loads(path.read_text())
    rare = min(range(1, 4), key=lambda c: sum(a["category_id"] == c for a in data["annotations"]))
    rare_images = {a["image_id"] for a in data["annotations"] if a["category_id"] == rare}
    assert 3 <= len(rare_images) <= 8  # rare enough that a random split could miss it
    assert main(["split", str(path), "--out", str(tmp_path / "split"), "--val", "0.2", "--test", "0.1",
                 "--seed", "3"]) == 0
    parts = {n: json.loads((tmp_path / "split" / f"{n}.json").read_text()) for n in ("train", "val", "test")}
    for part in parts.values():
        assert categories_in(part) == {1, 2, 3}
        assert validate_coco(part, tmp_path / "s/images") == []
    ids = [img["id"] for part in parts.values() for img in part["images"]]
    assert sorted(ids) == sorted(img["id"] for img in data["images"])
    assert sum(len(p["annotations"]) for p in parts.values()) == len(data["annotations"])
    assert 5 <= len(parts["val"]["images"]) <= 11 and 2 <= len(parts["test"]["images"]) <= 7
    again = split_coco(data, 0.2, 0.1, seed=3)
    assert all(again[n]["images"] == parts[n]["images"] for n in parts)
    other = split_coco(data, 0.2, 0.1, seed=4)
    assert other["val"]["images"] != parts["val"]["images"]


def test_merge_unifies_categories_and_reindexes(tmp_path):
    a = {"info": {}, "licenses": [], "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
         "images": [{"id": 1, "file_name": "a.png", "width": 10, "height": 10}],
         "annotations": [{"id": 1, "image_id": 1, "category_id": 2, "bbox": [1, 1, 2, 2], "area": 4, "iscrowd": 0}]}
    b = {"info": {}, "licenses": [], "categories": [{"id": 5, "name": "bird"}, {"id": 1, "name": "dog"}],
         "images": [{"id": 1, "file_name": "b.png", "width": 10, "height": 10},
                    {"id": 2, "file_name": "a.png", "width": 10, "height": 10}],
         "annotations": [{"id": 1, "image_id": 1, "category_id": 5, "bbox": [0, 0, 3, 3], "area": 9, "iscrowd": 0},
                         {"id": 2, "image_id": 2, "category_id": 1, "bbox": [4, 4, 2, 2], "area": 4, "iscrowd": 0}]}
    for name, data in (("a", a), ("b", b)):
        (tmp_path / f"{name}.json").write_text(json.dumps(data))
    assert main(["merge", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--out", str(tmp_path / "m.json")]) == 0
    merged = json.loads((tmp_path / "m.json").read_text())
    assert merged["categories"] == [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}, {"id": 3, "name": "bird"}]
    assert [img["id"] for img in merged["images"]] == [1, 2]
    assert [a["id"] for a in merged["annotations"]] == [1, 2, 3]
    names = {c["id"]: c["name"] for c in merged["categories"]}
    files = {img["id"]: img["file_name"] for img in merged["images"]}
    pairs = [(files[a["image_id"]], names[a["category_id"]]) for a in merged["annotations"]]
    assert pairs == [("a.png", "dog"), ("b.png", "bird"), ("a.png", "dog")]
    assert validate_coco(merged) == []


def test_merge_rejects_conflicting_sizes(tmp_path):
    a = {"images": [{"id": 1, "file_name": "a.png", "width": 10, "height": 10}], "annotations": [],
         "categories": []}
    b = {"images": [{"id": 1, "file_name": "a.png", "width": 12, "height": 10}], "annotations": [],
         "categories": []}
    try:
        merge_coco([("a", a), ("b", b)])
    except Exception as exc:
        assert "12x10" in str(exc) and type(exc).__name__ == "UserError"
    else:
        raise AssertionError("expected a UserError")


def test_tile_keeps_boxes_consistent(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "big.png"), np.full((150, 230, 3), 90, np.uint8))
    boxes = [[5, 5, 30, 20], [80, 40, 50, 50], [190, 110, 35, 35], [10, 60, 215, 10]]
    data = {"info": {}, "licenses": [], "categories": [{"id": 1, "name": "thing"}],
            "images": [{"id": 1, "file_name": "big.png", "width": 230, "height": 150}],
            "annotations": [{"id": i + 1, "image_id": 1, "category_id": 1, "bbox": b, "area": b[2] * b[3],
                             "iscrowd": 0, "segmentation": [[b[0], b[1], b[0] + b[2], b[1], b[0] + b[2],
                                                             b[1] + b[3], b[0], b[1] + b[3]]]}
                            for i, b in enumerate(boxes)]}
    (tmp_path / "a.json").write_text(json.dumps(data))
    path = tile_dataset(tmp_path / "a.json", images, 100, 0.25, tmp_path / "tiles", min_visibility=0.5)
    tiles = json.loads(path.read_text())
    assert validate_coco(tiles, tmp_path / "tiles/images") == []
    assert len(tiles["images"]) == 3 * 2  # x starts 0, 75, 130; y starts 0, 50
    by_name = {img["id"]: img["file_name"] for img in tiles["images"]}
    kept = set()
    for ann in tiles["annotations"]:
        tx, ty = (int(v) for v in by_name[ann["image_id"]][:-4].split("_")[1:])
        x, y, w, h = ann["bbox"]
        original = next(b for b in boxes if b[0] <= x + tx and x + tx + w <= b[0] + b[2]
                        and b[1] <= y + ty and y + ty + h <= b[1] + b[3])
        assert w * h >= 0.5 * original[2] * original[3] - 1e-6
        assert ann["area"] == w * h  # box-shaped masks are cropped with the tile
        kept.add(tuple(original))
    assert kept == {tuple(b) for b in boxes[:3]}  # the long thin box is never half inside a tile
    image = cv2.imread(str(tmp_path / "tiles/images/big_130_50.png"))
    assert image.shape == (100, 100, 3)


def test_tiles_name_their_photo_and_split_keeps_it_whole(tmp_path, capsys):
    path = make_shapes(tmp_path / "s", 12, seed=6)
    assert main(["tile", str(path), "--images", str(tmp_path / "s/images"), "--size", "64", "--overlap", "0",
                 "--out", str(tmp_path / "t")]) == 0
    tiles = json.loads((tmp_path / "t/annotations.json").read_text())
    for img in tiles["images"]:
        stem, x, y = img["file_name"][:-4].split("_")
        assert img["source"] == f"{stem}.png" and img["offset"] == [int(x), int(y)]
    tiles["images"] += [{"id": 100 + i, "file_name": f"loose{i}.png", "width": 64, "height": 64} for i in range(4)]
    (tmp_path / "t/mixed.json").write_text(json.dumps(tiles))  # 48 tiles of 12 photos, 4 images of no photo
    args = ["split", str(tmp_path / "t/mixed.json"), "--val", "0.25", "--test", "0.25", "--group-by", "source"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert "kept 48 images in 12 groups by 'source' (4 without it)" in capsys.readouterr().out
    parts = {n: json.loads((tmp_path / f"a/{n}.json").read_text()) for n in ("train", "val", "test")}
    owner: dict = {}
    for name, part in parts.items():
        for img in part["images"]:
            assert owner.setdefault(img.get("source", img["file_name"]), name) == name  # no photo in two splits
    assert sum(len(p["images"]) for p in parts.values()) == 52
    assert [abs(len(parts[n]["images"]) - share * 52) <= 4 for n, share in (("train", .5), ("val", .25),
                                                                            ("test", .25))] == [True] * 3
    assert main([*args, "--out", str(tmp_path / "b")]) == 0  # same seed, same split
    assert all((tmp_path / f"a/{n}.json").read_bytes() == (tmp_path / f"b/{n}.json").read_bytes() for n in parts)


def test_group_by_needs_enough_groups(tmp_path):
    data = {"images": [{"id": i, "file_name": f"{i}.png", "width": 8, "height": 8, "source": "one.png"}
                       for i in (1, 2, 3)], "annotations": [], "categories": [{"id": 1, "name": "a"}]}
    with pytest.raises(UserError, match="--group-by source gives 1 groups, too few for 2 splits"):
        split_coco(data, 0.3, group_by="source")
    assert len(split_coco(data, 0.3, group_by="other")["val"]["images"]) == 1  # no field: each image its own group
