"""configs/demo.yaml trained in this process, on 1 Ray Train worker and on 2, with the same global batch and seed;
print one JSON line: images/s of each, the 2-worker/1-worker ratio and the per-epoch losses of the three. In-process
runs with seeds 1 and 2 give the noise to judge the curves by: how far one seed's epoch losses get from another's.

Every run uses 1 torch thread per process (the in-process run too, for fairness). images/s counts training time only
(epoch seconds, the slowest worker's); wall_s adds Ray's start-up. Run it on an idle machine.
Usage: python benchmarks/bench_ray_train.py [--images 200] [--epochs 2] [--quick]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from datasets.synthetic.shapes import make_shapes  # noqa: E402
from detection.config import load_config  # noqa: E402
from detection.engine.distributed import fit_on_ray, start_ray  # noqa: E402
from detection.tasks import build_task, build_trainer  # noqa: E402


def overrides(data: Path, out: Path, epochs: int, workers: int, seed: int) -> list[str]:
    items = {"output_dir": out, "seed": seed, "train.epochs": epochs, "train.batch_size": 8, "train.eval_every": 0,
             "train.max_minutes": 0, "train.log_every": 1, "train.plots": "false", "data.num_workers": 0,
             "data.train.annotations": data / "annotations.json", "data.train.images": data / "images",
             "data.val.annotations": "", "trainer.num_workers": workers, "trainer.cpus_per_worker": 1}
    return [f"{k}={v}" for k, v in items.items()]


def run(data: Path, out: Path, epochs: int, workers: int, seed: int = 0) -> dict:
    """Train once; images/s over the epochs' training time, per-epoch and per-step losses from metrics.jsonl."""
    cfg = load_config(ROOT / "configs" / "demo.yaml", overrides(data, out, epochs, workers, seed))
    start = time.perf_counter()
    if workers == 0:
        build_trainer(cfg, progress=False).fit()
    else:
        fit_on_ray(cfg, build_task, progress=False)
    wall = time.perf_counter() - start
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    epochs_ = [r for r in records if r["type"] == "epoch"]
    images = sum(r["images_per_s"] * r["seconds"] for r in epochs_)
    seconds = sum(r["seconds"] for r in epochs_)
    return {"images_per_s": round(images / seconds, 2), "train_s": round(seconds, 1), "wall_s": round(wall, 1),
            "epoch_loss": [r["loss"] for r in epochs_],
            "step_loss": [r["loss"] for r in records if r["type"] == "train"]}


def max_relative(a: list[float], b: list[float]) -> float:
    return round(max(abs(x - y) / max(abs(y), 1e-9) for x, y in zip(a, b)), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="48 images, 2 epochs")
    args = parser.parse_args()
    images, epochs = (48, 2) if args.quick else (args.images, args.epochs)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        make_shapes(data, images, seed=0)
        start_ray(load_config(ROOT / "configs" / "demo.yaml", ["trainer.num_workers=2"]))  # once, for both Ray runs
        runs = {name: run(data, Path(tmp) / name, epochs, workers)
                for name, workers in (("in_process", 0), ("ray_1_worker", 1), ("ray_2_workers", 2))}
        seeds = [runs["in_process"]["epoch_loss"]] + [run(data, Path(tmp) / f"seed_{seed}", epochs, 0, seed=seed)
                                                       ["epoch_loss"] for seed in (1, 2)]
    one, two = runs["ray_1_worker"], runs["ray_2_workers"]
    result = {"bench": "ray_train", "config": "configs/demo.yaml", "images": images, "epochs": epochs,
              "global_batch": 8, "threads_per_process": 1,
              **{f"{name}_images_per_s": r["images_per_s"] for name, r in runs.items()},
              "ratio_2_workers_over_1": round(two["images_per_s"] / one["images_per_s"], 3),
              "ratio_1_worker_over_in_process": round(one["images_per_s"] / runs["in_process"]["images_per_s"], 3),
              **{f"{name}_wall_s": r["wall_s"] for name, r in runs.items()},
              **{f"{name}_epoch_loss": r["epoch_loss"] for name, r in runs.items()},
              "max_rel_epoch_loss_diff_2_vs_1": max_relative(two["epoch_loss"], one["epoch_loss"]),
              "max_rel_step_loss_diff_2_vs_1": max_relative(two["step_loss"], one["step_loss"]),
              "max_rel_epoch_loss_diff_1_vs_in_process": max_relative(one["epoch_loss"],
                                                                      runs["in_process"]["epoch_loss"]),
              "in_process_seeds_0_1_2_epoch_loss": seeds,
              "max_rel_epoch_loss_diff_between_seeds": max(max_relative(a, b) for a in seeds for b in seeds if a != b)}
    result["same_curve_within_seed_noise"] = (result["max_rel_epoch_loss_diff_2_vs_1"]
                                              <= result["max_rel_epoch_loss_diff_between_seeds"])
    print(f"{'run':<15}{'images/s':>10}{'train s':>9}{'wall s':>8}  epoch losses", file=sys.stderr)
    for name, r in runs.items():
        print(f"{name:<15}{r['images_per_s']:>10}{r['train_s']:>9}{r['wall_s']:>8}  {r['epoch_loss']}", file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
