"""Compare training runs on one figure: detpipe plot RUN_DIR [RUN_DIR ...] --out FILE.png.

Each run's losses, learning rate and val mAP against epoch, read from its metrics.jsonl, one colour per run.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from datasets.core.errors import UserError, cli_main
from datasets.view.plot import FIGURE_SUFFIXES


def parse_args(argv: list[str] | None, prog: str = "detpipe plot") -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="output_dir of a training run")
    parser.add_argument("--out", required=True, help=f"figure to write ({', '.join(FIGURE_SUFFIXES)})")
    return parser.parse_args(argv)


def labels_of(runs: list[str]) -> list[str]:
    """Each run's folder name, or the path as given where two runs share a folder name."""
    names = [Path(run).name or run for run in runs]
    return [name if names.count(name) == 1 else run for name, run in zip(names, runs)]


@cli_main
def main(argv: list[str] | None = None, prog: str = "detpipe plot") -> int:
    args = parse_args(argv, prog)
    if Path(args.out).suffix.lower() not in FIGURE_SUFFIXES:
        raise UserError(f"--out {args.out}: use a file name ending in {', '.join(FIGURE_SUFFIXES)}")
    for run in args.runs:
        if not Path(run).is_dir():
            raise UserError(f"{run}: not a folder (pass a training run's output_dir)")
    from datasets.view.plot import save_figure
    from detection.viz.curves import curves_figure, read_curves

    runs = [read_curves(run, label) for run, label in zip(args.runs, labels_of(args.runs))]
    title = ", ".join(f"{r.label} ({len(r.epochs)} epochs)" for r in runs)
    save_figure(curves_figure(runs, title), args.out)
    print(f"wrote {args.out}")
    return 0

