"""Predict on an image, a folder of images or a video:
detpipe predict --checkpoint CKPT --source IMAGE|DIR|VIDEO --out DIR [--score-threshold T] [--slice S --overlap F].

Writes DIR/predictions.json (COCO results with file_name; image_id from --annotations when given) and drawn copies;
the work is detection.inference.files.predict_source. With --slice, each image (or video frame) runs as overlapping
SxS windows whose boxes are merged (detection.inference.slicing).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from datasets.core.errors import UserError, cli_main
from detection.cli.slicing_args import add_slice_arguments, slice_options
from detection.config import DEFAULT_MAX_DETECTIONS, DEFAULT_SCORE_THRESHOLD


def parse_args(argv: list[str] | None, prog: str = "detpipe predict") -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="a .pt written by detection.train")
    parser.add_argument("--source", required=True, help="an image, a folder of images, or a video file")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--score-threshold", type=float, metavar="T",
                        help="the model's score threshold for this run, below or above its checkpoint's (default: "
                             f"the checkpoint's model.postprocess.score_threshold, {DEFAULT_SCORE_THRESHOLD} unless "
                             "its config set another)")
    parser.add_argument("--max-detections", type=int, metavar="N",
                        help="detections per image, more or fewer than the checkpoint's (default: its "
                             f"model.postprocess.max_detections, {DEFAULT_MAX_DETECTIONS} unless its config set "
                             "another)")
    parser.add_argument("--annotations", help="COCO file whose image ids the results should carry")
    parser.add_argument("--batch-size", type=int, default=8, help="images per model call (with --slice: windows)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--no-draw", action="store_true", help="write predictions.json only")
    add_slice_arguments(parser)
    return parser.parse_args(argv)


@cli_main
def main(argv: list[str] | None = None, prog: str = "detpipe predict") -> int:
    args = parse_args(argv, prog)
    source = Path(args.source)
    if not source.exists():
        raise UserError(f"source not found: {source}")
    if args.score_threshold is not None and not 0 <= args.score_threshold <= 1:
        raise UserError(f"--score-threshold must be in 0..1, got {args.score_threshold}")
    if args.batch_size < 1 or (args.max_detections is not None and args.max_detections < 1):
        raise UserError("--batch-size and --max-detections must be at least 1")
    slicing = slice_options(args, batch=args.batch_size)
    from datasets.core.atomic import write_json
    from detection.inference.files import PredictRun, predict_source
    from detection.inference.predictor import Predictor

    predictor = Predictor.from_checkpoint(args.checkpoint, args.device)
    run = PredictRun(Path(args.out), args.score_threshold, args.max_detections, args.batch_size, not args.no_draw,
                     slicing)
    results = predict_source(predictor, source, run, args.annotations)
    write_json(Path(args.out) / "predictions.json", results)
    print(f"{len(results)} detections -> {Path(args.out) / 'predictions.json'}")
    return 0
