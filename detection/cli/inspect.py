"""See inside a model: detpipe inspect --config CFG | --checkpoint CKPT | --backbone NAME [--input 3xHxW].

Every layer's output shape, parameters, multiply-adds, window and receptive field; the feature maps; with
--annotations, whether the maps see the dataset's boxes and their anchors; --json for one JSON object.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from datasets.core.errors import UserError, cli_main

COCO_CLASSES = 80


def parse_args(argv: list[str] | None, prog: str = "detpipe inspect") -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", help="a YAML config: its detector, built without pretrained weights")
    source.add_argument("--checkpoint", help="a .pt written by detection.train")
    source.add_argument("--backbone", help="a BACKBONES registry entry, e.g. resnet18 (a wrong name lists them)")
    parser.add_argument("--input", help="CxHxW of the image, e.g. 3x320x320 (default: the config's "
                                        "data.input_size; 320 for a backbone)")
    parser.add_argument("--annotations", help="a COCO file: do the receptive fields cover its boxes?")
    parser.add_argument("--num-classes", type=int, help=f"classes of a --config detector (default: the "
                                                        f"--annotations categories, else {COCO_CLASSES})")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    return parser.parse_args(argv)


def class_count(args: argparse.Namespace) -> int:
    if args.num_classes is not None:
        if args.num_classes < 1:
            raise UserError(f"--num-classes must be at least 1, got {args.num_classes}")
        return args.num_classes
    if args.annotations:
        from datasets.core.coco import load_coco

        return max(1, len(load_coco(args.annotations)["categories"]))
    return COCO_CLASSES


def subject_of(args: argparse.Namespace):
    from detection.inspect.build import from_backbone, from_checkpoint, from_config

    if args.backbone:
        return from_backbone(args.backbone)
    if args.config:
        return from_config(args.config, class_count(args))
    return from_checkpoint(args.checkpoint)


def inspect_subject(subject, shape: tuple[int, int, int], text: str):
    """Run the inspection; a model that cannot take this input size is the user's choice of --input."""
    from detection.inspect.layers import inspect_model

    try:
        return inspect_model(subject.model, shape)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"--input {text}: the model cannot run on this size ({first})") from None


@cli_main
def main(argv: list[str] | None = None, prog: str = "detpipe inspect") -> int:
    args = parse_args(argv, prog)
    from detection.inspect.build import parse_input

    shape = parse_input(args.input) if args.input else None
    if args.annotations and not Path(args.annotations).is_file():
        raise UserError(f"--annotations: no such file: {args.annotations}")
    subject = subject_of(args)
    shape = shape or (3, subject.side, subject.side)
    report = inspect_subject(subject, shape, "x".join(map(str, shape)))
    if args.annotations:
        from detection.inspect.anchor_sides import largest_anchor_sides
        from detection.inspect.coverage import coverage

        head = [m for m in report.feature_maps if m.head]
        anchors = largest_anchor_sides(subject.family, subject.options, [m.name for m in head],
                                       getattr(subject.model, "input_size", min(shape[1:])))
        report.coverage = coverage(args.annotations, min(shape[1:]), head, anchors)
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        from detection.inspect.table import render

        print(render(report, f"{subject.title}, input {'x'.join(map(str, shape))}"))
    return 0

