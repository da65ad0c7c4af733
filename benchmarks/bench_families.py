"""SSD, YOLO and Faster R-CNN (tiny configs) on one synthetic split and one CPU time budget; print one JSON line.

Per family: parameters, FLOPs at the input size, train images/s, inference ms/image at batch 1 and 8, bbox_mAP
and bbox_mAP_50 on the held-out split; YOLO's inference is also timed at 320 px. Run it on an idle machine.
Usage: python benchmarks/bench_families.py [--minutes 4.5] [--images 500] [--families faster_rcnn,ssd,yolo]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from datasets.checks.anchors import config_line, kmeans_anchors, letterboxed_sizes  # noqa: E402
from datasets.cli import main as datasets_main  # noqa: E402
from datasets.core.coco import load_coco  # noqa: E402
from datasets.synthetic.shapes import make_shapes  # noqa: E402
from detection.config import load_config  # noqa: E402
from detection.models import build_detector  # noqa: E402
from detection.tasks import build_trainer  # noqa: E402
from detection.utils.fuse import prepare_for_inference  # noqa: E402

SIZE = 128  # the synthetic images' size, and the input size of every family here (as in the demo)
RECIPES = {"faster_rcnn": "demo.yaml", "ssd": "ssd_tiny.yaml", "yolo": "demo_yolo.yaml"}
# The same data, augmentation and budget for every family: as many epochs as fit (the schedule is fitted to
# the budget), one evaluation at the end. What differs is each recipe's model and optimizer settings.
SHARED = {"data.input_size": SIZE, "data.num_workers": 0, "train.epochs": 500, "train.batch_size": 8,
          "train.eval_every": 0, "data.augment.hflip": 0.5, "data.augment.scale_min": 0.8,
          "data.augment.scale_max": 1.2, "data.augment.color": 0.3}
# ssd: the SSD this table measured, from before ssd_tiny.yaml moved to an FPN neck and AdamW
FAMILY = {"faster_rcnn": {}, "ssd": {"model.neck": "ssd_extra", "model.neck_channels": 128, "model.neck_levels": 4,
                                     "train.optimizer": "sgd", "train.lr": 0.02, "train.warmup_epochs": 1},
          "yolo": {}}


def build_data(tmp: Path, images: int) -> Path:
    make_shapes(tmp, images, seed=0)
    datasets_main(["split", str(tmp / "annotations.json"), "--out", str(tmp), "--val", "0.2", "--seed", "0"])
    return tmp


def overrides(family: str, data: Path, out: Path, minutes: float) -> list[str]:
    items = {**SHARED, **FAMILY[family], "output_dir": out / family, "train.max_minutes": minutes,
             "data.train.annotations": data / "train.json", "data.train.images": data / "images",
             "data.val.annotations": data / "val.json", "data.val.images": data / "images"}
    extra = []
    if family == "yolo":  # anchors fitted to the training boxes, as a user would with `datasets anchors`
        sizes = letterboxed_sizes(load_coco(data / "train.json"), SIZE)
        extra.append(config_line(kmeans_anchors(sizes, 9), 3))
    return [f"{k}={v}" for k, v in items.items()] + extra


@torch.no_grad()
@torch.no_grad()
def inference_ms(model: torch.nn.Module, size: int, batch: int, runs: int = 10) -> float:
    """Median wall time per image of an eval forward (post-processing included) on random images, the model run as
    the Predictor runs it (no autograd, prepare_for_inference: BatchNorm folded, channels-last; in place)."""
    prepare_for_inference(model)
    images = torch.rand(batch, 3, size, size)
    model(images)  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        model(images)
        times.append((time.perf_counter() - start) * 1000 / batch)
    return round(statistics.median(times), 2)


@torch.no_grad()
def gflops(model: torch.nn.Module, size: int) -> float:
    """FLOPs (2 per multiply-add) of one eval forward on one image, as torch's FlopCounterMode counts them. The image
    is seeded: a model that proposes its own regions does as much work as that image gives it proposals."""
    model.eval()
    counter = FlopCounterMode(display=False)
    image = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    with counter:
        model(image)
    return round(counter.get_total_flops() / 1e9, 3)


def run_family(family: str, data: Path, out: Path, minutes: float) -> dict:
    cfg = load_config(ROOT / "configs" / RECIPES[family], overrides(family, data, out, minutes))
    trainer = build_trainer(cfg, progress=False)
    metrics = trainer.fit()
    model = trainer.inference_model.cpu()
    row = {"family": family, "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 3),
           "gflops": gflops(model, SIZE), "epochs": trainer.epoch,
           "train_images_per_s": round(trainer.step * cfg.train.batch_size / trainer.seconds, 1),
           "infer_ms_b1": inference_ms(model, SIZE, 1), "infer_ms_b8": inference_ms(model, SIZE, 8),
           "bbox_mAP": metrics.get("bbox_mAP"), "bbox_mAP_50": metrics.get("bbox_mAP_50")}
    at_320 = build_detector(cfg.model, len(trainer.categories), 320)  # speed at the tiny recipes' 320 px
    row["infer_ms_b1_320"] = inference_ms(at_320, 320, 1)
    return row


def run_families(families: str, images: int, minutes: float, run_family) -> list[dict]:
    """One synthetic split, then `run_family(family, data, tmp, minutes)` for each of the comma-separated
    families on it; each row goes to stderr as it comes."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = build_data(Path(tmp) / "shapes", images)
        for family in families.split(","):
            rows.append(run_family(family, data, Path(tmp), minutes))
            print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=4.5, help="training budget per family (the demo's)")
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--families", default="faster_rcnn,ssd,yolo")
    args = parser.parse_args()
    rows = run_families(args.families, args.images, args.minutes, run_family)
    by = {r["family"]: r for r in rows}
    summary = {"benchmark": "families", "threads": torch.get_num_threads(), "budget_minutes": args.minutes,
               "input_size": SIZE, "rows": rows}
    if "yolo" in by and "faster_rcnn" in by:
        frcnn, yolo = by["faster_rcnn"], by["yolo"]
        summary["yolo_map_ratio_to_faster_rcnn"] = round(yolo["bbox_mAP"] / max(frcnn["bbox_mAP"], 1e-9), 2)
        summary["yolo_infer_time_ratio_to_faster_rcnn"] = round(yolo["infer_ms_b1"] / frcnn["infer_ms_b1"], 3)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
