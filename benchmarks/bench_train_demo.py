"""Train configs/demo.yaml on synthetic shapes for a fixed number of minutes on this machine; print one JSON line.

Also times torchvision's own fasterrcnn_mobilenet_v3_large_fpn on the same batches, as a same-process peer.
Usage: python benchmarks/bench_train_demo.py [--minutes 5] [--images 500] [--peer-steps 10]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
import torchvision

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from datasets.cli import main as datasets_main  # noqa: E402
from datasets.synthetic.shapes import make_shapes  # noqa: E402
from detection.config import load_config  # noqa: E402
from detection.engine.trainer import Trainer  # noqa: E402
from detection.tasks import build_trainer  # noqa: E402


def build_data(tmp: Path, images: int) -> Path:
    make_shapes(tmp, images, seed=0)
    datasets_main(["split", str(tmp / "annotations.json"), "--out", str(tmp), "--val", "0.2", "--seed", "0"])
    return tmp


def peer_images_per_s(trainer: Trainer, steps: int) -> float:
    """Training throughput of torchvision's fasterrcnn_mobilenet_v3_large_fpn (random init), same batches."""
    model = torchvision.models.detection.fasterrcnn_mobilenet_v3_large_fpn(
        weights=None, weights_backbone=None, num_classes=len(trainer.categories) + 1,
        min_size=trainer.cfg.data.input_size, max_size=trainer.cfg.data.input_size)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loader = trainer.loader(trainer.train_set, True, 0)
    seen, start = 0, None
    for step, (images, targets) in enumerate(loader):
        if step == 1:  # skip the first (warm-up) step
            seen, start = 0, time.time()
        losses = model(list(images), [{"boxes": t["boxes"], "labels": t["labels"]} for t in targets])
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()
        seen += len(images)
        if step >= steps:
            break
    return seen / (time.time() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--peer-steps", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = build_data(Path(tmp) / "shapes", args.images)
        cfg = load_config(ROOT / "configs" / "demo.yaml", [
            f"output_dir={tmp}/run", f"train.max_minutes={args.minutes}",
            f"data.train.annotations={data}/train.json", f"data.train.images={data}/images",
            f"data.val.annotations={data}/val.json", f"data.val.images={data}/images"])
        trainer = build_trainer(cfg, progress=False)
        start = time.time()
        metrics = trainer.fit()
        seconds = time.time() - start
        ours = trainer.step * cfg.train.batch_size / trainer.seconds
        peer = peer_images_per_s(trainer, args.peer_steps) if args.peer_steps > 0 else float("nan")
    print(json.dumps({
        "benchmark": "train_demo", "device": str(trainer.device), "threads": torch.get_num_threads(),
        "budget_minutes": args.minutes, "seconds": round(seconds, 1), "epochs": trainer.epoch,
        "images_per_s": round(ours, 2), "peer_torchvision_mobilenet_v3_fpn_images_per_s": round(peer, 2),
        "ratio_to_peer": round(ours / peer, 2), "bbox_mAP": metrics.get("bbox_mAP"),
        "bbox_mAP_50": metrics.get("bbox_mAP_50"),
    }))


if __name__ == "__main__":
    main()
