"""The R-CNN lineage on one synthetic split and one CPU budget: R-CNN, Fast R-CNN (RoI pool, SPP), Faster R-CNN.

Per family: train images/s, inference ms/image with the proposal time shown apart (batch 1 and 8), bbox_mAP and
bbox_mAP_50 on the held-out split; then Fast R-CNN's speed over R-CNN's, for training and testing. One JSON line.
Usage: python benchmarks/bench_rcnn.py [--minutes 4] [--images 500] [--families rcnn,fast_rcnn,fast_rcnn_spp,faster_rcnn]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_families import run_families  # noqa: E402
from detection.config import load_config  # noqa: E402
from detection.engine.trainer import Trainer  # noqa: E402
from detection.models.external_proposals import as_uint8  # noqa: E402
from detection.tasks import build_trainer  # noqa: E402

SIZE = 128
RECIPES = {"rcnn": "rcnn_tiny.yaml", "fast_rcnn": "fast_rcnn_tiny.yaml", "fast_rcnn_spp": "fast_rcnn_tiny.yaml",
           "faster_rcnn": "demo.yaml"}
SHARED = {"data.input_size": SIZE, "data.num_workers": 0, "train.epochs": 500, "train.batch_size": 8,
          "train.eval_every": 0, "train.plots": False, "data.augment.hflip": 0.5, "data.augment.scale_min": 0.8,
          "data.augment.scale_max": 1.2, "data.augment.color": 0.3}
FAMILY = {"rcnn": {}, "fast_rcnn": {}, "fast_rcnn_spp": {"model.fast_rcnn.pool": "spp"}, "faster_rcnn": {}}


def overrides(family: str, data: Path, out: Path, minutes: float) -> list[str]:
    items = {**SHARED, **FAMILY[family], "output_dir": out / family, "train.max_minutes": minutes,
             "data.proposal_cache": out / "proposal_cache",
             "data.train.annotations": data / "train.json", "data.train.images": data / "images",
             "data.val.annotations": data / "val.json", "data.val.images": data / "images"}
    return [f"{k}={v}" for k, v in items.items()]


def median_ms(work, count: int, runs: int = 5) -> float:
    """Median wall time of `work()` over `runs`, per one of its `count` images, in ms."""
    work()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append((time.perf_counter() - start) * 1000 / count)
    return round(statistics.median(times), 2)


@torch.no_grad()
def inference_times(trainer: Trainer, batch: int) -> dict:
    """ms/image on real val images: proposals alone, the model given them, and the whole (as eval runs it)."""
    model = trainer.inference_model.cpu().eval()
    batch = min(batch, len(trainer.val_set))  # a small --images split may hold fewer val images
    images = torch.stack([trainer.val_set[i][0] for i in range(batch)])
    if not model.takes_proposals:
        return {"model_ms": median_ms(lambda: model(images), batch), "proposal_ms": 0.0}
    proposer = model.proposal_input.proposer
    proposals = [torch.from_numpy(proposer(as_uint8(image))) for image in images]
    proposal_ms = median_ms(lambda: [proposer(as_uint8(image)) for image in images], batch, runs=2)
    return {"model_ms": median_ms(lambda: model(images, None, proposals), batch), "proposal_ms": proposal_ms}


def run_family(family: str, data: Path, out: Path, minutes: float) -> dict:
    cfg = load_config(ROOT / "configs" / RECIPES[family], overrides(family, data, out, minutes))
    start = time.perf_counter()
    trainer = build_trainer(cfg, progress=False)  # R-CNN, Fast R-CNN: computes (or reuses) the proposal cache
    setup_s = time.perf_counter() - start
    metrics = trainer.fit()
    b1, b8 = inference_times(trainer, 1), inference_times(trainer, 8)
    return {"family": family, "setup_s": round(setup_s, 1), "epochs": trainer.epoch,
            "train_images_per_s": round(trainer.step * cfg.train.batch_size / trainer.seconds, 1),
            "infer_model_ms_b1": b1["model_ms"], "infer_model_ms_b8": b8["model_ms"],
            "proposal_ms": b8["proposal_ms"], "infer_total_ms_b1": round(b1["model_ms"] + b1["proposal_ms"], 2),
            "bbox_mAP": metrics.get("bbox_mAP"), "bbox_mAP_50": metrics.get("bbox_mAP_50")}


def ratios(by: dict) -> dict:
    """Fast R-CNN's speed over R-CNN's: training images/s, and test time per image without and with proposals."""
    rcnn, fast = by["rcnn"], by["fast_rcnn"]
    return {"fast_over_rcnn_train": round(fast["train_images_per_s"] / rcnn["train_images_per_s"], 2),
            "fast_over_rcnn_test_model": round(rcnn["infer_model_ms_b1"] / fast["infer_model_ms_b1"], 2),
            "fast_over_rcnn_test_with_proposals": round(rcnn["infer_total_ms_b1"] / fast["infer_total_ms_b1"], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=4.0, help="training budget per family")
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--families", default="rcnn,fast_rcnn,fast_rcnn_spp,faster_rcnn")
    args = parser.parse_args()
    rows = run_families(args.families, args.images, args.minutes, run_family)
    by = {r["family"]: r for r in rows}
    summary = {"benchmark": "rcnn_lineage", "threads": torch.get_num_threads(), "budget_minutes": args.minutes,
               "input_size": SIZE, "rows": rows, **(ratios(by) if {"rcnn", "fast_rcnn"} <= set(by) else {})}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
