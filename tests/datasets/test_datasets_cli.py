"""Every command: bad input ends with `error: ...` and exit 1 (no traceback, no output), a usage error with the
usage and exit 2 (argparse); stats, draw, tile."""
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from datasets.cli import main
from datasets.core.coco import annotation_mask

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "datasets", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("make_args,message", [
    (lambda t, p, i: ["validate", t / "broken.json"], "not valid JSON (line 1"),
    (lambda t, p, i: ["convert", "--from", "yolo", "--src", t / "labels", "--images", i, "--out", t / "o.json"],
     "000002.txt:2: class '7' is not an index"),
    (lambda t, p, i: ["split", p, "--out", t / "o", "--val", "1.5"], "--val"),
    (lambda t, p, i: ["merge", p, t / "missing.json", "--out", t / "o.json"], "missing.json: no such file"),
    (lambda t, p, i: ["tile", p, "--images", t / "nothing", "--size", "64", "--out", t / "o"], "no such folder"),
    (lambda t, p, i: ["stats", t / "list.json"], "expected a JSON object"),
    (lambda t, p, i: ["draw", p, "--images", i, "--out", i], "is also an input"),
    (lambda t, p, i: ["export", "--to", "voc", "--annotations", t / "dangling.json", "--images", i, "--out", t / "o"],
     "annotation 1: category_id 9 is not a category"),
    (lambda t, p, i: ["convert", "--from", "csv", "--src", t / "bad.csv", "--images", i, "--out", t / "o.json"],
     "bad.csv:3: x1, y1, x2, y2 must be numbers"),
    (lambda t, p, i: ["convert", "--from", "voc", "--src", t / "bad.xml", "--images", i, "--out", t / "o.json"],
     "not valid XML"),
    (lambda t, p, i: ["from-masks", "--images", i, "--masks", t / "labels", "--out", t / "labels/classes.txt",
                      "--categories", t / "labels/classes.txt"], "is also an input"),
    (lambda t, p, i: ["synth", "--out", t / "o", "--num-images", "0"], "--num-images must be at least 1"),
    (lambda t, p, i: ["export", "--to", "yolo", "--split", f"training={p}", "--images", i, "--out", t / "o"],
     "--split training="),
    (lambda t, p, i: ["export", "--to", "yolo", "--split", f"train={p}", "--split", f"val={p}", "--images", i,
                      "--out", t / "o"], "is also in the train split"),
    (lambda t, p, i: ["export", "--to", "voc", "--annotations", p, "--images", i, "--out", t / "o", "--segments"],
     "--segments applies to --to yolo only"),
    (lambda t, p, i: ["export", "--to", "yolo", "--annotations", p, "--images", t / "labels", "--out", t / "o"],
     "image 000000.png not found in"),
    (lambda t, p, i: ["convert", "--from", "voc", "--src", t / "bad.xml", "--out", t / "o.json"],
     "--from voc needs --images"),
    (lambda t, p, i: ["convert", "--from", "yolo", "--src", t / "labels", "--images", i, "--out", t / "o.json",
                      "--difficult", "skip"], "--difficult applies to --from voc only"),
    (lambda t, p, i: ["convert", "--from", "yolo", "--src", t / "labels", "--out", t / "o.json"],
     "no data.yaml and no images/ folder"),
])
def test_bad_input_is_one_line_and_status_1(shapes, tmp_path, capsys, make_args, message):
    path, images, data = shapes
    (tmp_path / "broken.json").write_text("{oops")
    (tmp_path / "list.json").write_text("[]")
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels/classes.txt").write_text("a\nb\n")
    (tmp_path / "labels/000002.txt").write_text("0 0.5 0.5 0.1 0.1\n7 0.5 0.5 0.1 0.1\n")
    data["annotations"][0]["category_id"] = 9
    (tmp_path / "dangling.json").write_text(json.dumps(data))
    (tmp_path / "bad.csv").write_text("file_name,x1,y1,x2,y2,category\n000000.png,1,1,5,5,a\n000000.png,x,1,5,5,a\n")
    (tmp_path / "bad.xml").write_text("<annotation><object></annotation>")
    before = json.loads(path.read_text())
    assert main([str(a) for a in make_args(tmp_path, path, images)]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "o").exists() and not (tmp_path / "o.json").exists()
    assert json.loads(path.read_text()) == before


@pytest.mark.parametrize("args, message", [
    (["split", "{p}"], "the following arguments are required: --out"),
    (["split", "{p}", "--out", "o", "--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    (["split", "{p}", "--out", "o", "--val", "lots"], "argument --val: invalid float value"),
    (["nosuchcommand"], "invalid choice: 'nosuchcommand'"),
])
def test_usage_errors_print_the_usage_and_exit_2(shapes, tmp_path, capsys, args, message):
    path = shapes[0]
    assert main([a.format(p=path) for a in args], prog="detpipe data") == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: detpipe data") and message in err and "Traceback" not in err
    assert not (Path.cwd() / "o").exists()


def test_subprocess_errors_have_no_traceback(tmp_path):
    (tmp_path / "x.json").write_text('{"images": [], "annotations": {}, "categories": []}')
    for args in (["validate", tmp_path / "x.json"], ["stats", tmp_path / "nope.json"],
                 ["convert", "--from", "yolo", "--src", tmp_path, "--images", tmp_path, "--out", tmp_path / "o.json"]):
        result = run_cli(*args)
        assert result.returncode == 1, (args, result.stderr)
        assert "error:" in result.stderr and "Traceback" not in result.stderr
    wrong = run_cli("nosuchcommand")
    assert wrong.returncode == 2 and wrong.stderr.startswith("usage: python -m datasets")
    assert "field 'annotations' is missing or not a list" in run_cli("validate", tmp_path / "x.json").stderr


def test_help_for_every_command():
    for command in ("synth", "glyphs", "from-masks", "convert", "export", "validate", "split", "merge", "tile",
                    "stats", "draw"):
        assert main([command, "--help"]) == 0


def test_stats_numbers_and_plot(shapes, tmp_path, capsys):
    path, _, data = shapes
    assert main(["stats", str(path), "--json", "--plot", str(tmp_path / "stats.png")]) == 0
    stats = json.loads(capsys.readouterr().out.splitlines()[0])
    assert stats["images"] == 10 and stats["annotations"] == len(data["annotations"])
    assert sum(stats["per_class"].values()) == stats["annotations"]
    assert sum(stats["box_sizes"].values()) == stats["annotations"]
    plot = cv2.imread(str(tmp_path / "stats.png"))
    assert plot.shape[0] > 600 and plot.shape[1] > 800 and plot.std() > 10


def test_draw_marks_objects(shapes, tmp_path):
    path, images, data = shapes
    assert main(["draw", str(path), "--images", str(images), "--out", str(tmp_path / "drawn"), "--limit", "3",
                 "--format", "png"]) == 0
    drawn = sorted((tmp_path / "drawn").glob("*.png"))
    assert [p.name for p in drawn] == ["000000.png", "000001.png", "000002.png"]
    raw = cv2.resize(cv2.imread(str(images / "000001.png")), (512, 512), interpolation=cv2.INTER_NEAREST)
    out = cv2.imread(str(drawn[1]))
    changed = np.abs(out.astype(int) - raw.astype(int)).sum(axis=2) > 30
    ann = next(a for a in data["annotations"] if a["image_id"] == 2)
    mask = cv2.resize(annotation_mask(ann, 128, 128), (512, 512), interpolation=cv2.INTER_NEAREST).astype(bool)
    assert changed[mask].mean() > 0.5 and changed[~mask].mean() < 0.2


def test_tile_crops_masks_with_the_tile(tmp_path):
    from datasets.synthetic.shapes import make_shapes
    path = make_shapes(tmp_path / "s", 4, seed=2, occlusion=True, crowd_fraction=1.0)
    assert main(["tile", str(path), "--images", str(tmp_path / "s/images"), "--size", "64", "--overlap", "0.5",
                 "--out", str(tmp_path / "t")]) == 0
    tiles = json.loads((tmp_path / "t/annotations.json").read_text())
    assert len(tiles["images"]) == 4 * 9 and any(a["iscrowd"] for a in tiles["annotations"])
    for ann in tiles["annotations"]:
        mask = annotation_mask(ann, 64, 64)
        x, y, w, h = ann["bbox"]
        assert mask.sum() == ann["area"] > 0
        assert mask[:, : int(x)].sum() == 0 and mask[: int(y)].sum() == 0
        assert mask[:, int(np.ceil(x + w)) :].sum() == 0 and mask[int(np.ceil(y + h)) :].sum() == 0
        if ann["iscrowd"]:
            assert mask_utils.area(ann["segmentation"]) == ann["area"]
