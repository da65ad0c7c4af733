"""The single-shot race: every tiny recipe on the harder glyphs set under one training-time budget; one JSON line.

Makes `detpipe data glyphs` train and val splits (320 px, ten digit classes in many fonts on clutter), trains each
recipe for the same minutes of this machine (as many epochs as fit, the schedule fitted to the budget; evaluation
time is not counted) and reports per recipe: bbox_mAP / mAP_50 on val (eval's 0.001 / 300), the mAP curve against
training seconds, inference ms/image at batch 1 and 8 (post-processing included; every saved model timed in turns
at the end, in a fresh process, as the Predictor loads and runs it), parameters and GFLOPs at 320 px.
`--peer` adds Ultralytics YOLO26n from scratch on the same data and budget, installed in a throwaway virtualenv (it
needs the non-headless OpenCV) and scored by the same pycocotools evaluation. `--plot F.png` draws the curves.
Run it alone: two torch processes on 2 cores slow each other many times over.
Usage: python benchmarks/bench_race.py [--minutes 12] [--train 800] [--val 200] [--recipes yolo,faster_rcnn]
       python benchmarks/bench_race.py --time-checkpoints A.pt,B.pt [--rounds 15]   (timing only)
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_families import gflops, inference_ms  # noqa: E402
from datasets.synthetic.glyphs import make_glyphs  # noqa: E402
from detection.config import load_config  # noqa: E402
from detection.engine.checkpoint import load_model  # noqa: E402
from detection.tasks import build_trainer  # noqa: E402

SIZE = 320
# recipe name -> (config file, its own overrides); every recipe as a user would run it on new data
RECIPES = {
    "yolo": ("yolo_tiny.yaml", {}),
    # the recipe before the race: YOLOv3-style anchor head, SGD
    "yolo_anchor": ("yolo_tiny.yaml", {"model.yolo.head": "anchor", "train.optimizer": "sgd", "train.lr": 0.01,
                                       "train.weight_decay": 0.0005}),
    # the race's first free-head recipe: YOLOv8's branch widths, a 64-channel neck, lr 0.002
    "yolo_wide": ("yolo_tiny.yaml", {"model.neck_channels": 64, "model.yolo.box_width": 0,
                                     "model.yolo.class_width": 0, "train.lr": 0.002}),
    # one 3x3 conv per head branch instead of YOLOv8's two: 0.91 of the recipe's time at batch 1, and 0.635
    # against 0.683 mAP on 300 glyphs images in 2.5 minutes
    "yolo_fast": ("yolo_tiny.yaml", {"model.yolo.branch_depth": 1}),
    "faster_rcnn": ("faster_rcnn_tiny.yaml", {}),
    # Faster R-CNN with the single-shot recipes' optimizer, to see how much of the gap is the optimizer
    "faster_rcnn_adamw": ("faster_rcnn_tiny.yaml", {"train.optimizer": "adamw", "train.lr": 0.001,
                                                    "train.weight_decay": 0.05}),
    "ssd": ("ssd_tiny.yaml", {}),
}
# glyphs are text: no recipe flips them (a mirrored digit is no digit)
SHARED = {"data.input_size": SIZE, "data.num_workers": 0, "train.epochs": 300, "data.augment.hflip": 0.0}


def build_data(root: Path, train: int, val: int) -> dict[str, Path]:
    """Two glyphs sets rendered with different seeds: train and val."""
    return {"train": make_glyphs(root / "train", train, seed=0), "val": make_glyphs(root / "val", val, seed=1)}


def overrides(name: str, data: dict[str, Path], out: Path, minutes: float, eval_every: int) -> list[str]:
    items = {**SHARED, **RECIPES[name][1], "output_dir": out / name, "train.max_minutes": minutes,
             "train.eval_every": eval_every,
             "data.train.annotations": data["train"], "data.train.images": data["train"].parent / "images",
             "data.val.annotations": data["val"], "data.val.images": data["val"].parent / "images"}
    return [f"{k}={v}" for k, v in items.items()]


def curve(metrics_file: Path) -> list[list[float]]:
    """[[training seconds so far, bbox_mAP], ...] at every evaluated epoch of a run's metrics.jsonl."""
    points, seconds = [], 0.0
    for line in metrics_file.read_text().splitlines():
        record = json.loads(line)
        if record.get("type") != "epoch":
            continue
        seconds += record["seconds"]
        if "bbox_mAP" in record:
            points.append([round(seconds, 1), round(record["bbox_mAP"], 4)])
    return points


def run_recipe(name: str, data: dict[str, Path], out: Path, minutes: float,
               eval_every: int) -> dict:
    """Train one recipe for the budget: its row (without inference times); its model is out/name/last.pt."""
    cfg = load_config(ROOT / "configs" / RECIPES[name][0], overrides(name, data, out, minutes, eval_every))
    trainer = build_trainer(cfg, progress=False)
    metrics = trainer.fit()
    model = trainer.inference_model.cpu().eval()
    return {"recipe": name, "config": RECIPES[name][0], **RECIPES[name][1],
            "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 3), "gflops": gflops(model, SIZE),
            "epochs": trainer.epoch, "train_seconds": round(trainer.seconds, 1),
            "train_images_per_s": round(trainer.step * cfg.train.batch_size / trainer.seconds, 1),
            "bbox_mAP": round(metrics.get("bbox_mAP", 0.0), 4), "bbox_mAP_50": round(metrics.get("bbox_mAP_50", 0.0), 4),
            "curve": curve(out / name / "metrics.jsonl")}


def timed_in_turns(rows: list[dict], models: list[torch.nn.Module], rounds: int = 5) -> None:
    """Each trained model's inference ms/image at batch 1 and 8 into its row, measured in turns (every model once
    a round, the median over rounds), so that the machine's drift falls on every recipe alike."""
    times = [([], []) for _ in models]
    for _ in range(rounds):
        for (b1, b8), model in zip(times, models):
            b1.append(inference_ms(model, SIZE, 1))
            b8.append(inference_ms(model, SIZE, 8, runs=3))
    for row, (b1, b8) in zip(rows, times):
        row["infer_ms_b1"], row["infer_ms_b8"] = statistics.median(b1), statistics.median(b8)


def time_checkpoints(rows: list[dict], checkpoints: list[Path], rounds: int) -> None:
    """`timed_in_turns` of the saved checkpoints in a fresh process, as a user's Predictor loads them. Timed in
    the process that had trained them for half an hour, the same models read up to a third slower, unevenly
    (YOLO 11.4 against 7.3 ms, Faster R-CNN 27.7 against 23.1)."""
    command = [sys.executable, __file__, "--time-checkpoints", ",".join(map(str, checkpoints)), "--rounds",
               str(rounds)]
    answer = subprocess.run(command, check=True, capture_output=True, text=True).stdout.splitlines()[-1]
    for row, (b1, b8) in zip(rows, json.loads(answer)):
        row["infer_ms_b1"], row["infer_ms_b8"] = b1, b8


def print_times(checkpoints: str, rounds: int) -> None:
    """The --time-checkpoints mode: one JSON line, [ms at batch 1, at batch 8] of each checkpoint's model."""
    models = [load_model(Path(p), torch.device("cpu"), expect="detector").model for p in checkpoints.split(",")]
    rows: list[dict] = [{} for _ in models]
    timed_in_turns(rows, models, rounds)
    print(json.dumps([[row["infer_ms_b1"], row["infer_ms_b8"]] for row in rows]))


def label(row: dict) -> str:
    return f"{row['recipe']} ({row['infer_ms_b1']} ms/img)" if "infer_ms_b1" in row else row["recipe"]


def draw(rows: list[dict], path: Path, title: str = f"glyphs {SIZE} px: mAP against training time") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for row in rows:
        if row.get("curve"):
            seconds, maps = zip(*row["curve"])
            ax.plot(seconds, maps, marker="o", label=label(row))
        elif "bbox_mAP" in row:  # the peer: its final evaluation only
            ax.plot([row["train_seconds"]], [row["bbox_mAP"]], marker="*", markersize=12, linestyle="none",
                    label=label(row))
    ax.set_xlabel(f"training seconds ({torch.get_num_threads()} threads, alone)")
    ax.set_ylabel("bbox mAP (val, COCO)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def summary(rows: list[dict], args) -> dict:
    by = {r["recipe"]: r for r in rows}
    out = {"benchmark": "race", "threads": torch.get_num_threads(), "budget_minutes": args.minutes,
           "input_size": SIZE, "train_images": args.train, "val_images": args.val, "rows": rows}
    if "faster_rcnn" in by:
        frcnn = by["faster_rcnn"]
        out["ratios_to_faster_rcnn"] = {  # [mAP, ms at batch 1 (timed in turns)] of our other recipes
            r["recipe"]: [round(r["bbox_mAP"] / max(frcnn["bbox_mAP"], 1e-9), 2),
                          round(r["infer_ms_b1"] / frcnn["infer_ms_b1"], 3)]
            for r in rows if r is not frcnn and r["recipe"] in RECIPES and "infer_ms_b1" in r}
        if "yolo" in by:
            out["yolo_map_ratio_to_faster_rcnn"], out["yolo_infer_time_ratio_to_faster_rcnn"] = \
                out["ratios_to_faster_rcnn"]["yolo"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=12.0, help="training budget per recipe")
    parser.add_argument("--train", type=int, default=800)
    parser.add_argument("--val", type=int, default=200)
    parser.add_argument("--recipes", default="yolo,faster_rcnn,ssd", help=f"comma-separated, of {sorted(RECIPES)}")
    parser.add_argument("--eval-every", type=int, default=2, help="epochs between the curve's points")
    parser.add_argument("--rounds", type=int, default=15, help="rounds of the inference timing in turns")
    parser.add_argument("--peer", action="store_true", help="add Ultralytics YOLO26n (installs it in a temp venv)")
    parser.add_argument("--plot", type=Path, help="PNG of mAP against training seconds")
    parser.add_argument("--work", type=Path, help="keep data and runs here (default: a temporary folder)")
    parser.add_argument("--time-checkpoints", help="only time these comma-separated checkpoints in turns")
    args = parser.parse_args()
    if args.time_checkpoints:
        print_times(args.time_checkpoints, args.rounds)
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        data = build_data(work / "glyphs", args.train, args.val)
        rows, names = [], args.recipes.split(",")
        for name in names:
            rows.append(run_recipe(name, data, work, args.minutes, args.eval_every))
            print(json.dumps(rows[-1]), file=sys.stderr)
        time_checkpoints(rows, [work / name / "last.pt" for name in names], args.rounds)
        if args.peer:
            from race_peer import run_peer

            try:
                rows.append(run_peer(data, work / "peer", args.minutes, SIZE))
            except subprocess.CalledProcessError as exc:  # no registry, or Ultralytics refusing offline
                rows.append({"recipe": "ultralytics_yolo26n", "error": f"{exc.cmd[:2]} exited {exc.returncode}"})
            print(json.dumps(rows[-1]), file=sys.stderr)
    if args.plot:
        draw(rows, args.plot)
    print(json.dumps(summary(rows, args)))


if __name__ == "__main__":
    main()
