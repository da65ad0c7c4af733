"""Evaluate a checkpoint with COCOeval: detpipe eval --checkpoint CKPT --annotations FILE --images DIR [--slice S].

Prints the COCO table, AP per object size and the per-class table; writes metrics, per-class AP and the confusion
matrix (--out) and the pictures (--plots DIR: pr_curves.png, confusion_matrix.png, val_predictions.jpg). With
--slice, each original image runs as overlapping SxS windows (as `detpipe predict --slice` does).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from datasets.core.errors import UserError, cli_main
from detection.cli.slicing_args import add_slice_arguments, slice_options
from detection.config import EVAL_MAX_DETECTIONS, EVAL_SCORE_THRESHOLD
from detection.engine.confusion import SCORE_THRESHOLD


def parse_args(argv: list[str] | None, prog: str = "detpipe eval") -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="a .pt written by detection.train")
    parser.add_argument("--annotations", required=True, help="COCO annotations json with ground truth")
    parser.add_argument("--images", required=True, help="folder the annotations' file_names are in")
    parser.add_argument("--out", help="write metrics JSON here (with per_class and confusion_matrix)")
    parser.add_argument("--plots", metavar="DIR", help="draw pr_curves.png, confusion_matrix.png and "
                        "val_predictions.jpg into this folder")
    parser.add_argument("--confusion-score", type=float, default=SCORE_THRESHOLD, metavar="T",
                        help="score threshold of the confusion matrix and the drawn predictions "
                             f"(default {SCORE_THRESHOLD})")
    parser.add_argument("--score-threshold", type=float, default=EVAL_SCORE_THRESHOLD, metavar="T",
                        help="the model's score threshold while evaluating, below or above its checkpoint's "
                             f"(default {EVAL_SCORE_THRESHOLD}: COCO AP counts low-scoring detections too)")
    parser.add_argument("--max-detections", type=int, default=EVAL_MAX_DETECTIONS, metavar="N",
                        help=f"the model's detections per image while evaluating (default {EVAL_MAX_DETECTIONS})")
    parser.add_argument("--batch-size", type=int, default=8, help="images per model call (with --slice: windows)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    add_slice_arguments(parser)
    return parser.parse_args(argv)


@cli_main
def main(argv: list[str] | None = None, prog: str = "detpipe eval") -> int:
    args = parse_args(argv, prog)
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {args.batch_size}")
    if not 0 <= args.confusion_score <= 1:
        raise UserError(f"--confusion-score must be in 0..1, got {args.confusion_score}")
    if not 0 <= args.score_threshold <= 1 or args.max_detections < 1:
        raise UserError(f"--score-threshold must be in 0..1 and --max-detections at least 1, got "
                        f"{args.score_threshold} and {args.max_detections}")
    if args.plots and Path(args.plots).exists() and not Path(args.plots).is_dir():
        raise UserError(f"--plots {args.plots}: not a folder")
    slicing = slice_options(args, batch=args.batch_size)
    from datasets.core.atomic import write_json
    from detection.engine.checkpoint import load_model
    from detection.engine.report import PICTURES, evaluate_checkpoint

    loaded = load_model(args.checkpoint, args.device, expect="detector")
    found = evaluate_checkpoint(loaded, args.annotations, args.images, batch_size=args.batch_size,
                                score_threshold=args.score_threshold, max_detections=args.max_detections,
                                plots=args.plots, confusion_score=args.confusion_score, slicing=slicing)
    print(found.table, end="")
    print(found.sizes_line(), end="")
    print(found.per_class_table(), end="")
    if args.out:
        write_json(args.out, found.record(), indent=2)
    if args.plots:
        print(f"pictures: {', '.join(str(Path(args.plots) / name) for name in PICTURES)}")
    print(json.dumps({k: round(v, 5) for k, v in found.metrics.items()}))
    return 0
