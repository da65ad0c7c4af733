"""The Ultralytics layout: two splits out, every label where Ultralytics' rule looks, and back exactly.

Ultralytics itself is not installed; its rules for data.yaml and label paths are written out here.
"""
import json
import os
import shutil
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from datasets.cli import main
from datasets.core.coco import annotation_mask, encode_rle, mask_to_annotation
from datasets.formats.segments import annotation_outlines, instance_polygon
from datasets.synthetic.shapes import make_shapes

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def ultralytics_label(image: Path) -> Path:
    """Ultralytics' img2label_paths: the last /images/ becomes /labels/, the suffix becomes .txt."""
    sa, sb = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    return Path(sb.join(str(image).rsplit(sa, 1)).rsplit(".", 1)[0] + ".txt")


def ultralytics_split(data_yaml: Path, split: str, datasets_dir: Path = Path("/nonexistent/datasets")) -> Path:
    """A split's images folder as Ultralytics' check_det_dataset resolves it.

    `path`: absolute as given; relative, against the working folder if it exists there, else against
    Ultralytics' datasets folder; missing, the yaml's own folder. The split entry is joined to it
    (a leading ../ dropped when the folder is not there).
    """
    spec = yaml.safe_load(data_yaml.read_text())
    path = Path(spec.get("path") or data_yaml.parent)
    if not path.exists() and not path.is_absolute():
        path = (datasets_dir / path).resolve()
    folder = (path / spec[split]).resolve()
    if not folder.exists() and spec[split].startswith("../"):
        folder = (path / spec[split][3:]).resolve()
    return folder


@pytest.fixture
def two_splits(tmp_path):
    """(train.json, val.json, images folder, Ultralytics export root) of occluded shapes with crowd regions."""
    path = make_shapes(tmp_path / "s", 14, seed=5, occlusion=True, crowd_fraction=0.3)
    assert main(["split", str(path), "--out", str(tmp_path / "split"), "--val", "0.3"]) == 0
    train, val, images = tmp_path / "split/train.json", tmp_path / "split/val.json", tmp_path / "s/images"
    out = tmp_path / "yolo"
    assert main(["export", "--to", "yolo", "--split", f"train={train}", "--split", f"val={val}",
                 "--images", str(images), "--out", str(out), "--segments"]) == 0
    return train, val, images, out


def test_data_yaml_resolves_from_any_working_folder(shapes, tmp_path, monkeypatch):
    path, images, _ = shapes
    (tmp_path / "here/deep").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "here/deep")
    assert main(["export", "--to", "yolo", "--annotations", "../../shapes/annotations.json",
                 "--images", "../../shapes/images", "--out", "../out"]) == 0
    data_yaml = tmp_path / "here/out/data.yaml"
    expected = {split: (tmp_path / "here/out/images/train").resolve() for split in ("train", "val")}
    for cwd in (tmp_path / "here/deep", tmp_path / "elsewhere", tmp_path / "here/out"):
        monkeypatch.chdir(cwd)
        found = {split: ultralytics_split(data_yaml, split) for split in ("train", "val")}
        assert found == expected and all(folder.is_dir() for folder in found.values()), cwd


def objects_by_file(path):
    """file_name -> sorted (category name, bbox, annotation) of the non-crowd annotations; and the COCO."""
    coco = COCO(str(path))
    names = {c["id"]: c["name"] for c in coco.dataset["categories"]}
    files = {img["id"]: img["file_name"] for img in coco.dataset["images"]}
    out = defaultdict(list)
    for ann in coco.dataset["annotations"]:
        if not ann["iscrowd"]:
            out[files[ann["image_id"]]].append((names[ann["category_id"]], ann["bbox"], ann))
    return {k: sorted(v, key=lambda item: (item[0], item[1])) for k, v in out.items()}, coco


def test_export_is_where_ultralytics_looks(two_splits):
    train, val, images, out = two_splits
    spec = yaml.safe_load((out / "data.yaml").read_text())
    assert spec["names"] == {0: "circle", 1: "square", 2: "triangle"} and "test" not in spec
    for split, source in (("train", train), ("val", val)):
        expected, _ = objects_by_file(source)
        folder = ultralytics_split(out / "data.yaml", split)
        found = sorted(p for p in folder.rglob("*") if p.suffix in IMAGE_SUFFIXES)
        assert [p.name for p in found] == sorted(img["file_name"] for img in json.loads(source.read_text())["images"])
        for image in found:
            assert os.stat(image).st_ino == os.stat(images / image.name).st_ino  # hard-linked, not copied
            lines = ultralytics_label(image).read_text().splitlines()
            assert len(lines) == len(expected.get(image.name, []))
            for line in lines:
                values = line.split()
                assert values[0] in {"0", "1", "2"} and len(values) % 2 == 1 and len(values) >= 7
                assert all(0 <= float(v) <= 1 for v in values[1:])


def test_two_splits_come_back_exactly(two_splits, tmp_path, coco_readers):
    train, val, _, out = two_splits
    assert main(["convert", "--from", "yolo", "--src", str(out), "--out", str(tmp_path / "back")]) == 0
    for split, source in (("train", train), ("val", val)):
        before, _ = objects_by_file(source)
        after, coco = objects_by_file(tmp_path / "back" / f"{split}.json")
        assert before.keys() == after.keys() and sum(map(len, before.values())) >= 8
        for name in before:
            assert [(c, b) for c, b, _ in before[name]] == [(c, pytest.approx(b, abs=1e-3)) for c, b, _ in after[name]]
            for (_, _, old), (_, _, new) in zip(before[name], after[name]):
                a, b = annotation_mask(old, 128, 128).astype(bool), coco.annToMask(new).astype(bool)
                assert (a & b).sum() / (a | b).sum() > 0.95
        coco_readers(tmp_path / "back" / f"{split}.json", out / "images" / split)


def test_one_file_boxes_and_copied_images(shapes, tmp_path):
    path, images, data = shapes
    out = tmp_path / "yolo"
    assert main(["export", "--to", "yolo", "--annotations", str(path), "--images", str(images), "--out", str(out),
                 "--copy-images"]) == 0
    spec = yaml.safe_load((out / "data.yaml").read_text())
    assert spec["train"] == spec["val"] == "images/train"  # Ultralytics needs a val split
    image = out / "images/train/000000.png"
    assert image.read_bytes() == (images / "000000.png").read_bytes()
    assert os.stat(image).st_ino != os.stat(images / "000000.png").st_ino
    assert all(len(line.split()) == 5 for line in ultralytics_label(image).read_text().splitlines())
    assert main(["convert", "--from", "yolo", "--src", str(out), "--out", str(tmp_path / "back.json")]) == 0
    before, _ = objects_by_file(path)
    after, _ = objects_by_file(tmp_path / "back.json")
    for name in before:
        assert np.allclose([b for _, b, _ in before[name]], [b for _, b, _ in after[name]], atol=0.01)


def convert(*args):
    return main(["convert", "--from", "yolo", *map(str, args)])


def test_root_and_labels_folder_give_the_same_file(two_splits, tmp_path):
    _, _, _, out = two_splits
    assert convert("--src", out, "--out", tmp_path / "splits") == 0
    assert convert("--src", out / "labels/val", "--images", out / "images/val", "--out", tmp_path / "val.json") == 0
    assert (tmp_path / "val.json").read_bytes() == (tmp_path / "splits/val.json").read_bytes()
    flat = tmp_path / "flat"
    shutil.copytree(out / "images/train", flat / "images")
    shutil.copytree(out / "labels/train", flat / "labels")
    shutil.copy(out / "classes.txt", flat / "labels/classes.txt")
    made = {"root": ["--src", flat], "labels": ["--src", flat / "labels", "--images", flat / "images"],
            "root+images": ["--src", flat, "--images", flat / "images"]}
    for name, args in made.items():
        assert convert(*args, "--out", tmp_path / f"{name}.json") == 0
    assert len({(tmp_path / f"{name}.json").read_bytes() for name in made}) == 1
    assert (tmp_path / "root.json").read_bytes() == (tmp_path / "splits/train.json").read_bytes()


def test_labels_folder_with_split_subfolders(two_splits, tmp_path, capsys):
    _, _, _, out = two_splits
    assert convert("--src", out, "--out", tmp_path / "splits") == 0
    assert convert("--src", out / "labels", "--images", out / "images/val", "--out", tmp_path / "val.json") == 0
    assert (tmp_path / "val.json").read_bytes() == (tmp_path / "splits/val.json").read_bytes()
    copy = tmp_path / "copy"  # one stem in both split folders: the image's own folder decides
    shutil.copytree(out / "labels", copy / "labels")
    shutil.copytree(out / "images/val", copy / "images/val")
    stem = sorted((copy / "labels/val").iterdir())[0].name
    (copy / "labels/train" / stem).write_text("")
    assert convert("--src", copy / "labels", "--images", copy / "images/val", "--classes", out / "classes.txt",
                   "--out", tmp_path / "copy.json") == 0
    assert (tmp_path / "copy.json").read_bytes() == (tmp_path / "val.json").read_bytes()
    shutil.copytree(copy / "images/val", tmp_path / "photos")
    assert convert("--src", copy / "labels", "--images", tmp_path / "photos", "--classes", out / "classes.txt",
                   "--out", tmp_path / "photos.json") == 1
    assert f"2 label files are named {stem} under {copy / 'labels'}" in capsys.readouterr().err


def test_roboflow_data_yaml(shapes, tmp_path):
    path, images, _ = shapes
    assert main(["export", "--to", "yolo", "--annotations", str(path), "--images", str(images),
                 "--out", str(tmp_path / "y")]) == 0
    root = tmp_path / "rf"
    for split, names in (("train", ["000000", "000001", "000002", "000003"]), ("valid", ["000004", "000005"])):
        for stem in names:
            (root / split / "images").mkdir(parents=True, exist_ok=True)
            (root / split / "labels").mkdir(exist_ok=True)
            shutil.copy(tmp_path / f"y/images/train/{stem}.png", root / split / "images")
            shutil.copy(tmp_path / f"y/labels/train/{stem}.txt", root / split / "labels")
    (root / "data.yaml").write_text("train: ../train/images\nval: ../valid/images\nnc: 3\n"
                                    "names: ['circle', 'square', 'triangle']\n")
    assert convert("--src", root, "--out", tmp_path / "rf_coco") == 0
    parts = {split: json.loads((tmp_path / f"rf_coco/{split}.json").read_text()) for split in ("train", "val")}
    assert [len(parts[s]["images"]) for s in ("train", "val")] == [4, 2]
    assert all(part["annotations"] for part in parts.values())


@pytest.mark.parametrize("case", ["renamed", "old_export", "root_with_images", "labels_folder"])
def test_labels_that_match_no_image_are_an_error(shapes, tmp_path, capsys, case):
    path, images, _ = shapes
    root = tmp_path / "root"
    assert main(["export", "--to", "yolo", "--annotations", str(path), "--images", str(images),
                 "--out", str(root)]) == 0
    labels, image_folder = root / "labels/train", root / "images/train"
    if case == "renamed":  # labels named after other files
        for label in labels.glob("*.txt"):
            label.rename(label.with_name("img_" + label.name))
        args = ["--src", root]
    elif case == "old_export":  # labels/ beside a data.yaml naming an images folder that has no labels/ beside it
        (root / "data.yaml").write_text(f"path: {root}\ntrain: {images}\nval: {images}\nnames: [a, b, c]\n")
        labels, image_folder = root / "labels", images
        args = ["--src", root]
    else:  # images of other names, with the dataset root (root_with_images) or its labels folder
        (tmp_path / "other").mkdir()
        shutil.copy(images / "000000.png", tmp_path / "other/frame.png")
        image_folder = tmp_path / "other"
        labels = root / "labels" if case == "root_with_images" else labels
        args = ["--src", root if case == "root_with_images" else labels, "--images", image_folder]
    capsys.readouterr()
    assert convert(*args, "--out", tmp_path / "o.json") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: none of the") and err.count("\n") == 1
    assert f"label files in {labels} matches an image in {image_folder}" in err
    assert ("leave out --images" in err) == (case == "root_with_images")
    assert not (tmp_path / "o.json").exists()


def test_one_polygon_keeps_parts_and_holes():
    """A YOLO-seg line holds one polygon: parts and holes joined by bridges still rasterise to the same pixels."""
    rng = np.random.default_rng(3)
    masks = [(cv2.GaussianBlur(rng.random((40, 50)), (7, 7), 0) > 0.5).astype(np.uint8) for _ in range(30)]
    ring_and_dot = np.zeros((40, 50), np.uint8)
    cv2.circle(ring_and_dot, (20, 20), 15, 1, -1)
    cv2.circle(ring_and_dot, (20, 20), 6, 0, -1)
    ring_and_dot[2:6, 40:47] = 1
    disk = np.zeros((40, 50), np.uint8)
    cv2.circle(disk, (30, 18), 9, 1, -1)
    masks += [ring_and_dot, disk]
    shapes = set()
    for mask in masks:
        for segmentation in (mask_to_annotation(mask)["segmentation"], encode_rle(mask)):
            ann = {"segmentation": segmentation, "bbox": [0, 0, 1, 1]}
            outlines = annotation_outlines(ann, 40, 50)
            shapes.add((len(outlines), isinstance(segmentation, dict)))
            polygon = instance_polygon(ann, 40, 50)
            back = mask_utils.decode(mask_utils.frPyObjects([polygon], 40, 50))[..., 0]
            assert (back == mask).all()
    assert {n > 1 for n, _ in shapes} == {True, False} and {rle for _, rle in shapes} == {True, False}


def test_a_copied_dataset_is_read_where_it_is(two_splits, tmp_path, capsys):
    _, _, _, out = two_splits
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)  # its data.yaml `path` still names the original
    for label in (copy / "labels/val").glob("*.txt"):
        label.write_text("")
    assert convert("--src", copy, "--out", tmp_path / "c") == 0
    assert json.loads((tmp_path / "c/val.json").read_text())["annotations"] == []
    assert json.loads((tmp_path / "c/train.json").read_text())["annotations"]
    shutil.rmtree(copy / "images/val")
    capsys.readouterr()
    assert convert("--src", copy, "--out", tmp_path / "d") == 1
    assert f"no folder for val: images/val under {copy}" in capsys.readouterr().err
