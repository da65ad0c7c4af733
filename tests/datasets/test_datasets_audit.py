"""`datasets audit`: near-duplicates by perceptual hash (a re-encoded, resized copy is found; different pictures of
one scene type are not), leaks across splits first, --fix-leaks, class balance and box sizes, unreadable images
listed, an empty split as one error line, and the figure."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from datasets.checks import hashes
from datasets.cli import main
from datasets.core.coco import new_coco, save_coco
from datasets.synthetic.shapes import make_shapes


def reencode(src: Path, dst: Path, quality: int = 60, scale: float = 0.9) -> tuple[int, int]:
    """A JPEG copy of `src` at `quality`, resized by `scale`; returns its (width, height)."""
    image = cv2.imread(str(src))
    height, width = image.shape[:2]
    size = (round(width * scale), round(height * scale))
    cv2.imwrite(str(dst), cv2.resize(image, size, interpolation=cv2.INTER_AREA), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return size


def signature(image: np.ndarray) -> hashes.Signatures:
    bits, strong, thumb = hashes.image_signature(image)
    return hashes.Signatures(np.array([bits]), np.array([strong]), thumb[None], {})


def near(a: np.ndarray, b: np.ndarray) -> list:
    sa, sb = signature(a), signature(b)
    both = hashes.Signatures(np.concatenate([sa.bits, sb.bits]), np.concatenate([sa.strong, sb.strong]),
                             np.concatenate([sa.thumbs, sb.thumbs]), {})
    return hashes.near_pairs(both)


def split_files(tmp_path: Path, data: dict, val_ids: set[int]) -> tuple[Path, Path]:
    """train.json and val.json of a COCO dict: the images in val_ids go to val."""
    paths = []
    for name, keep in (("train", lambda i: i not in val_ids), ("val", lambda i: i in val_ids)):
        images = [img for img in data["images"] if keep(img["id"])]
        anns = [a for a in data["annotations"] if keep(a["image_id"])]
        paths.append(tmp_path / f"{name}.json")
        save_coco(paths[-1], new_coco(images, anns, data["categories"]))
    return paths[0], paths[1]


def add_image(path: Path, file_name: str, size: tuple[int, int], anns: list[dict] = ()) -> None:
    data = json.loads(path.read_text())
    image_id = max(img["id"] for img in data["images"]) + 1
    data["images"].append({"id": image_id, "file_name": file_name, "width": size[0], "height": size[1]})
    next_id = max((a["id"] for a in data["annotations"]), default=0) + 1
    data["annotations"] += [{**a, "id": next_id + k, "image_id": image_id} for k, a in enumerate(anns)]
    save_coco(path, data)


def test_reencoded_resized_copy_is_a_duplicate_of_its_source(shapes, tmp_path):
    _, images, _ = shapes
    for src in sorted(images.iterdir()):
        reencode(src, tmp_path / "copy.jpg")
        pairs = near(cv2.imread(str(src)), cv2.imread(str(tmp_path / "copy.jpg")))
        assert len(pairs) == 1 and pairs[0][2] <= 4, (src.name, pairs)


def test_different_images_of_one_scene_type_are_not_duplicates(tmp_path):
    # the same generator and options: solid, gradient and noise backgrounds with a few shapes (5% with none)
    make_shapes(tmp_path / "s", 60, seed=21, max_objects=2)
    paths = sorted((tmp_path / "s" / "images").iterdir())
    sigs = hashes.compute_signatures(paths, progress=False)
    assert not sigs.errors and hashes.near_pairs(sigs) == []
    # and two hand-made scenes alike but for where the one circle is: one background colour, one circle colour
    a, b = np.full((128, 128, 3), (40, 120, 200), np.uint8), np.full((128, 128, 3), (40, 120, 200), np.uint8)
    cv2.circle(a, (35, 40), 14, (240, 240, 60), -1)
    cv2.circle(b, (90, 85), 14, (240, 240, 60), -1)
    assert near(a, b) == []
    # two plain pictures of different colours are not duplicates (the hash alone cannot tell them apart)
    assert near(np.full((64, 64, 3), 30, np.uint8), np.full((64, 64, 3), 200, np.uint8)) == []


def test_leaks_across_splits_come_first_and_fix_leaks_keeps_each_group_in_one_split(shapes, tmp_path, capsys):
    _, images, data = shapes
    train, val = split_files(tmp_path, data, {8, 9, 10})
    anns_of_1 = [a for a in data["annotations"] if a["image_id"] == 1]
    size = reencode(images / "000000.png", images / "copy_of_0.jpg")
    add_image(val, "copy_of_0.jpg", size, [{**a, "bbox": [v * 0.9 for v in a["bbox"]]} for a in anns_of_1])
    add_image(val, "000001.png", (128, 128))  # the very same file in both splits
    reencode(images / "000002.png", images / "again_2.jpg", quality=90, scale=1.0)
    add_image(train, "again_2.jpg", (128, 128))  # a duplicate within train only
    out = tmp_path / "report.json"
    code = main(["audit", "--split", f"train={train}", "--split", f"val={val}", "--images", str(images),
                 "--out", str(out), "--fix-leaks", str(tmp_path / "fixed"), "--plot", str(tmp_path / "audit.png")])
    printed = capsys.readouterr().out
    assert code == 0
    report = json.loads(out.read_text())
    assert list(report)[:3] == ["summary", "leaks", "duplicates"]
    leaks = {tuple(g["images"]): g for g in report["leaks"]}
    assert set(leaks) == {("000000.png", "copy_of_0.jpg"), ("000001.png", "000001.png")}, report["leaks"]
    assert leaks["000000.png", "copy_of_0.jpg"]["splits"] == ["train", "val"]
    assert leaks["000001.png", "000001.png"]["distance"] == 0
    assert [g["images"] for g in report["duplicates"]] == [["000002.png", "again_2.jpg"]]
    assert report["duplicates"][0]["splits"] == ["train", "train"]
    # fixed splits: every leaked group in one split (train, the first given); the moved image keeps its boxes
    fixed = {name: json.loads((tmp_path / "fixed" / f"{name}.json").read_text()) for name in ("train", "val")}
    names = {name: [img["file_name"] for img in d["images"]] for name, d in fixed.items()}
    assert "copy_of_0.jpg" in names["train"] and "copy_of_0.jpg" not in names["val"]
    assert names["train"].count("000001.png") == 1 and "000001.png" not in names["val"]
    moved = next(img for img in fixed["train"]["images"] if img["file_name"] == "copy_of_0.jpg")
    assert len([a for a in fixed["train"]["annotations"] if a["image_id"] == moved["id"]]) == len(anns_of_1)
    assert len({a["id"] for a in fixed["train"]["annotations"]}) == len(fixed["train"]["annotations"])
    assert "val/copy_of_0.jpg: moved to train" in printed and "val/000001.png: dropped, already in train" in printed
    assert sorted(m["file_name"] for m in report["fix_leaks"]["moves"]) == ["000001.png", "copy_of_0.jpg"]
    assert not [p for p in (tmp_path / "fixed").iterdir() if p.name.startswith(".")]  # no temporary files left
    # a fixed set audits clean of leaks
    assert main(["audit", "--split", f"train={tmp_path / 'fixed' / 'train.json'}", "--split",
                 f"val={tmp_path / 'fixed' / 'val.json'}", "--images", str(images), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["leaks"] == []
    assert (tmp_path / "audit.png").stat().st_size > 10_000


def test_classes_sizes_rare_classes_and_small_boxes(tmp_path, capsys):
    path = make_shapes(tmp_path / "s", 30, seed=4, imbalance=30.0, min_size=8, max_size=60)
    data = json.loads(path.read_text())
    out = tmp_path / "report.json"
    assert main(["audit", "--split", f"all={path}", "--images", str(tmp_path / "s" / "images"), "--out", str(out),
                 "--min-instances", "5", "--min-box", "8", "--input-size", "64"]) == 0
    report = json.loads(out.read_text())
    classes = report["classes"]
    counts = {c["name"]: sum(a["category_id"] == c["id"] for a in data["annotations"]) for c in data["categories"]}
    assert {name: row["instances"] for name, row in classes.items()} == counts
    assert all(sum(row["sizes"].values()) == row["instances"] for row in classes.values())
    assert classes["circle"]["images"] == len({a["image_id"] for a in data["annotations"] if a["category_id"] == 1})
    assert classes["square"]["aspect_ratio"]["median"] == pytest.approx(1.0, abs=0.05)
    assert [r["category"] for r in report["flags"]["rare_classes"]] == [n for n, c in counts.items() if c < 5]
    # a box is small when sqrt(w*h) letterboxed from 128 to 64 px is under 8 px, i.e. under 16 image pixels
    expected = sum(np.sqrt(a["bbox"][2] * a["bbox"][3]) * 0.5 < 8 for a in data["annotations"])
    assert report["flags"]["small_boxes"]["count"] == expected > 0
    assert "boxes under 8 px at input size 64" in capsys.readouterr().out


def test_unreadable_images_are_listed_not_fatal(shapes, tmp_path):
    path, images, _ = shapes
    (images / "broken.png").write_bytes(b"not an image")
    add_image(path, "broken.png", (128, 128))
    add_image(path, "gone.png", (128, 128))
    out = tmp_path / "report.json"
    assert main(["audit", "--split", f"train={path}", "--images", str(images), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert [(u["file_name"], "not a readable image" in u["error"] or "not found" in u["error"])
            for u in report["unreadable"]] == [("broken.png", True), ("gone.png", True)]
    assert report["summary"]["images"] == 12 and report["duplicates"] == []


@pytest.mark.parametrize("case,message", [
    ("empty", "--split val="), ("twice", "--split train: given twice"), ("malformed", "expected NAME=FILE"),
])
def test_bad_splits_are_one_error_line(shapes, tmp_path, capsys, case, message):
    path, images, data = shapes
    empty = tmp_path / "empty.json"
    save_coco(empty, new_coco([], [], data["categories"]))
    splits = {"empty": [f"train={path}", f"val={empty}"], "twice": [f"train={path}", f"train={path}"],
              "malformed": [str(path)]}[case]
    args = ["audit", *[w for s in splits for w in ("--split", s)], "--images", str(images),
            "--out", str(tmp_path / "r.json")]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and message in err and "Traceback" not in err
    if case == "empty":
        assert "the split is empty" in err
    assert not (tmp_path / "r.json").exists()
