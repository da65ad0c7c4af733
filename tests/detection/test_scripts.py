"""The scripts end to end in tmp_path (train, eval, predict on images and a video), and their answers to
bad input: exit status 1, one `error:` line on stderr, no traceback, no output file left behind."""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from pycocotools.coco import COCO

from datasets.synthetic.shapes import make_shapes
from detection.cli.eval import main as eval_main
from detection.cli.predict import main as predict_main
from detection.cli.train import main as train_main
from detection.engine.checkpoint import save_checkpoint
from tiny_run import DEMO

METRIC_KEYS = {"bbox_mAP", "bbox_mAP_50", "bbox_mAP_75", "bbox_mAP_small", "bbox_mAP_medium", "bbox_mAP_large"}


def assert_one_error_line(capsys, *fragments: str) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, err
    assert "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    return errors[0]


def files_under(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if p.is_file()] if path.exists() else []


# ---- train -------------------------------------------------------------------------------------

def train_args(out: Path, data: Path, *extra: str) -> list[str]:
    return [str(DEMO), f"output_dir={out}", "train.epochs=1", "train.eval_every=0", "train.max_minutes=0",
            "data.input_size=64", "train.batch_size=4", "model.faster_rcnn.anchor_sizes=[8,16,32,64]",
            "train.warmup_epochs=0",
            f"data.train.annotations={data / 'annotations.json'}", f"data.train.images={data / 'images'}",
            f"data.val.annotations={data / 'annotations.json'}", f"data.val.images={data / 'images'}",
            *extra, "--no-progress"]


def test_train_cli_then_resume(tmp_path, capsys):
    data = tmp_path / "data"
    make_shapes(data, 6, seed=8, image_size=64, min_size=12, max_size=32)
    out = tmp_path / "run"
    assert train_main(train_args(out, data)) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["epochs"] == 1 and summary["steps"] == 2 and METRIC_KEYS <= summary.keys()
    assert {"config.yaml", "metrics.jsonl", "last.pt", "best.pt"} <= {p.name for p in out.iterdir()}
    assert train_main(train_args(out, data, "train.epochs=2", "--resume")) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["epochs"] == 2 and summary["steps"] == 4
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] == 2


def test_train_cli_missing_config(tmp_path, capsys):
    assert train_main([str(tmp_path / "nope.yaml"), f"output_dir={tmp_path / 'out'}"]) == 1
    assert_one_error_line(capsys, "nope.yaml")
    assert not (tmp_path / "out").exists()


def test_train_cli_unknown_override_key(tmp_path, capsys):
    assert train_main([str(DEMO), f"output_dir={tmp_path / 'out'}", "model.bakbone=resnet18"]) == 1
    assert_one_error_line(capsys, "model.bakbone")
    assert not (tmp_path / "out").exists()


def test_train_cli_missing_annotations(tmp_path, capsys):
    out = tmp_path / "out"
    assert train_main([str(DEMO), f"output_dir={out}", f"data.train.annotations={tmp_path / 'a.json'}"]) == 1
    assert_one_error_line(capsys, "a.json")
    assert not files_under(out)


@pytest.mark.parametrize("main, argv", [
    (train_main, []),
    (train_main, [str(DEMO), "--no-such-flag"]),
    (eval_main, ["--checkpoint", "x.pt"]),
    (predict_main, ["--checkpoint", "x.pt", "--source", "a.jpg", "--out", "o", "--score-threshold", "high"]),
], ids=["train", "train-flag", "eval", "predict"])
def test_cli_usage_mistake_prints_the_usage_and_exits_2(capsys, main, argv):
    assert main(argv, prog="detpipe cmd") == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: detpipe cmd")
    assert len([line for line in err.splitlines() if "error:" in line]) == 1, err  # argparse's own line
    assert "Traceback" not in err


def test_train_cli_overrides_after_option(tmp_path, capsys):
    code = train_main([str(DEMO), "--no-progress", "model.bakbone=x"])  # fails on the key, after parsing
    assert code == 1
    assert_one_error_line(capsys, "model.bakbone")


# ---- eval --------------------------------------------------------------------------------------

def test_eval_cli_writes_metrics(tmp_path, capsys, tiny_checkpoint, shapes_dir):
    out = tmp_path / "m" / "metrics.json"
    code = eval_main(["--checkpoint", str(tiny_checkpoint), "--annotations", str(shapes_dir / "annotations.json"),
                      "--images", str(shapes_dir / "images"), "--out", str(out), "--device", "cpu",
                      "--plots", str(tmp_path / "plots"), "--confusion-score", "0.01"])
    assert code == 0
    written = json.loads(out.read_text())
    metrics = {k: v for k, v in written.items() if k not in ("per_class", "confusion_matrix")}
    assert METRIC_KEYS <= metrics.keys() and len(metrics) == 12
    assert [r["category"] for r in written["per_class"]] == ["circle", "square", "triangle"]
    assert {"category", "category_id", "AP", "AP50", "AP75"} <= written["per_class"][0].keys()
    confusion = written["confusion_matrix"]
    assert confusion["labels"] == ["circle", "square", "triangle", "background"]
    assert confusion["score_threshold"] == 0.01 and confusion["iou_threshold"] == 0.5
    instances = sum(1 for a in json.loads((shapes_dir / "annotations.json").read_text())["annotations"]
                    if not a.get("iscrowd"))
    assert sum(sum(row) for row in confusion["counts"][:3]) == instances  # every object matched or missed
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["confusion_matrix.png", "pr_curves.png",
                                                                      "val_predictions.jpg"]
    # the same numbers as evaluating the checkpoint in-process
    from detection.data.coco import CocoDetection, collate
    from detection.data.transforms import build_transform
    from detection.engine.checkpoint import load_model
    from detection.engine.evaluator import evaluate

    loaded = load_model(tiny_checkpoint)
    model, cfg = loaded.model, loaded.config
    dataset = CocoDetection(shapes_dir / "annotations.json", shapes_dir / "images",
                            build_transform(cfg.data.input_size, train=False))
    loader = torch.utils.data.DataLoader(dataset, batch_size=8, collate_fn=collate)
    assert metrics == {k: round(v, 5) for k, v in evaluate(model, loader, torch.device("cpu")).items()}
    printed = capsys.readouterr().out
    assert "Average Precision" in printed
    table = printed[printed.index("category  images  instances"):].splitlines()
    assert [line.split()[0] for line in table[1:5]] == ["all", "circle", "square", "triangle"]
    assert float(table[1].split()[3]) == pytest.approx(metrics["bbox_mAP"], abs=5e-4)
    assert json.loads(printed.strip().splitlines()[-1]) == metrics


def test_eval_cli_missing_checkpoint(tmp_path, capsys, shapes_dir):
    out = tmp_path / "metrics.json"
    code = eval_main(["--checkpoint", str(tmp_path / "gone.pt"), "--annotations", str(shapes_dir / "annotations.json"),
                      "--images", str(shapes_dir / "images"), "--out", str(out)])
    assert code == 1
    assert_one_error_line(capsys, "gone.pt")
    assert not out.exists()


def test_eval_cli_other_categories(tmp_path, capsys, tiny_checkpoint, shapes_dir):
    """A split of some of the checkpoint's classes is scored on those (matched by name); a class the checkpoint
    does not know is one error line."""
    data = json.loads((shapes_dir / "annotations.json").read_text())
    data["categories"] = data["categories"][:2]
    data["annotations"] = [a for a in data["annotations"] if a["category_id"] in (1, 2)]
    path = tmp_path / "two.json"
    path.write_text(json.dumps(data))
    out = tmp_path / "metrics.json"
    args = ["--checkpoint", str(tiny_checkpoint), "--annotations", str(path), "--images", str(shapes_dir / "images"),
            "--out", str(out), "--device", "cpu"]
    assert eval_main(args) == 0
    assert [row["category"] for row in json.loads(out.read_text())["per_class"]] == [c["name"] for c in
                                                                                        data["categories"]]
    out.unlink()
    capsys.readouterr()
    data["categories"][1]["name"] = "hexagon"
    path.write_text(json.dumps(data))
    assert eval_main(args) == 1
    assert_one_error_line(capsys, "two.json", "['hexagon'] are not the checkpoint's")
    assert not out.exists()


# ---- predict -----------------------------------------------------------------------------------

def test_predict_cli_folder_with_annotations(tmp_path, capsys, tiny_checkpoint, shapes_dir):
    out = tmp_path / "pred"
    code = predict_main(["--checkpoint", str(tiny_checkpoint), "--source", str(shapes_dir / "images"),
                         "--out", str(out), "--annotations", str(shapes_dir / "annotations.json"),
                         "--score-threshold", "0.0", "--device", "cpu", "--batch-size", "5"])
    assert code == 0
    results = json.loads((out / "predictions.json").read_text())
    assert results, "a trained checkpoint with threshold 0 finds something"
    gt = COCO(str(shapes_dir / "annotations.json"))
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(results)  # valid COCO results against the ground truth
    assert len(dt.getAnnIds()) == len(results)
    by_name = {im["file_name"]: im["id"] for im in gt.dataset["images"]}
    for r in results:
        assert by_name[r["file_name"]] == r["image_id"]
        assert len(r["bbox"]) == 4 and 0 <= r["score"] <= 1 and r["category_id"] in gt.getCatIds()
    drawn = sorted(p.name for p in out.glob("*.png"))
    assert drawn == sorted(by_name)  # each drawn copy keeps its image's name and format
    assert cv2.imread(str(out / drawn[0])).shape == (512, 512, 3)  # 128 px images are drawn 4x enlarged


def test_predict_cli_single_image_threshold(tmp_path, tiny_checkpoint, shapes_image):
    out = tmp_path / "one"
    assert predict_main(["--checkpoint", str(tiny_checkpoint), "--source", str(shapes_image), "--out", str(out),
                         "--score-threshold", "0.5", "--no-draw", "--device", "cpu"]) == 0
    results = json.loads((out / "predictions.json").read_text())
    assert all(r["score"] >= 0.5 and r["image_id"] == 1 and r["file_name"] == shapes_image.name for r in results)
    assert [p.name for p in out.iterdir()] == ["predictions.json"]


def write_video(path: Path, frames: list[np.ndarray], fps: float = 5.0) -> None:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()


def test_predict_cli_video(tmp_path, tiny_checkpoint, shapes_dir):
    images = sorted((shapes_dir / "images").iterdir())[:5]
    video = tmp_path / "clip.mp4"
    write_video(video, [cv2.imread(str(p)) for p in images])
    out = tmp_path / "vid"
    assert predict_main(["--checkpoint", str(tiny_checkpoint), "--source", str(video), "--out", str(out),
                         "--score-threshold", "0.0", "--device", "cpu"]) == 0
    results = json.loads((out / "predictions.json").read_text())
    assert results and {r["image_id"] for r in results} <= set(range(1, 6))
    assert all(r["file_name"] == f"clip.mp4#{r['image_id']}" for r in results)
    capture = cv2.VideoCapture(str(out / "clip.mp4"))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    assert count == 5
    assert sorted(p.name for p in out.iterdir()) == ["clip.mp4", "predictions.json"]  # no temporary left


@pytest.fixture(scope="module")
def other_backbone_checkpoint(tiny_checkpoint, tmp_path_factory) -> Path:
    """A real checkpoint whose config now says resnet18: its weights cannot fit that model."""
    state = torch.load(tiny_checkpoint, map_location="cpu", weights_only=True)
    state["config"]["model"]["backbone"] = "resnet18"
    path = tmp_path_factory.mktemp("edited") / "edited.pt"
    save_checkpoint(path, {k: v for k, v in state.items() if k not in ("format", "format_version")})
    return path


def test_predict_bad_checkpoints(tmp_path, capsys, shapes_image, other_backbone_checkpoint):
    import torchvision

    plain = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), plain)
    cases = [(tmp_path / "missing.pt", "missing.pt"), (plain, "resnet18.pth"),
             (other_backbone_checkpoint, "edited.pt")]
    for index, (checkpoint, fragment) in enumerate(cases):
        out = tmp_path / f"out{index}"
        code = predict_main(["--checkpoint", str(checkpoint), "--source", str(shapes_image), "--out", str(out),
                             "--device", "cpu"])
        assert code == 1, checkpoint
        assert_one_error_line(capsys, fragment)
        assert not files_under(out)


def test_eval_checkpoint_of_other_backbone(tmp_path, capsys, shapes_dir, other_backbone_checkpoint):
    out = tmp_path / "metrics.json"
    code = eval_main(["--checkpoint", str(other_backbone_checkpoint), "--annotations",
                      str(shapes_dir / "annotations.json"), "--images", str(shapes_dir / "images"),
                      "--out", str(out), "--device", "cpu"])
    assert code == 1
    assert_one_error_line(capsys, "edited.pt", "weights do not fit")
    assert not out.exists()


def test_predict_bad_sources(tmp_path, capsys, tiny_checkpoint, shapes_dir):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    fake_video = tmp_path / "fake.mp4"
    fake_video.write_bytes(b"\x00" * 1000)
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    (empty_dir / "readme.md").write_text("no images here")
    broken_dir = tmp_path / "broken"
    broken_dir.mkdir()
    (broken_dir / "bad.png").write_bytes(b"not a png")
    cases = [
        ([str(text)], "notes.txt"),
        ([str(fake_video)], "fake.mp4"),
        ([str(tmp_path / "absent.jpg")], "absent.jpg"),
        ([str(empty_dir)], "empty"),
        ([str(broken_dir)], "bad.png"),
        ([str(shapes_dir / "images"), "--annotations", str(tmp_path / "no.json")], "no.json"),
        ([str(shapes_dir / "images"), "--score-threshold", "2"], "--score-threshold"),
        ([str(shapes_dir / "images"), "--max-detections", "0"], "--max-detections"),
    ]
    for index, (source, fragment) in enumerate(cases):
        out = tmp_path / f"out{index}"
        code = predict_main(["--checkpoint", str(tiny_checkpoint), "--out", str(out), "--device", "cpu",
                             "--source", *source])
        assert code == 1, source
        assert_one_error_line(capsys, fragment)
        assert not files_under(out), (source, files_under(out))


def test_predict_annotations_without_the_image(tmp_path, capsys, tiny_checkpoint, shapes_dir, shapes_image):
    data = json.loads((shapes_dir / "annotations.json").read_text())
    data["images"] = [im for im in data["images"] if im["file_name"] != shapes_image.name]
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] in {im["id"] for im in data["images"]}]
    path = tmp_path / "fewer.json"
    path.write_text(json.dumps(data))
    out = tmp_path / "out"
    code = predict_main(["--checkpoint", str(tiny_checkpoint), "--source", str(shapes_image), "--out", str(out),
                         "--annotations", str(path), "--device", "cpu"])
    assert code == 1
    assert_one_error_line(capsys, shapes_image.name, "fewer.json")
    assert not files_under(out)


@pytest.mark.parametrize("which", ["predict", "eval"])
def test_batch_size_zero_is_user_error(tmp_path, capsys, tiny_checkpoint, shapes_dir, which):
    out = tmp_path / "out"
    if which == "predict":
        argv = ["--checkpoint", str(tiny_checkpoint), "--source", str(shapes_dir / "images"), "--out", str(out),
                "--device", "cpu", "--batch-size", "0"]
        run = predict_main
    else:
        argv = ["--checkpoint", str(tiny_checkpoint), "--annotations", str(shapes_dir / "annotations.json"),
                "--images", str(shapes_dir / "images"), "--out", str(out / "m.json"), "--device", "cpu",
                "--batch-size", "0"]
        run = eval_main
    try:
        code = run(argv)
    except ValueError:
        code = "traceback"
    assert code == 1
    assert_one_error_line(capsys, "batch-size")
    assert not files_under(out)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_train_cli_cuda_without_gpu(tmp_path, capsys):
    data = tmp_path / "data"
    make_shapes(data, 2, seed=1, image_size=64, min_size=12, max_size=32)
    assert train_main(train_args(tmp_path / "run", data, "device=cuda")) == 1
    assert_one_error_line(capsys, "cuda")


def test_predict_folder_with_a_later_unreadable_image_leaves_nothing(tmp_path, capsys, tiny_checkpoint,
                                                                     shapes_image):
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.png").write_bytes(shapes_image.read_bytes())
    (source / "b.png").write_bytes(b"junk")
    out = tmp_path / "out"
    code = predict_main(["--checkpoint", str(tiny_checkpoint), "--source", str(source), "--out", str(out),
                         "--device", "cpu", "--batch-size", "1"])
    assert code == 1
    assert_one_error_line(capsys, "b.png")
    assert not (out / "predictions.json").exists()
    assert not files_under(out), files_under(out)


def test_predict_same_name_in_subfolders_keeps_both(tmp_path, tiny_checkpoint, shapes_dir):
    first, second = sorted((shapes_dir / "images").iterdir())[:2]
    source = tmp_path / "src"
    for sub, image in (("s1", first), ("s2", second)):
        (source / sub).mkdir(parents=True)
        (source / sub / "x.png").write_bytes(image.read_bytes())
    out = tmp_path / "out"
    assert predict_main(["--checkpoint", str(tiny_checkpoint), "--source", str(source), "--out", str(out),
                         "--device", "cpu", "--score-threshold", "0"]) == 0
    results = json.loads((out / "predictions.json").read_text())
    names = {r["image_id"]: r["file_name"] for r in results}
    assert len(set(names.values())) == 2, names  # each result says which image it belongs to
    assert len(list(out.rglob("*.png"))) == 2  # both drawn copies kept


def test_predict_same_stem_other_format_keeps_both(tmp_path, tiny_checkpoint, shapes_dir):
    """Defect 5: a.png and a.jpg in one folder were both drawn to a.jpg."""
    first, second = sorted((shapes_dir / "images").iterdir())[:2]
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.png").write_bytes(first.read_bytes())
    cv2.imwrite(str(source / "a.jpg"), cv2.imread(str(second)))
    out = tmp_path / "out"
    assert predict_main(["--checkpoint", str(tiny_checkpoint), "--source", str(source), "--out", str(out),
                         "--device", "cpu", "--score-threshold", "0"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.jpg", "a.png", "predictions.json"]
    assert cv2.imread(str(out / "a.png")).shape == cv2.imread(str(out / "a.jpg")).shape == (512, 512, 3)
    results = json.loads((out / "predictions.json").read_text())
    assert {r["file_name"] for r in results} == {"a.png", "a.jpg"}


def test_predict_out_into_the_source_folder_is_refused(tmp_path, capsys, tiny_checkpoint, shapes_image):
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.png").write_bytes(shapes_image.read_bytes())
    code = predict_main(["--checkpoint", str(tiny_checkpoint), "--source", str(source), "--out", str(source),
                         "--device", "cpu"])
    assert code == 1
    assert_one_error_line(capsys, "would overwrite the input")
    assert (source / "a.png").read_bytes() == shapes_image.read_bytes()
    assert sorted(p.name for p in source.iterdir()) == ["a.png"]


def test_train_output_to_a_file_has_no_progress_frames(tmp_path):
    """Defect 7: progress bars written to a log put carriage-return frames in it; off a terminal, one line per epoch."""
    import subprocess
    import sys

    data = tmp_path / "data"
    make_shapes(data, 6, seed=8, image_size=64, min_size=12, max_size=32)
    args = [a for a in train_args(tmp_path / "run", data, "train.epochs=2") if a != "--no-progress"]
    result = subprocess.run([sys.executable, "-m", "detection.train", *args], capture_output=True,
                            cwd=Path(__file__).resolve().parents[2], timeout=300)  # bytes: text mode hides \r
    assert result.returncode == 0, result.stderr
    assert b"\r" not in result.stdout + result.stderr
    epoch_lines = [line for line in result.stdout.decode().splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in epoch_lines] == ["1/2", "2/2"]


def test_predict_outputs_honour_the_umask(tmp_path, tiny_checkpoint, shapes_dir):
    """Defect 6: predictions.json, drawn images and videos were written 0600."""
    import os
    import stat

    first = sorted((shapes_dir / "images").iterdir())[0]
    write_video(tmp_path / "clip.mp4", [cv2.imread(str(first))] * 3)
    old = os.umask(0o022)
    try:
        for source, out in ((first, tmp_path / "img"), (tmp_path / "clip.mp4", tmp_path / "vid")):
            assert predict_main(["--checkpoint", str(tiny_checkpoint), "--source", str(source), "--out", str(out),
                                 "--device", "cpu"]) == 0
    finally:
        os.umask(old)
    written = files_under(tmp_path / "img") + files_under(tmp_path / "vid")
    assert sorted(p.name for p in written) == sorted([first.name, "predictions.json", "clip.mp4", "predictions.json"])
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o644 for p in written), [(p, oct(p.stat().st_mode)) for p in written]


def test_train_cli_maps_of_unequal_channels_without_a_neck(tmp_path, capsys):
    """Defect 1: model.neck=none (was model.fpn=false) with two maps built, then died with a traceback."""
    data = tmp_path / "data"
    make_shapes(data, 4, seed=8, image_size=64, min_size=12, max_size=32)
    code = train_main(train_args(tmp_path / "run", data, "model.neck=none", "model.features=[c4,c5]",
                                 "model.faster_rcnn.anchor_sizes=[8,16]"))
    assert code == 1
    assert_one_error_line(capsys, "equal channels", "c4: 96, c5: 128", "model.neck=fpn")
    assert not (tmp_path / "run" / "last.pt").exists()
