"""SiamFC end to end: `python -m detection.train configs/siamfc_tiny.yaml` on a tiny shapes set (pairs, validation
on sequences made from the val split, best.pt by success_auc, resume), then `python -m detection.track --init`, the
service's `load_tracker`, and the answers to bad input: exit 1, one `error:` line, no output left behind."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from datasets.synthetic.shapes import make_shapes
from detection.cli.track import main as track_main
from detection.cli.train import main as train_main
from detection.config import load_config
from detection.engine.checkpoint import WrongModelKind, save_checkpoint
from detection.tracking.load import load_tracker
from tiny_run import DEMO, ROOT

TINY = ROOT / "configs" / "siamfc_tiny.yaml"


def train_args(out: Path, data: Path, *extra: str) -> list[str]:
    """configs/siamfc_tiny.yaml on `data`: 16 pairs (2 steps) an epoch, one 10-frame validation sequence."""
    split = {"annotations": data / "annotations.json", "images": data / "images"}
    return [str(TINY), f"output_dir={out}", "train.epochs=1", "train.max_minutes=0", "train.eval_every=1",
            "train.warmup_epochs=0", "train.log_every=1", "device=cpu", "model.siamfc.pairs.pairs_per_epoch=16",
            "model.siamfc.val.sequences=1", "model.siamfc.val.frames=10", "model.siamfc.val.size=128",
            "model.siamfc.val.objects=2", *(f"data.{s}.{k}={v}" for s in ("train", "val") for k, v in split.items()),
            *extra, "--no-progress"]


def one_error_line(capsys, *fragments: str) -> str:
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert all(fragment in errors[0] for fragment in fragments), (fragments, errors[0])
    return errors[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny SiamFC trained 1 epoch by the CLI, then resumed to 2: (run folder, data folder, summaries)."""
    root = tmp_path_factory.mktemp("siamfc")
    make_shapes(root / "data", 8, seed=6)
    out = root / "run"
    import contextlib
    import io

    summaries = []
    for extra in ((), ("train.epochs=2", "--resume")):
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            assert train_main(train_args(out, root / "data", *extra)) == 0
        summaries.append(json.loads(stdout.getvalue().strip().splitlines()[-1]))
    return out, root / "data", summaries


def test_train_writes_a_tracker_checkpoint_with_success_auc_and_resumes(trained):
    out, _, (first, resumed) = trained
    assert first["epochs"] == 1 and first["steps"] == 2 and 0 <= first["success_auc"] <= 1
    assert {"precision_20", "mean_iou", "val_fps"} <= first.keys()
    assert resumed["epochs"] == 2 and resumed["steps"] == 4
    assert {"config.yaml", "metrics.jsonl", "last.pt", "best.pt", "success_plot.png", "results.png"} <= {
        p.name for p in out.iterdir()}
    best, last = (torch.load(out / name, map_location="cpu", weights_only=True) for name in ("best.pt", "last.pt"))
    assert best["config"]["model"]["name"] == "siamfc" and "siamfc" in best["config"]["model"]
    assert "success_auc" in best["metrics"] and best["best_metric"] == max(first["success_auc"],
                                                                          resumed["success_auc"])
    assert "optimizer" in last and last["epoch"] == 2 and "optimizer" not in best
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in records if r["type"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2] and all("success_auc" in r and "loss_cls" in r for r in epochs)
    assert [r["step"] for r in records if r["type"] == "train"] == [1, 2, 3, 4]
    sequences = out / "val_sequences"
    assert len([p for p in sequences.iterdir() if (p / "groundtruth_rect.txt").is_file()]) == 1


def test_track_cli_follows_the_init_box_and_writes_otb_lines_and_a_video(trained, tmp_path, capsys):
    out, _, _ = trained
    sequence = out / "val_sequences" / "seq-0001"
    gt = np.loadtxt(sequence / "groundtruth_rect.txt", delimiter=",")
    init = ",".join(f"{v:g}" for v in gt[0])
    dest = tmp_path / "sot"
    code = track_main(["--checkpoint", str(out / "best.pt"), "--source", str(sequence / "seq-0001.mp4"),
                       "--init", init, "--out", str(dest), "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    assert "10 frames, 1 target" in capsys.readouterr().out
    assert sorted(p.name for p in dest.iterdir()) == ["seq-0001.mp4", "seq-0001.txt"]
    lines = (dest / "seq-0001.txt").read_text().splitlines()
    boxes = np.array([[float(v) for v in line.split(",")] for line in lines])
    assert boxes.shape == (10, 4) and np.allclose(boxes[0], gt[0]) and (boxes[:, 2:] > 0).all()
    capture = cv2.VideoCapture(str(dest / "seq-0001.mp4"))
    frames = 0
    while capture.read()[0]:
        frames += 1
    assert frames == 10


def test_load_tracker_for_the_service(trained):
    out, data, _ = trained
    tracker = load_tracker(out / "best.pt")
    image = cv2.cvtColor(cv2.imread(str(sorted((data / "images").iterdir())[0])), cv2.COLOR_BGR2RGB)
    tracker.init(image, np.array([40.0, 40.0, 70.0, 70.0]))
    box, score = tracker.update(image)
    assert box.shape == (4,) and np.isfinite(box).all() and 0 <= score <= 1
    with pytest.raises(WrongModelKind):
        load_tracker(detector_checkpoint(out.parent / "detector.pt"))


def detector_checkpoint(path: Path) -> Path:
    """A checkpoint whose config is the demo detector's (its weights are never read: the config already says)."""
    save_checkpoint(path, {"config": load_config(DEMO).to_dict(), "model": {}, "categories": []})
    return path


def test_bad_input(trained, tmp_path, capsys):
    out, data, _ = trained
    sequence = out / "val_sequences" / "seq-0001"
    video, ckpt = str(sequence / "seq-0001.mp4"), str(out / "best.pt")
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"\x00" * 64)
    empty = tmp_path / "empty"
    empty.mkdir()
    not_ours = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, not_ours)
    unknown = tmp_path / "unknown.pt"
    config = load_config(DEMO).to_dict()
    config["model"] = {**config["model"], "name": "bogus"}
    config["model"].pop("faster_rcnn")
    save_checkpoint(unknown, {"config": config, "model": {}, "categories": []})
    detector = str(detector_checkpoint(tmp_path / "detector.pt"))
    cases = [
        (["--source", str(fake), "--checkpoint", ckpt, "--init", "10,10,20,20"], ("fake.mp4", "not a readable video")),
        (["--source", str(empty), "--checkpoint", ckpt, "--init", "10,10,20,20"], ("empty", "no images")),
        (["--source", video, "--checkpoint", ckpt, "--init", "120,10,20,20"], ("init box", "not inside", "128x128")),
        (["--source", video, "--checkpoint", ckpt, "--init", "10,10,0,20"], ("--init", "zero size")),
        (["--source", video, "--checkpoint", ckpt, "--init", "10,10,20"], ("--init must be x,y,w,h",)),
        (["--source", video, "--checkpoint", str(not_ours), "--init", "10,10,20,20"], ("other.pt", "not a detpipe")),
        (["--source", video, "--checkpoint", str(unknown), "--init", "10,10,20,20"], ("unknown.pt", "bogus")),
        (["--source", video, "--checkpoint", str(unknown)], ("unknown.pt", "bogus")),
        (["--source", video, "--checkpoint", detector, "--init", "10,10,20,20"],
         ("--init needs a SiamFC tracker checkpoint", "detector.pt")),
        (["--source", video, "--checkpoint", ckpt], ("siamfc tracker checkpoint, not a detector", "--init")),
        (["--source", video, "--detections", str(tmp_path / "d.txt"), "--init", "1,1,5,5"], ("--init needs --checkpoint",)),
    ]
    for index, (args, fragments) in enumerate(cases):
        dest = tmp_path / f"out{index}"
        assert track_main([*args, "--out", str(dest), "--device", "cpu"]) == 1, args
        one_error_line(capsys, *fragments)
        assert not (dest.exists() and any(dest.iterdir())), args


def test_a_tracker_checkpoint_is_refused_by_the_detector_scripts(trained, tmp_path, capsys):
    from detection.cli.eval import main as eval_main
    from detection.cli.predict import main as predict_main

    out, data, _ = trained
    image = sorted((data / "images").iterdir())[0]
    assert predict_main(["--checkpoint", str(out / "best.pt"), "--source", str(image), "--out", str(tmp_path / "p")]) == 1
    one_error_line(capsys, "siamfc tracker checkpoint, not a detector")
    assert eval_main(["--checkpoint", str(out / "best.pt"), "--annotations", str(data / "annotations.json"),
                      "--images", str(data / "images")]) == 1
    one_error_line(capsys, "siamfc tracker checkpoint, not a detector")
