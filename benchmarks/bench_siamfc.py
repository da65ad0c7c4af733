"""Benchmark of the SiamFC tracker: frames/s on this machine and OTB success AUC / precision@20 on synthetic sequences.

Shapes sets (datasets.synthetic.shapes.make_shapes) for training and, apart, for test sequences
(datasets.synthetic.sequences: crossing targets with a same-class distractor). Trains configs/siamfc_tiny.yaml
with the one trainer (or takes --checkpoint), then tracks every test sequence; the untrained network is the
baseline. Prints one JSON line.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from datasets.synthetic.sequences import make_sequences
from datasets.synthetic.shapes import make_shapes
from detection.config import load_config
from detection.engine.trainer import Trainer
from detection.tasks import build_trainer
from detection.tracking.load import load_tracker
from detection.tracking.otb import evaluate_sequences, find_sequences
from detection.tracking.siamfc import SiamFCTracker
from detection.tracking.siamfc_net import build_siamfc_net

ROOT = Path(__file__).resolve().parents[1]


def train(work: Path, images: int, minutes: float, epochs: int, extra: tuple[str, ...] = ()) -> tuple[Path, float]:
    """configs/siamfc_tiny.yaml on a fresh shapes set (and its own val set) into work/run; (best.pt, seconds)."""
    started = time.perf_counter()
    train_run(work, images, minutes, epochs, extra)
    return work / "run" / "best.pt", time.perf_counter() - started


def train_run(work: Path, images: int, minutes: float, epochs: int, extra: tuple[str, ...] = ()) -> Trainer:
    """The training of `train` (config overrides `extra` added); the Trainer after fit, best.pt in work/run."""
    make_shapes(work / "train", images, seed=0)
    make_shapes(work / "val", 40, seed=500)
    cfg = load_config(ROOT / "configs" / "siamfc_tiny.yaml", [
        f"output_dir={work / 'run'}", f"train.max_minutes={minutes}", f"train.epochs={epochs}", "device=cpu",
        f"data.train.annotations={work / 'train' / 'annotations.json'}", f"data.train.images={work / 'train' / 'images'}",
        f"data.val.annotations={work / 'val' / 'annotations.json'}", f"data.val.images={work / 'val' / 'images'}",
        *extra])
    trainer = build_trainer(cfg, progress=False)
    trainer.fit()
    return trainer


def tracking_sequences(work: Path, count: int, frames: int, size: int) -> list:
    """`count` test sequences of `frames` frames (size x size) from a shapes set apart from training's."""
    test = make_shapes(work / "test", 60, seed=1000)
    make_sequences(test, work / "test" / "images", work / "seqs", count, seed=7, frames=frames, objects=3, size=size)
    return find_sequences(work / "seqs")


def scores(found: dict) -> dict:
    return {"success_auc": round(found["success_auc"], 4), "precision_20": round(found["precision_20"], 4),
            "mean_iou": round(found["mean_iou"], 4), "fps": round(found["fps"], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint", help="a SiamFC best.pt to measure (default: train configs/siamfc_tiny.yaml)")
    parser.add_argument("--train-images", type=int, default=400)
    parser.add_argument("--minutes", type=float, default=4.5, help="training time budget (train.max_minutes)")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--sequences", type=int, default=8)
    parser.add_argument("--frames", type=int, default=80)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1, help="torch threads while tracking (default 1)")
    parser.add_argument("--alexnet", action="store_true", help="also time the (untrained) siamfc_alexnet network")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        checkpoint, train_seconds = (Path(args.checkpoint), 0.0) if args.checkpoint else train(
            work, args.train_images, args.minutes, args.epochs)
        sequences = tracking_sequences(work, args.sequences, args.frames, args.size)
        torch.set_num_threads(args.threads)
        tracker = load_tracker(checkpoint)
        trained = evaluate_sequences(tracker, sequences)
        torch.manual_seed(0)
        untrained = evaluate_sequences(SiamFCTracker(build_siamfc_net(load_config(
            ROOT / "configs" / "siamfc_tiny.yaml").model)), sequences)
        result = {"benchmark": "siamfc", "backbone": "siamfc_tiny", "sequences": len(sequences),
                  "frames_per_sequence": args.frames, "frame_size": args.size, "threads": args.threads,
                  "train_seconds": round(train_seconds, 1), "trained": scores(trained),
                  "untrained": scores(untrained), "fps_goal": 25}
        if args.alexnet:
            alexnet = load_config(ROOT / "configs" / "siamfc_alexnet.yaml").model
            timed = evaluate_sequences(SiamFCTracker(build_siamfc_net(alexnet)), sequences[:2])
            result["siamfc_alexnet_untrained_fps"] = round(timed["fps"], 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
