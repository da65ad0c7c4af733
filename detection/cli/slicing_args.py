"""The sliced-inference flags of predict, eval and serve (--slice, --overlap, --slice-full, --slice-merge), and the
SliceOptions they give, checked: one place for their names, defaults and help texts."""
from __future__ import annotations

import argparse

from detection.inference.slice_options import MERGES, MIN_SLICE, SliceOptions

DEFAULTS = SliceOptions()


def add_slice_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the four flags to `parser`, in a group of their own."""
    group = parser.add_argument_group("sliced inference (large images, small objects)")
    group.add_argument("--slice", type=int, default=0, metavar="S",
                       help=f"cut each image into SxS windows (at least {MIN_SLICE}; the training tile size is a "
                            "good S), run them through the model in batches and merge their boxes (default 0: the "
                            "whole image at once)")
    group.add_argument("--overlap", type=float, default=DEFAULTS.overlap, metavar="F",
                       help=f"fraction of a window its neighbour shares, in [0, 0.9) (default {DEFAULTS.overlap})")
    group.add_argument("--slice-full", action="store_true",
                       help="also run the whole image once (catches objects larger than a window)")
    group.add_argument("--slice-merge", choices=MERGES, default=DEFAULTS.merge,
                       help="merge boxes across windows by class-wise NMS, or greedy NMM by intersection over the "
                            f"smaller box (one box for an object a window border cut; default {DEFAULTS.merge})")


def slice_options(args: argparse.Namespace, batch: int = DEFAULTS.batch) -> SliceOptions | None:
    """The flags' SliceOptions, windows run `batch` at a time; None without --slice. UserError (exit 1) naming the
    flag for a slice under MIN_SLICE or an overlap outside [0, 0.9)."""
    options = SliceOptions(size=args.slice, overlap=args.overlap, full=args.slice_full, merge=args.slice_merge,
                           batch=batch).check()
    return options if options.size else None
