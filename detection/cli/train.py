"""Train a detector from a YAML config: detpipe train CONFIG [key.sub=value ...] [--resume].

Writes config.yaml, metrics.jsonl, last.pt and best.pt into the config's output_dir; with trainer.num_workers=N
(N >= 1) the same training runs on N Ray Train workers (detection.engine.distributed).
"""
from __future__ import annotations

import argparse
import json

from datasets.core.errors import cli_main
from detection.config import load_config


def parse_args(argv: list[str] | None, prog: str = "detpipe train") -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0],
                                     usage="%(prog)s CONFIG [key.sub=value ...] [--resume] [--no-progress]",
                                     epilog="overrides: key.sub=value, e.g. train.epochs=3 model.neck=none")
    parser.add_argument("config", help="YAML config file, e.g. configs/demo.yaml")
    parser.add_argument("--resume", action="store_true", help="continue from OUTPUT_DIR/last.pt")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args, rest = parser.parse_known_args(argv)
    unknown = [item for item in rest if item.startswith("-") or "=" not in item]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)} (overrides look like key.sub=value)")
    args.overrides = rest
    return args


@cli_main
def main(argv: list[str] | None = None, prog: str = "detpipe train") -> int:
    args = parse_args(argv, prog)
    cfg = load_config(args.config, args.overrides)
    from detection.tasks import build_task  # late: torch after argument checks

    if cfg.trainer.num_workers >= 1:
        from detection.engine.distributed import fit_on_ray  # late: Ray only for Ray Train

        last = fit_on_ray(cfg, build_task, resume=args.resume, progress=not args.no_progress)
        summary = {"output_dir": cfg.output_dir, **{k: v for k, v in last.items() if k != "loss"}}
        print(json.dumps(summary))
        return 0
    from detection.engine.trainer import Trainer

    trainer = Trainer(cfg, build_task(cfg), resume=args.resume, progress=not args.no_progress)
    metrics = trainer.fit()
    summary = {"output_dir": cfg.output_dir, "epochs": trainer.epoch, "steps": trainer.step,
               "train_seconds": round(trainer.seconds, 1), **metrics}
    print(json.dumps(summary))
    return 0
