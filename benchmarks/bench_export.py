"""ONNX Runtime against PyTorch on the CPU: ms/image at batch 1 and 8 of every family's tiny config, post-processing
included, after checking the two agree; prints one JSON line per family.

Usage: OMP_NUM_THREADS=1 python benchmarks/bench_export.py [--families faster_rcnn,ssd,...] [--threads 1] [--runs 5]
The models keep their config's initial weights (seed 0): this measures speed, not accuracy. Their score threshold is
0, so every family runs its whole post-processing (top-k, NMS, 100 detections an image); fresh weights would pass
none (YOLO) or most (SSD) at the recipe's threshold. Fast R-CNN and R-CNN get the same 196 grid proposals per image on
both sides (making proposals, numpy either way, is not timed). Agreement is measured on the batch-8 images; fresh
weights score many boxes within float noise of each other, so a near-tie may be broken differently (see README).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from detection.config import load_config  # noqa: E402
from detection.deploy.check import compare, sample_images  # noqa: E402
from detection.deploy.exporter import export_detector  # noqa: E402
from detection.deploy.graphs import grid_rois, split_rois  # noqa: E402
from detection.deploy.runtime import load_onnx  # noqa: E402
from detection.models import build_detector  # noqa: E402

RECIPES = {"faster_rcnn": "faster_rcnn_tiny.yaml", "ssd": "ssd_tiny.yaml", "yolo": "yolo_tiny.yaml",
           "fast_rcnn": "fast_rcnn_tiny.yaml", "rcnn": "rcnn_tiny.yaml"}
CATEGORIES = [{"id": i, "name": name} for i, name in enumerate(["circle", "square", "triangle"], 1)]
BATCHES = (1, 8)


def build(family: str) -> torch.nn.Module:
    """The tiny recipe's model with fresh weights (seed 0) and score threshold 0, in eval mode."""
    torch.manual_seed(0)
    cfg = load_config(ROOT / "configs" / RECIPES[family], ["model.postprocess.score_threshold=0"])
    model_cfg = dataclasses.replace(cfg.model, pretrained="")
    return build_detector(model_cfg, len(CATEGORIES), cfg.data.input_size).eval()


def proposals_for(model: torch.nn.Module, batch: int, size: int) -> list[torch.Tensor] | None:
    """196 grid boxes per image (squares of 2/15 of the side on a 14 x 14 grid) for proposal families."""
    return split_rois(grid_rois(batch, size, cells=15), batch) if model.takes_proposals else None


@torch.no_grad()
def ms_per_image(call, images: torch.Tensor, proposals, runs: int) -> float:
    """Median wall time per image of `call(images, None, proposals)` after one warm-up call."""
    call(images, None, proposals)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call(images, None, proposals)
        times.append((time.perf_counter() - start) * 1000 / len(images))
    return round(statistics.median(times), 2)


def run_family(family: str, folder: Path, threads: int, runs: int) -> dict:
    model = build(family)
    row = {"benchmark": "export", "family": family, "recipe": RECIPES[family], "input_size": model.input_size,
           "threads": threads}
    return {**row, **export_timings(model, family, CATEGORIES, folder, threads, runs)}


def export_timings(model: torch.nn.Module, family: str, categories: list[dict], folder: Path, threads: int,
                   runs: int) -> dict:
    """Export `model` to ONNX (a graph per batch size), time PyTorch and onnxruntime on the same images and
    proposals at batch 1 and 8, and check they agree on the batch-8 images."""
    size, row = model.input_size, {}
    for batch in BATCHES:
        path = folder / f"{family}-b{batch}.onnx"
        start = time.perf_counter()
        meta = export_detector(model, family, categories, "onnx", path, batch=batch)
        row.setdefault("export_s", round(time.perf_counter() - start, 2))
        row["onnx_mb"], row["dynamic_batch"] = round(path.stat().st_size / 1e6, 2), meta.batch is None
        runtime = load_onnx(path, threads)
        images = sample_images(batch, size, seed=batch)
        proposals = proposals_for(model, batch, size)
        row[f"pytorch_ms_b{batch}"] = ms_per_image(model, images, proposals, runs)
        row[f"onnx_ms_b{batch}"] = ms_per_image(runtime, images, proposals, runs)
        row[f"speedup_b{batch}"] = round(row[f"pytorch_ms_b{batch}"] / row[f"onnx_ms_b{batch}"], 2)
        if batch == BATCHES[-1]:  # agreement on the batch-8 images (see detection/deploy/check.py)
            report = compare(model, runtime, images)
            row.update({key: report[key] for key in ("match", "detections", "mismatched_images", "tie_swaps")})
            row.update({key: float(f"{report[key]:.2g}") for key in ("max_box_diff", "max_score_diff")})
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default=",".join(RECIPES))
    parser.add_argument("--threads", type=int, default=1, help="torch and onnxruntime intra-op threads")
    parser.add_argument("--runs", type=int, default=5, help="timed calls per measurement (median)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        for family in args.families.split(","):
            print(json.dumps(run_family(family, Path(tmp), args.threads, args.runs)), flush=True)


if __name__ == "__main__":
    main()
