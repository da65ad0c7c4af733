"""Does the training DataLoader keep up with the model? Loader images/s (full augmentation, as the Trainer builds it)
for num_workers 0/1/2 and data.cache_images none/ram/disk, against the model's train-step images/s; one JSON line.

A ratio loader/model above 1 means the loader keeps up. Also: where one image's loading time goes (read, decode,
albumentations, to tensor, collate) and how long an epoch waits for its first batch, fresh vs persistent workers.
Images come from the page cache once written: this measures decoding and augmentation, not a disk.
Usage: python benchmarks/bench_loader.py [--images 200] [--size 320] [--format jpg] [--config configs/demo.yaml]
       [--quick]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from datasets.core.images import read_rgb  # noqa: E402
from datasets.synthetic.shapes import make_shapes  # noqa: E402
from detection.config import Config, load_config  # noqa: E402
from detection.data.coco import collate  # noqa: E402
from detection.data.epoch_seed import EpochSeeded  # noqa: E402
from detection.engine.trainer import Trainer, make_loader, restart  # noqa: E402
from detection.tasks import build_task, build_trainer  # noqa: E402
from detection.utils.device import resolve_device  # noqa: E402


def build_config(config: Path, data: Path, out: Path, size: int, device: str, **extra) -> Config:
    items = {"output_dir": out, "device": device, "data.input_size": size, "data.val.annotations": "",
             "data.train.annotations": data / "annotations.json", "data.train.images": data / "images",
             "train.plots": "false", "data.image_cache_dir": out / "image_cache", **extra}
    return load_config(config, [f"{k}={v}" for k, v in items.items()])


def timed_epoch(loader) -> tuple[float, float, int]:
    """(seconds to the first batch, seconds for the whole pass, images) of one pass over `loader`."""
    start, first, seen = time.perf_counter(), None, 0
    for _, targets in loader:
        first = first or time.perf_counter() - start
        seen += len(targets)
    return first, time.perf_counter() - start, seen


def loader_row(cfg: Config, workers: int, cache: str, passes: int) -> dict:
    """Epochs of the Trainer's training loader (persistent workers): the first fills the caches and starts the
    workers; the median of the next `passes` is the steady state."""
    start = time.perf_counter()
    train, _ = build_task(cfg).datasets()
    setup = time.perf_counter() - start
    loader = make_loader(EpochSeeded(train), cfg.train.batch_size, True, 0, workers, persistent=True,
                         device=resolve_device(cfg.device))
    loader.dataset.set_seed(0)
    _, cold, seen = timed_epoch(loader)
    warms = []
    for epoch in range(1, passes + 1):
        restart(loader, epoch)
        warms.append(timed_epoch(loader)[1])
    warm = statistics.median(warms)
    row = {"workers": workers, "cache": cache or "none", "images_per_s": round(seen / warm, 1),
           "first_epoch_images_per_s": round(seen / cold, 1), "setup_s": round(setup, 2)}
    if cache == "ram":
        row["cache_mb"] = round(train.images.nbytes / 2**20, 1)
    return row


def train_images_per_s(trainer: Trainer, batches) -> float:
    """Train steps (forward, backward, optimizer) per second x batch size over `batches`, after two warm-up steps."""
    trainer.model.train()
    start, seen = None, 0
    for step, (inputs, targets) in enumerate(batches):
        if step == 2:
            start, seen = time.perf_counter(), 0
        trainer.train_step(inputs, targets)
        seen += len(targets)
    return seen / (time.perf_counter() - start)


def model_rates(cfg: Config, steps: int, workers: int) -> dict:
    """The model's train-step images/s on batches loaded beforehand (the model alone), and fed by the Trainer's
    loader with 0 and `workers` workers (what training gets)."""
    trainer = build_trainer(cfg, progress=False)
    loader = make_loader(trainer.train_set, cfg.train.batch_size, True, 0, 0, collate_fn=trainer.task.collate)
    rates = {"model": train_images_per_s(trainer, [batch for batch, _ in zip(loader, range(steps + 2))])}
    for fed in sorted({0, workers}):
        loader = make_loader(EpochSeeded(trainer.train_set), cfg.train.batch_size, True, 0, fed,
                             collate_fn=trainer.task.collate, persistent=True, device=trainer.device)
        loader.dataset.set_seed(0)
        rates[f"fed_by_{fed}_workers"] = train_images_per_s(trainer, (b for b, _ in zip(loader, range(steps + 2))))
    return {k: round(v, 1) for k, v in rates.items()}


def stage_ms(cfg: Config, images: int) -> dict:
    """Median ms per image of each loading stage, in this process (num_workers=0, no cache)."""
    train, _ = build_task(cfg).datasets()
    train.transform.set_random_seed(0)
    paths = [train.images_dir / train.coco.imgs[i]["file_name"] for i in train.ids[:images]]

    def per_image(step, items) -> float:
        times = []
        for item in items:
            start = time.perf_counter()
            step(item)
            times.append((time.perf_counter() - start) * 1000)
        return round(statistics.median(times), 3)

    decoded = [train.load(i) for i in range(len(paths))]
    augmented = [train.transform(image=im, bboxes=b, labels=lab)["image"] for im, b, lab in decoded]
    items = [train[i] for i in range(len(paths))]
    batch = cfg.train.batch_size
    return {"read_file": per_image(lambda p: p.read_bytes(), paths),
            "decode": per_image(read_rgb, paths),
            "augment": per_image(lambda d: train.transform(image=d[0], bboxes=d[1], labels=d[2]), decoded),
            "to_tensor": per_image(lambda im: torch.from_numpy(np.ascontiguousarray(im.transpose(2, 0, 1)))
                                   .float().div_(255), augmented),
            "collate": round(per_image(collate, [items[i:i + batch] for i in range(0, len(items), batch)]) / batch, 3),
            "getitem_total": per_image(train.__getitem__, range(len(paths)))}


def epoch_start_s(cfg: Config, workers: int) -> dict:
    """Seconds from the start of an epoch to its first batch: a new loader (new workers) vs the kept one."""
    train, _ = build_task(cfg).datasets()
    fresh = [timed_epoch(make_loader(train, cfg.train.batch_size, True, e, workers))[0] for e in range(2)]
    kept = make_loader(EpochSeeded(train), cfg.train.batch_size, True, 0, workers, persistent=True)
    kept.dataset.set_seed(0)
    timed_epoch(kept)
    restart(kept, 1)
    return {"workers": workers, "fresh": round(statistics.mean(fresh), 3), "kept": round(timed_epoch(kept)[0], 3)}


def table(result: dict) -> str:
    model = result["model_images_per_s"]
    fed = ", ".join(f"{k} {v}" for k, v in result["train_images_per_s"].items() if k != "model")
    lines = [f"model train step: {model} images/s on preloaded batches; {fed} ({result['config']}, "
             f"{result['input_size']} px, batch {result['batch_size']})",
             "workers  cache  loader img/s  first epoch  ratio loader/model"]
    for row in result["loader"]:
        lines.append(f"{row['workers']:>7}  {row['cache']:>5}  {row['images_per_s']:>12}  "
                     f"{row['first_epoch_images_per_s']:>11}  {row['ratio']:>18}")
    lines.append("ms per image: " + ", ".join(f"{k} {v}" for k, v in result["stage_ms"].items()))
    start = result["epoch_start_s"]
    lines.append(f"first batch of an epoch, {start['workers']} workers: new loader {start['fresh']} s, "
                 f"kept (persistent) {start['kept']} s")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--size", type=int, default=320, help="image size, and the model's input size")
    parser.add_argument("--format", default="jpg", choices=("jpg", "png"))
    parser.add_argument("--config", default=str(ROOT / "configs" / "demo.yaml"))
    parser.add_argument("--workers", default="0,1,2")
    parser.add_argument("--device", default="cpu", help="the model's device (auto: CUDA when present)")
    parser.add_argument("--steps", type=int, default=10, help="timed model train steps")
    parser.add_argument("--passes", type=int, default=3, help="timed loader epochs per setting (median)")
    parser.add_argument("--quick", action="store_true", help="48 images, 3 model steps, workers 0,2, 1 pass")
    args = parser.parse_args()
    if args.quick:
        args.images, args.steps, args.workers, args.passes = 48, 3, "0,2", 1
    workers = [int(w) for w in args.workers.split(",")]
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        make_shapes(data, args.images, seed=0, image_size=args.size, image_format=args.format,
                    max_size=max(56, args.size // 3))
        cfg = build_config(Path(args.config), data, Path(tmp) / "out", args.size, args.device)
        rates = model_rates(cfg, args.steps, max(workers))
        model = rates["model"]
        rows = []
        for count in workers:
            for cache in ("", "ram", "disk"):
                settings = {"data.num_workers": count, "data.cache_images": cache}
                row = loader_row(build_config(Path(args.config), data, Path(tmp) / f"out{count}", args.size,
                                              args.device, **settings), count, cache, args.passes)
                rows.append({**row, "ratio": round(row["images_per_s"] / model, 2)})
                print(json.dumps(rows[-1]), file=sys.stderr)
        result = {"benchmark": "loader", "images": args.images, "size": args.size, "format": args.format,
                  "config": Path(args.config).name, "input_size": cfg.data.input_size,
                  "batch_size": cfg.train.batch_size, "threads": torch.get_num_threads(),
                  "device": str(resolve_device(cfg.device)),
                  "model_images_per_s": model, "train_images_per_s": rates, "loader": rows,
                  "stage_ms": stage_ms(cfg, min(64, args.images)), "epoch_start_s": epoch_start_s(cfg, max(workers))}
    print(table(result), file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
