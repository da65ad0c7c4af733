"""Command line of the datasets package: one subcommand per module, imported on use.

Bad input ends with `error: ...` on stderr and exit status 1 (argparse mistakes too).
"""
from __future__ import annotations

import argparse
import importlib
import sys

from detection.errors import UserError, cli_main


class Parser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors exit with status 1 like every other user mistake."""

    def error(self, message: str) -> None:
        self.print_usage(sys.stderr)
        self.exit(1, f"error: {message}\n")


def add_synth(sub) -> None:
    p = sub.add_parser("synth", help="render a synthetic shapes dataset (COCO with masks)")
    p.add_argument("--out", required=True, help="output folder: images/ and annotations.json")
    p.add_argument("--num-images", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--image-size", type=int, default=128, help="square side in pixels (default 128)")
    p.add_argument("--min-size", type=int, default=16, help="smallest object extent (default 16)")
    p.add_argument("--max-size", type=int, default=56, help="largest object extent (default 56)")
    p.add_argument("--max-objects", type=int, default=4, help="objects per image: 1..N (5%% of images get none)")
    p.add_argument("--crowd-fraction", type=float, default=0.0,
                   help="fraction of images that get one iscrowd=1 cluster of tiny shapes (default 0)")
    p.add_argument("--imbalance", type=float, default=1.0,
                   help="count ratio of the commonest to the rarest class: circle > square > triangle (default 1)")
    p.add_argument("--occlusion", action="store_true",
                   help="let later shapes cover earlier ones; the visible mask is annotated")
    p.add_argument("--format", choices=["png", "jpg"], default="png")


COMMANDS = {
    "synth": ("datasets.synth", add_synth),
}


def build_parser() -> Parser:
    """The top parser with every subcommand."""
    parser = Parser(prog="python -m datasets", description="Build, convert, check and inspect COCO datasets.")
    sub = parser.add_subparsers(dest="command", metavar="command", parser_class=Parser)
    sub.required = True
    for _module, add in COMMANDS.values():
        add(sub)
    return parser


@cli_main
def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and run the chosen command; 0 on success, 1 on a user mistake."""
    args = build_parser().parse_args(argv)
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        module.run(args)
    except BrokenPipeError:
        return 0
    except (OSError, MemoryError) as exc:
        raise UserError(str(exc)) from exc
    return 0
