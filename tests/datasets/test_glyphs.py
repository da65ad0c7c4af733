"""Tests of the synthetic glyphs generator: COCO validity, tight boxes, sizes, determinism, CLI, no torch."""
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from datasets.checks.validate import validate_coco
from datasets.core.errors import UserError
from datasets.synthetic.glyphs import FONTS, GlyphOptions, glyph_alpha, make_backdrop, make_glyphs, place_glyphs

ROOT = Path(__file__).resolve().parents[2]
SMALL = {"image_size": 128, "min_size": 10, "max_size": 40, "max_objects": 6}


def test_ten_digit_categories_and_a_valid_coco_file(tmp_path):
    path = make_glyphs(tmp_path, 8, seed=0, **SMALL)
    data = json.loads(path.read_text())
    assert [c["name"] for c in data["categories"]] == [str(d) for d in range(10)]
    assert [c["id"] for c in data["categories"]] == list(range(1, 11))
    assert data["info"]["options"]["max_angle"] == 30.0 and data["info"]["seed"] == 0
    assert validate_coco(data, tmp_path / "images") == []
    per_image = np.bincount([a["image_id"] for a in data["annotations"]], minlength=9)[1:]
    assert per_image.min() >= 2 and per_image.max() <= 6
    assert all(a["iscrowd"] == 0 for a in data["annotations"])


def test_boxes_are_the_tight_boxes_of_the_masks_inside_the_image(tmp_path):
    path = make_glyphs(tmp_path, 6, seed=1, **SMALL)
    coco = COCO(str(path))
    anns = coco.loadAnns(coco.getAnnIds())
    assert len(anns) >= 12
    for ann in anns:
        mask = coco.annToMask(ann)
        ys, xs = np.nonzero(mask)
        x, y, w, h = ann["bbox"]
        assert [x, y, w, h] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
        assert 0 <= x and 0 <= y and x + w <= 128 and y + h <= 128 and w >= 1 and h >= 3
        assert mask.sum() == ann["area"]
    for image_id in coco.getImgIds():  # glyphs never hide each other: their masks do not overlap
        masks = [coco.annToMask(a) for a in coco.loadAnns(coco.getAnnIds(imgIds=image_id))]
        assert np.sum(masks, axis=0).max() <= 1


def test_glyph_masks_hold_every_pixel_they_change_and_stand_out():
    # without the final blur/noise/JPEG, pasting changes only pixels of the glyphs' masks (digits and
    # distractors), and the opaque part of each differs from its background
    options = GlyphOptions(image_size=160, max_size=48, degrade=0.0)
    distractors = 0
    for seed in range(6):
        rng = np.random.default_rng(seed)
        backdrop = make_backdrop(rng, options)
        image = backdrop.copy()
        glyphs = place_glyphs(rng, image, options)
        distractors += sum(g.label is None for g in glyphs)
        changed = (image != backdrop).any(axis=-1)
        masks = [g.full_mask(160) for g in glyphs]
        assert not (changed & ~np.any(masks, axis=0)).any()
        for glyph, mask in zip(glyphs, masks):
            h, w = glyph.alpha.shape
            assert changed[glyph.y : glyph.y + h, glyph.x : glyph.x + w][glyph.alpha == 1].all()
            ys, xs = np.nonzero(mask)
            assert list(glyph.box()) == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
            ring = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool) & ~mask
            assert np.linalg.norm(image[mask].astype(float).mean(0) - image[ring].astype(float).mean(0)) > 40
    assert distractors > 0


@pytest.mark.parametrize("font", FONTS)
def test_every_font_draws_every_digit_at_the_asked_height(font):
    for italic in (0, cv2.FONT_ITALIC):
        for digit in "0123456789":
            for height in (12, 40):
                alpha = glyph_alpha(digit, font | italic, height, 2, 0.0)
                assert abs(alpha.shape[0] - height) <= 2, (font, italic, digit, alpha.shape)
                assert alpha.max() == 1.0 and (alpha > 0)[[0, -1]].any(axis=1).all()  # cropped to the ink


def test_size_options_are_honoured_upright(tmp_path):
    path = make_glyphs(tmp_path, 6, seed=2, image_size=128, min_size=20, max_size=30, max_angle=0)
    heights = [a["bbox"][3] for a in json.loads(path.read_text())["annotations"]]
    assert heights and 18 <= min(heights) and max(heights) <= 32


def test_same_seed_gives_identical_files(tmp_path):
    a = make_glyphs(tmp_path / "a", 4, seed=5, **SMALL)
    b = make_glyphs(tmp_path / "b", 4, seed=5, **SMALL)
    c = make_glyphs(tmp_path / "c", 4, seed=6, **SMALL)
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()
    for name in ("000000.png", "000003.png"):
        assert (tmp_path / "a/images" / name).read_bytes() == (tmp_path / "b/images" / name).read_bytes()


def test_bad_options_are_user_errors(tmp_path):
    for opts, message in (({"max_angle": 90}, "--max-angle"), ({"min_size": 40, "max_size": 20}, "--min-size"),
                          ({"min_objects": 5, "max_objects": 3}, "--min-objects"), ({"colour": 1}, "unknown")):
        with pytest.raises(UserError, match=message):
            make_glyphs(tmp_path / "x", 1, seed=0, **opts)
    assert not (tmp_path / "x").exists()


def test_cli_writes_the_set_and_help_works(tmp_path):
    run = subprocess.run([sys.executable, "-m", "datasets", "glyphs", "--out", str(tmp_path / "g"), "--num-images",
                          "3", "--seed", "1", "--image-size", "96", "--max-size", "30", "--max-objects", "4",
                          "--format", "jpg"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert len(list((tmp_path / "g/images").glob("*.jpg"))) == 3
    assert json.loads((tmp_path / "g/annotations.json").read_text())["info"]["options"]["image_size"] == 96
    bad = subprocess.run([sys.executable, "-m", "datasets", "glyphs", "--out", str(tmp_path / "h"), "--num-images",
                          "2", "--max-angle", "75"], cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 1 and "error: --max-angle" in bad.stderr and "Traceback" not in bad.stderr
    helped = subprocess.run([sys.executable, "-m", "detpipe", "data", "glyphs", "--help"], cwd=ROOT,
                            capture_output=True, text=True)
    assert helped.returncode == 0 and "--max-angle" in helped.stdout


def test_glyphs_load_no_torch(tmp_path):
    probe = ("import sys\nfrom datasets.synthetic.glyphs import make_glyphs\n"
             f"make_glyphs({str(tmp_path)!r}, 1, seed=0, image_size=96, max_size=30)\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision')))")
    run = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"
