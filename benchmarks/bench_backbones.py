"""CPU cost of the small backbones: params, GFLOPs and ms per forward of each backbone alone and of a YOLO on it
(PAN neck, 64 channels, maps c3..c5), at batch 1 and 8, as trained and with BatchNorm fused; one JSON line each.

Usage: OMP_NUM_THREADS=2 python benchmarks/bench_backbones.py [--backbones tiny,csp_tiny] [--threads 2] [--runs 7]
GFLOPs: 2 per multiply-add (torch's FlopCounterMode) of one image at --size. ms: the median and the least of --runs
timed calls per model, the models taking turns (so a busy spell of a shared machine hits them alike). `yolo` times
the network alone (normalise, backbone, neck, head convs: `head_outputs`), not post-processing, whose cost depends
on how many boxes fresh weights happen to score.
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from detection.backbones import build_backbone  # noqa: E402
from detection.config import config_from_dict  # noqa: E402
from detection.models import build_detector  # noqa: E402
from detection.utils.fuse import fuse_conv_bn  # noqa: E402


class YoloNet(nn.Module):
    """A YOLO (PAN 64, c3..c5, 80 classes) without post-processing: forward -> raw outputs per level."""

    def __init__(self, backbone: str, size: int) -> None:
        super().__init__()
        cfg = config_from_dict({"data": {"input_size": size}, "model": {
            "name": "yolo", "backbone": backbone, "features": ["c3", "c4", "c5"], "neck": "pan", "neck_channels": 64}})
        self.detector = build_detector(cfg.model, num_classes=80, input_size=size)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        return self.detector.head_outputs(images)


def gflops(model: nn.Module, size: int) -> float:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.rand(1, 3, size, size))
    return counter.get_total_flops() / 1e9


def timings(models: dict[str, nn.Module], batch: int, size: int, runs: int) -> dict[str, list[float]]:
    """ms of `runs` calls of each model on one [batch, 3, size, size] input, the models taking turns."""
    images = torch.rand(batch, 3, size, size)
    times: dict[str, list[float]] = {name: [] for name in models}
    with torch.no_grad():
        for model in models.values():
            model(images)  # warm-up
        for _ in range(runs):
            for name, model in models.items():
                start = time.perf_counter()
                model(images)
                times[name].append((time.perf_counter() - start) * 1000)
    return times


def build_all(backbones: list[str], size: int) -> dict[tuple[str, str, bool], nn.Module]:
    """(backbone, "backbone" | "yolo", fused) -> model in eval mode, seed 0."""
    models = {}
    for name in backbones:
        torch.manual_seed(0)
        for part, model in (("backbone", build_backbone(name)), ("yolo", YoloNet(name, size))):
            models[(name, part, False)] = model.eval()
            models[(name, part, True)] = fuse_conv_bn(copy.deepcopy(model).eval())
    return models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", default="tiny,csp_tiny", help="comma-separated BACKBONES entries")
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    models = build_all(args.backbones.split(","), args.size)
    keyed = {f"{k[0]}/{k[1]}/{int(k[2])}": m for k, m in models.items()}
    measured = {batch: timings(keyed, batch, args.size, args.runs) for batch in (1, 8)}
    for (name, part, fused), model in models.items():
        key = f"{name}/{part}/{int(fused)}"
        row = {"backbone": name, "model": part, "bn_fused": fused, "size": args.size, "threads": args.threads,
               "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 3),
               "gflops": round(gflops(model, args.size), 3)}
        for batch, times in measured.items():
            row[f"ms_b{batch}_median"] = round(statistics.median(times[key]), 1)
            row[f"ms_b{batch}_min"] = round(min(times[key]), 1)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
