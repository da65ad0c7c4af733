"""Sliced inference on large images with small objects: whole-image, sliced and sliced + full; print one JSON line.

Makes large synthetic shapes images with small objects, tiles the training split with `detpipe data tile`, trains
configs/demo.yaml's Faster R-CNN at the tile size on the tiles, then on the whole val images reports bbox mAP (eval's
post-processing) and ms per megapixel (predict's), and the share of that time outside the model (cut, merge).
Usage: python benchmarks/bench_sliced.py [--minutes 3] [--images 30] [--image-size 1024] [--tile 256]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from pycocotools.coco import COCO

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from datasets.cli import main as datasets_main  # noqa: E402
from datasets.core.images import read_rgb  # noqa: E402
from datasets.synthetic.shapes import make_shapes  # noqa: E402
from detection.config import EVAL_MAX_DETECTIONS, EVAL_SCORE_THRESHOLD, load_config  # noqa: E402
from detection.engine.evaluator import coco_metrics  # noqa: E402
from detection.inference.predictor import Predictor  # noqa: E402
from detection.inference.slice_options import SliceOptions  # noqa: E402
from detection.inference.slicing import SliceTimes, predict_sliced  # noqa: E402
from detection.tasks import build_trainer  # noqa: E402

OBJECTS = {"min_size": 10, "max_size": 40, "max_objects": 64}  # 10-40 px shapes, about 30 a photo: COCO small, some medium
TRAIN = {"data.num_workers": 0, "train.epochs": 500, "train.eval_every": 0, "train.batch_size": 8,
         "model.postprocess.max_detections": 100}


def build_data(tmp: Path, images: int, image_size: int, tile: int) -> Path:
    """Large images split 80/20 by image, then the train and val splits tiled (val tiles: training's own check)."""
    make_shapes(tmp, images, seed=0, image_size=image_size, **OBJECTS)
    datasets_main(["split", str(tmp / "annotations.json"), "--out", str(tmp), "--val", "0.2", "--seed", "0"])
    for split in ("train", "val"):
        datasets_main(["tile", str(tmp / f"{split}.json"), "--images", str(tmp / "images"), "--size", str(tile),
                       "--overlap", "0.2", "--out", str(tmp / f"tiles_{split}")])
    return tmp


def train(data: Path, out: Path, tile: int, minutes: float) -> Path:
    """configs/demo.yaml at the tile size on the tiles for `minutes`; the checkpoint's path."""
    items = {**TRAIN, "output_dir": out, "data.input_size": tile, "train.max_minutes": minutes,
             "data.train.annotations": data / "tiles_train" / "annotations.json",
             "data.train.images": data / "tiles_train" / "images",
             "data.val.annotations": data / "tiles_val" / "annotations.json",
             "data.val.images": data / "tiles_val" / "images"}
    cfg = load_config(ROOT / "configs" / "demo.yaml", [f"{k}={v}" for k, v in items.items()])
    trainer = build_trainer(cfg, progress=False)
    metrics = trainer.fit()
    print(json.dumps({"trained_epochs": trainer.epoch, "tile_mAP": metrics.get("bbox_mAP")}), file=sys.stderr)
    return out / "last.pt"


def run_mode(predictor: Predictor, images: list[tuple[int, np.ndarray]], slicing: SliceOptions | None,
             threshold: float | None, top_k: int | None) -> tuple[list[dict], float, SliceTimes]:
    """COCO results with image_id, total seconds and the sliced parts' seconds of every image in one mode."""
    results, times, start = [], SliceTimes(), time.perf_counter()
    for image_id, image in images:
        if slicing is None:
            found = predictor.predict([image], threshold, top_k)[0]
        else:
            found = predict_sliced(predictor, image, slicing, threshold, top_k, times)
        results += [{"image_id": image_id, **{k: d[k] for k in ("bbox", "score", "category_id")}} for d in found]
    return results, time.perf_counter() - start, times


def measure(predictor: Predictor, coco: COCO, images: list[tuple[int, np.ndarray]], slicing: SliceOptions | None,
            megapixels: float) -> dict:
    """mAP at eval's post-processing; ms per megapixel and time shares at predict's (the checkpoint's)."""
    results, _, _ = run_mode(predictor, images, slicing, EVAL_SCORE_THRESHOLD, EVAL_MAX_DETECTIONS)
    metrics, _ = coco_metrics(coco, results)
    run_mode(predictor, images[:1], slicing, None, None)  # warm-up
    _, seconds, times = run_mode(predictor, images, slicing, None, None)
    row = {"bbox_mAP": round(metrics["bbox_mAP"], 4), "bbox_mAP_50": round(metrics["bbox_mAP_50"], 4),
           "bbox_mAP_small": round(metrics["bbox_mAP_small"], 4), "ms_per_megapixel": round(seconds * 1000 / megapixels, 1)}
    if slicing is not None:
        row.update(windows_per_image=times.windows / len(images),
                   share_outside_model=round((times.cut + times.merge) / seconds, 4),
                   share_cut=round(times.cut / seconds, 4), share_merge=round(times.merge / seconds, 4))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="training budget on the tiles")
    parser.add_argument("--images", type=int, default=30, help="large images (20%% held out for val)")
    parser.add_argument("--image-size", type=int, default=1024)
    parser.add_argument("--tile", type=int, default=256, help="training tile size = input size = slice S")
    parser.add_argument("--overlap", type=float, default=0.2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = build_data(Path(tmp) / "large", args.images, args.image_size, args.tile)
        checkpoint = train(data, Path(tmp) / "run", args.tile, args.minutes)
        predictor = Predictor.from_checkpoint(checkpoint, "cpu")
        coco = COCO(str(data / "val.json"))
        images = [(i, read_rgb(data / "images" / coco.imgs[i]["file_name"])) for i in sorted(coco.imgs)]
        megapixels = sum(image.shape[0] * image.shape[1] for _, image in images) / 1e6
        sliced = SliceOptions(size=args.tile, overlap=args.overlap)
        modes = {"whole": None, "sliced": sliced, "sliced_full": SliceOptions(size=args.tile, overlap=args.overlap,
                                                                               full=True)}
        rows = {name: measure(predictor, coco, images, options, megapixels) for name, options in modes.items()}
    objects = sum(len(coco.imgToAnns[i]) for i in coco.imgs)
    print(json.dumps({"benchmark": "sliced", "threads": torch.get_num_threads(), "train_minutes": args.minutes,
                      "image_size": args.image_size, "tile": args.tile, "overlap": args.overlap,
                      "val_images": len(images), "val_objects": objects, **OBJECTS, **rows}))


if __name__ == "__main__":
    main()
