"""`datasets sequences`: files, line counts and formats, the crossing pair, public detections, boxes-only
input, bad input."""
from __future__ import annotations

import configparser
import json

import cv2
import numpy as np
import pytest

from datasets.cli import main
from datasets.core.video import open_video, video_frames
from datasets.synthetic.shapes import make_shapes
from datasets.synthetic.sprites import cut_sprite, painted_out

FRAMES = 12


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """(annotations, images) of 8 synthetic shapes images."""
    root = tmp_path_factory.mktemp("shapes")
    return make_shapes(root, 8, seed=5), root / "images"


@pytest.fixture(scope="module")
def sequences(source, tmp_path_factory):
    """OUT of `datasets sequences` (2 crossing sequences of 12 frames, 3 objects)."""
    out = tmp_path_factory.mktemp("seqs")
    annotations, images = source
    code = main(["sequences", "--annotations", str(annotations), "--images", str(images), "--out", str(out),
                 "--num-sequences", "2", "--frames", str(FRAMES), "--objects", "3", "--size", "128", "--seed", "1"])
    assert code == 0
    return out


def read_gt(folder) -> np.ndarray:
    return np.loadtxt(folder / "gt" / "gt.txt", delimiter=",", ndmin=2)


def count_video_frames(path) -> int:
    return sum(1 for _ in video_frames(open_video(path)))


def test_writes_every_file_with_right_counts(sequences):
    summary = json.loads((sequences / "sequences.json").read_text())
    assert [s["name"] for s in summary["sequences"]] == ["seq-0001", "seq-0002"]
    assert [c["name"] for c in summary["categories"]] == ["circle", "square", "triangle"]
    for name in ("seq-0001", "seq-0002"):
        folder = sequences / name
        frames = sorted((folder / "frames").iterdir())
        assert [p.name for p in frames] == [f"{i:06d}.jpg" for i in range(1, FRAMES + 1)]
        assert cv2.imread(str(frames[0])).shape == (128, 128, 3)
        assert count_video_frames(folder / f"{name}.mp4") == FRAMES
        rects = (folder / "groundtruth_rect.txt").read_text().splitlines()
        assert len(rects) == FRAMES and all(len(line.split(",")) == 4 for line in rects)
        gt = read_gt(folder)
        assert gt.shape == (3 * FRAMES, 9)
        assert sorted(set(gt[:, 0])) == list(range(1, FRAMES + 1)) and sorted(set(gt[:, 1])) == [1, 2, 3]
        assert (gt[:, 6] == 1).all() and set(gt[:, 7]) <= {1, 2, 3}
        assert ((gt[:, 8] >= 0) & (gt[:, 8] <= 1)).all() and (gt[:, 4:6] > 0).all()
        target = gt[gt[:, 1] == 1][:, 2:6]
        assert np.array_equal(target, np.array([[int(v) for v in line.split(",")] for line in rects]))
        det = np.loadtxt(folder / "det" / "det.txt", delimiter=",", ndmin=2)
        assert det.shape[1] == 10 and (det[:, 1] == -1).all() and (det[:, 7:] == -1).all()
        assert set(det[:, 0]) <= set(range(1, FRAMES + 1)) and ((det[:, 6] > 0) & (det[:, 6] < 1)).all()
        info = configparser.ConfigParser()
        info.read(folder / "seqinfo.ini")
        assert dict(info["Sequence"]) == {"name": name, "imdir": "frames", "framerate": "25",
                                          "seqlength": str(FRAMES), "imwidth": "128", "imheight": "128",
                                          "imext": ".jpg"}


def test_target_and_distractor_share_a_class_and_cross(sequences):
    for folder in sorted(sequences.glob("seq-*")):
        gt = read_gt(folder)
        one, two = gt[gt[:, 1] == 1], gt[gt[:, 1] == 2]
        assert one[0, 7] == two[0, 7]  # same class: a distractor
        centre_one, centre_two = one[:, 2:4] + one[:, 4:6] / 2, two[:, 2:4] + two[:, 4:6] / 2
        gap = np.linalg.norm(centre_one - centre_two, axis=1)
        assert gap[FRAMES // 2] < 0.5 * min(gap[0], gap[-1])  # they meet in the middle, apart at both ends
        assert np.dot(centre_one[-1] - centre_one[0], centre_two[-1] - centre_two[0]) <= 0  # not side by side
        assert min(one[:, 8].min(), two[:, 8].min()) < 0.9  # one passes over the other


def test_public_detections_follow_the_ground_truth(source, tmp_path):
    annotations, images = source
    out = tmp_path / "out"
    assert main(["sequences", "--annotations", str(annotations), "--images", str(images), "--out", str(out),
                 "--num-sequences", "1", "--frames", "10", "--size", "96", "--det-jitter", "0", "--det-drop", "0",
                 "--det-false-alarms", "0"]) == 0
    gt, det = read_gt(out / "seq-0001"), np.loadtxt(out / "seq-0001/det/det.txt", delimiter=",", ndmin=2)
    seen = gt[gt[:, 8] >= 0.2]  # hidden objects are not detected, the others exactly, weak when half hidden
    assert np.array_equal(det[:, [0, 2, 3, 4, 5]], seen[:, [0, 2, 3, 4, 5]])
    assert np.array_equal(det[:, 6] < 0.55, seen[:, 8] < 0.6)


def test_same_seed_same_sequences(source, sequences, tmp_path):
    annotations, images = source
    assert main(["sequences", "--annotations", str(annotations), "--images", str(images), "--out", str(tmp_path),
                 "--num-sequences", "1", "--frames", str(FRAMES), "--objects", "3", "--size", "128",
                 "--seed", "1"]) == 0
    assert (tmp_path / "seq-0001/gt/gt.txt").read_text() == (sequences / "seq-0001/gt/gt.txt").read_text()


def test_boxes_only_dataset_random_mode_texture(source, tmp_path):
    annotations, images = source
    data = json.loads(annotations.read_text())
    for ann in data["annotations"]:
        ann.pop("segmentation", None)
    boxes_only = tmp_path / "boxes.json"
    boxes_only.write_text(json.dumps(data))
    out = tmp_path / "out"
    assert main(["sequences", "--annotations", str(boxes_only), "--images", str(images), "--out", str(out),
                 "--num-sequences", "1", "--frames", "5", "--objects", "2", "--size", "96", "--mode", "random",
                 "--background", "texture", "--format", "png"]) == 0
    assert len(list((out / "seq-0001" / "frames").glob("*.png"))) == 5
    assert read_gt(out / "seq-0001").shape == (10, 9)


@pytest.mark.parametrize("args, fragment", [
    (["--frames", "1"], "--frames"),
    (["--objects", "1"], "--objects"),
    (["--size", "32"], "--size"),
    (["--annotations", "missing.json"], "missing.json"),
])
def test_bad_input_is_one_error_line(source, tmp_path, capsys, args, fragment):
    annotations, images = source
    base = {"--annotations": str(annotations), "--images": str(images), "--out": str(tmp_path / "out")}
    base.update(dict(zip(args[::2], args[1::2])))
    assert main(["sequences", *[v for pair in base.items() for v in pair]]) == 1
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and fragment in errors[0] and "Traceback" not in err
    assert not list((tmp_path / "out").glob("seq-*"))


def test_backgrounds_lose_their_objects_and_sprites_keep_their_mask():
    image = np.full((64, 96, 3), 120, np.uint8)
    image[20:40, 30:50] = (0, 0, 255)
    ann = {"bbox": [30, 20, 20, 20], "segmentation": [[30, 20, 50, 20, 50, 40, 30, 40]], "category_id": 2}
    clean = painted_out(image, [ann])
    assert np.abs(clean.astype(int) - 120).max() <= 5  # the red square is gone (it was 135 off)
    sprite = cut_sprite(image, ann)
    assert sprite.category_id == 2 and sprite.alpha.shape == (20, 20) and sprite.alpha.min() == 1
    assert (sprite.pixels == (0, 0, 255)).all()
    no_mask = cut_sprite(image, {"bbox": [25, 15, 30, 30], "category_id": 1})
    assert no_mask.alpha.shape == (30, 30) and no_mask.alpha.min() == 1  # boxes only: the whole box
