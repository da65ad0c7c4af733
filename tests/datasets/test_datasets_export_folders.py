"""export takes an images folder per split (--split NAME=FILE:IMAGES), --images for the splits naming none."""
import json
import shutil

import pytest
import yaml

from datasets.cli import main
from datasets.synthetic.shapes import make_shapes


@pytest.fixture
def two_folders(tmp_path):
    """(train.json, train images, val.json, val images): two tiled sets, each in its own folder, with the
    same file names (000000_0_0.png, ...) for different pictures."""
    out = []
    for split, count in (("train", 4), ("val", 2)):
        path = make_shapes(tmp_path / split, count, seed=count)
        assert main(["tile", str(path), "--images", str(tmp_path / split / "images"), "--size", "64",
                     "--overlap", "0", "--out", str(tmp_path / f"tiles_{split}")]) == 0
        out += [tmp_path / f"tiles_{split}/annotations.json", tmp_path / f"tiles_{split}/images"]
    return out


def split_args(train, train_images, val, val_images):
    return ["--split", f"train={train}:{train_images}", "--split", f"val={val}:{val_images}"]


def test_yolo_export_takes_a_folder_per_split(two_folders, tmp_path):
    train, train_images, val, val_images = two_folders
    out = tmp_path / "yolo"
    assert main(["export", "--to", "yolo", *split_args(*two_folders), "--out", str(out)]) == 0
    spec = yaml.safe_load((out / "data.yaml").read_text())
    for split, source, images in (("train", train, train_images), ("val", val, val_images)):
        names = sorted(img["file_name"] for img in json.loads(source.read_text())["images"])
        assert sorted(p.name for p in (out / spec[split]).iterdir()) == names
        assert all((out / spec[split] / name).read_bytes() == (images / name).read_bytes() for name in names)


def test_voc_export_takes_a_folder_per_split_and_default_images(two_folders, tmp_path):
    train, train_images, _, _ = two_folders
    out = tmp_path / "voc"
    assert main(["export", "--to", "voc", "--split", f"train={train}",
                 "--split", f"val={tmp_path / 'val/annotations.json'}:{tmp_path / 'val/images'}",
                 "--images", str(train_images), "--out", str(out)]) == 0
    members = {split: (out / f"ImageSets/Main/{split}.txt").read_text().split() for split in ("train", "val")}
    assert len(members["train"]) == 4 * 4 and members["val"] == ["000000", "000001"]
    assert all((out / f"JPEGImages/{name}.jpg").is_file() for names in members.values() for name in names)


def test_a_split_without_images_folder_is_a_user_error(two_folders, tmp_path, capsys):
    train, train_images, val, _ = two_folders
    assert main(["export", "--to", "yolo", "--split", f"train={train}:{train_images}", "--split", f"val={val}",
                 "--out", str(tmp_path / "o")]) == 1
    assert f"--split val={val}: give its images folder as val={val}:IMAGES, or --images" in capsys.readouterr().err
    assert main(["export", "--to", "yolo", "--split", f"train={train}:{tmp_path / 'nothing'}",
                 "--out", str(tmp_path / "o")]) == 1
    assert "nothing: no such folder" in capsys.readouterr().err
    assert main(["export", "--to", "voc", *split_args(*two_folders), "--out", str(tmp_path / "voc")]) == 1
    assert "would both be JPEGImages/000000_0_0.jpg" in capsys.readouterr().err
