"""Tracking metrics from text files: detpipe track-metrics --gt FILE --results FILE
[--kind auto|sot|mot] [--plot PNG]. Prints a small table, then the numbers as one JSON line.

sot: OTB files (x,y,w,h a line): success AUC, precision@20 px, mean IoU. mot: MOTChallenge files: MOTA, IDF1, HOTA.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from datasets.core.errors import UserError, cli_main

MOT_TABLE = ("mota", "idf1", "hota", "deta", "assa", "motp", "id_switches", "false_positives", "misses",
             "gt_boxes", "gt_ids", "tracker_ids", "frames")
SOT_TABLE = ("success_auc", "precision_20", "mean_iou", "frames")


def parse_args(argv: list[str] | None, prog: str = "detpipe track-metrics") -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--gt", required=True, help="ground truth: gt/gt.txt (mot) or groundtruth_rect.txt (sot)")
    parser.add_argument("--results", required=True, help="tracker output in the same format family")
    parser.add_argument("--kind", choices=["auto", "sot", "mot"], default="auto",
                        help="auto (default): sot when the ground truth's lines hold 4 numbers, else mot")
    parser.add_argument("--iou", type=float, default=0.5, help="mot: least IoU of a match for MOTA/IDF1 (default 0.5)")
    parser.add_argument("--plot", metavar="PNG", help="sot: write the success and precision plots")
    return parser.parse_args(argv)


def guess_kind(path: str) -> str:
    """sot when the file's first line holds exactly four numbers (OTB), else mot."""
    from detection.tracking.mot_io import SEPARATORS, read_lines

    lines = read_lines(path, "ground-truth")
    if not lines:
        raise UserError(f"{path}: the ground-truth file is empty")
    return "sot" if len([f for f in SEPARATORS.split(lines[0][1]) if f]) == 4 else "mot"


def evaluate(args: argparse.Namespace, kind: str) -> dict:
    """The metrics of one results file against its ground truth."""
    from detection.tracking.metrics import mot_metrics, sot_metrics, success_plot
    from detection.tracking.mot_io import read_mot, read_rects

    if kind == "mot":
        if args.plot:
            raise UserError("--plot draws the OTB success and precision plots: use it with --kind sot")
        if not 0 < args.iou <= 1:
            raise UserError(f"--iou must be in (0, 1], got {args.iou}")
        return mot_metrics(read_mot(args.gt, "ground-truth"), read_mot(args.results, "results"), args.iou)
    gt, results = read_rects(args.gt, "ground-truth"), read_rects(args.results, "results")
    try:
        metrics = sot_metrics(gt, results)
    except UserError as exc:
        raise UserError(f"{args.results} against {args.gt}: {exc}") from None
    if args.plot:
        success_plot(metrics, args.plot)
    return metrics


def table(metrics: dict, keys: tuple[str, ...]) -> str:
    """Two aligned rows: names, then values (fractions with 3 decimals)."""
    cells = [f"{metrics[k]:.3f}" if isinstance(metrics[k], float) else str(metrics[k]) for k in keys]
    widths = [max(len(k), len(c)) for k, c in zip(keys, cells)]
    return "\n".join("  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in (keys, cells))


@cli_main
def main(argv: list[str] | None = None, prog: str = "detpipe track-metrics") -> int:
    args = parse_args(argv, prog)
    kind = guess_kind(args.gt) if args.kind == "auto" else args.kind
    metrics = evaluate(args, kind)
    try:
        print(table(metrics, MOT_TABLE if kind == "mot" else SOT_TABLE))
        if args.plot:
            print(f"plot -> {args.plot}")
        print(json.dumps({k: v for k, v in metrics.items() if not isinstance(v, list)}), flush=True)  # curves: --plot
    except BrokenPipeError:  # `| head` has all it wanted; what is left to flush goes nowhere (Python docs, SIGPIPE)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0

