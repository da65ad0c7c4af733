"""The first run a user tries: each tiny recipe for a few epochs on a few hundred images; one JSON line.

Makes a small synthetic set (`--data shapes`: the demo's shapes, or `--data glyphs`: the race's harder digits),
trains each recipe as it ships (configs/<family>_tiny.yaml, only the data paths and the epochs changed) and
reports bbox_mAP / mAP_50 on the held-out images (eval's 0.001 / 300) and the training seconds. A recipe that
cannot learn such a set in 8 epochs fails the user's first try, whatever it reaches in a long run.
Run it alone: two torch processes on 2 cores slow each other many times over.
Usage: python benchmarks/bench_short.py [--data shapes] [--train 300] [--val 100] [--epochs 8] [--recipes ssd,yolo]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from datasets.synthetic.glyphs import make_glyphs  # noqa: E402
from datasets.synthetic.shapes import make_shapes  # noqa: E402
from detection.config import load_config  # noqa: E402
from detection.tasks import build_trainer  # noqa: E402

RECIPES = {"ssd": "ssd_tiny.yaml", "yolo": "yolo_tiny.yaml", "faster_rcnn": "faster_rcnn_tiny.yaml"}
MAKERS = {"shapes": make_shapes, "glyphs": make_glyphs}


def build_data(kind: str, root: Path, train: int, val: int) -> dict[str, Path]:
    """Train and val sets of `kind` (different seeds): their annotation files."""
    make = MAKERS[kind]
    return {"train": make(root / "train", train, seed=0), "val": make(root / "val", val, seed=1)}


def run_recipe(name: str, data: dict[str, Path], out: Path, epochs: int, hflip: bool) -> dict:
    """Train one recipe as it ships for `epochs` on `data`; its row."""
    items = {"output_dir": out / name, "train.epochs": epochs, "train.eval_every": epochs, "train.plots": False,
             "data.num_workers": 0,
             "data.train.annotations": data["train"], "data.train.images": data["train"].parent / "images",
             "data.val.annotations": data["val"], "data.val.images": data["val"].parent / "images"}
    if not hflip:
        items["data.augment.hflip"] = 0.0
    cfg = load_config(ROOT / "configs" / RECIPES[name], [f"{k}={v}" for k, v in items.items()])
    trainer = build_trainer(cfg, progress=False)
    metrics = trainer.fit()
    return {"recipe": name, "config": RECIPES[name], "epochs": epochs, "train_seconds": round(trainer.seconds, 1),
            "bbox_mAP": round(metrics["bbox_mAP"], 4), "bbox_mAP_50": round(metrics["bbox_mAP_50"], 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=sorted(MAKERS), default="shapes")
    parser.add_argument("--train", type=int, default=300)
    parser.add_argument("--val", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--recipes", default="ssd,yolo,faster_rcnn", help=f"comma-separated, of {sorted(RECIPES)}")
    parser.add_argument("--work", type=Path, help="keep data and runs here (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        data = build_data(args.data, work / args.data, args.train, args.val)
        rows = []
        for name in args.recipes.split(","):
            rows.append(run_recipe(name, data, work, args.epochs, hflip=args.data != "glyphs"))
            print(json.dumps(rows[-1]), file=sys.stderr)
    print(json.dumps({"benchmark": "short", "data": args.data, "train_images": args.train, "val_images": args.val,
                      "input_size": 320, "threads": torch.get_num_threads(), "rows": rows}))


if __name__ == "__main__":
    main()
