"""Tests of the synthetic shapes generator: determinism, COCO validity, mask consistency."""
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
from pycocotools.coco import COCO

from datasets.core.coco import annotation_mask
from datasets.synthetic.shapes import make_shapes

ROOT = Path(__file__).resolve().parents[2]


def test_same_seed_gives_identical_files(tmp_path):
    a = make_shapes(tmp_path / "a", 6, seed=7)
    b = make_shapes(tmp_path / "b", 6, seed=7)
    c = make_shapes(tmp_path / "c", 6, seed=8)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    for name in ("000000.png", "000005.png"):
        assert (tmp_path / "a/images" / name).read_bytes() == (tmp_path / "b/images" / name).read_bytes()


def test_default_set_is_easy_balanced_coco(tmp_path):
    path = make_shapes(tmp_path, 30, seed=0)
    data = json.loads(path.read_text())
    assert [c["name"] for c in data["categories"]] == ["circle", "square", "triangle"]
    assert [c["id"] for c in data["categories"]] == [1, 2, 3]
    assert {"info", "licenses"} <= data.keys()
    anns = data["annotations"]
    assert all(a["iscrowd"] == 0 for a in anns)
    counts = np.bincount([a["category_id"] for a in anns], minlength=4)[1:]
    assert counts.min() >= 0.5 * counts.max()
    per_image = np.bincount([a["image_id"] for a in anns], minlength=31)[1:]
    assert per_image.max() <= 4
    for ann in anns:
        x, y, w, h = ann["bbox"]
        assert 0 <= x and 0 <= y and x + w <= 128 and y + h <= 128
        assert 10 <= max(w, h) <= 60
    coco = COCO(str(path))
    assert len(coco.getImgIds()) == 30


def test_masks_match_pixels_and_areas(tmp_path):
    path = make_shapes(tmp_path, 8, seed=3, occlusion=True, crowd_fraction=1.0)
    coco = COCO(str(path))
    anns = coco.loadAnns(coco.getAnnIds())
    assert any(a["iscrowd"] for a in anns)
    assert all(isinstance(a["segmentation"], dict) for a in anns if a["iscrowd"])
    for ann in anns:
        mask = coco.annToMask(ann)
        assert mask.sum() == ann["area"] > 0
    # visible masks of one image never overlap (occluded parts are not annotated)
    for image_id in coco.getImgIds():
        masks = [coco.annToMask(a) for a in coco.loadAnns(coco.getAnnIds(imgIds=image_id))]
        if masks:
            assert np.sum(masks, axis=0).max() <= 1


def test_shapes_are_visible_against_background(tmp_path):
    path = make_shapes(tmp_path, 10, seed=5)
    data = json.loads(path.read_text())
    for ann in data["annotations"]:
        image = cv2.imread(str(tmp_path / "images" / f"{ann['image_id'] - 1:06d}.png")).astype(float)
        mask = annotation_mask(ann, 128, 128).astype(bool)
        ring = cv2.dilate(mask.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool) & ~mask
        assert np.linalg.norm(image[mask].mean(0) - image[ring].mean(0)) > 40


def test_cli_synth_and_bad_option(tmp_path):
    ok = subprocess.run([sys.executable, "-m", "datasets", "synth", "--out", str(tmp_path / "s"),
                         "--num-images", "3", "--seed", "1", "--format", "jpg"],
                        cwd=ROOT, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert len(list((tmp_path / "s/images").glob("*.jpg"))) == 3
    bad = subprocess.run([sys.executable, "-m", "datasets", "synth", "--out", str(tmp_path / "t"),
                          "--num-images", "3", "--min-size", "90", "--max-size", "20"],
                         cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 1
    assert "error: need 4 <= --min-size" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "t").exists()
