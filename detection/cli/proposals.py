"""Region proposals for an image or a folder of images: detpipe proposals --source IMAGE|DIR
--method selective_search|sliding_window|rpn [--mode fast] [--max N] [--checkpoint CKPT] --out FILE.

Writes FILE as JSON {file_name: [[x, y, w, h], ...]} (best first; names relative to DIR) and prints the speed.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from datasets.core.errors import UserError, cli_main
from datasets.core.images import IMAGE_SUFFIXES, list_images
from detection.proposals.base import ProposalConfig, build_proposer
from detection.proposals.cache import ProposalCache
from detection.proposals.files import write_proposals


def parse_args(argv: list[str] | None, prog: str = "detpipe proposals") -> argparse.Namespace:
    defaults = ProposalConfig()
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, help="an image or a folder of images (searched recursively)")
    parser.add_argument("--out", required=True, help="the JSON file to write")
    parser.add_argument("--method", default=defaults.method, help="selective_search | sliding_window | rpn")
    parser.add_argument("--mode", default=defaults.mode, help="selective_search: single | fast | quality")
    parser.add_argument("--max", type=int, default=2000, help="proposals kept per image, best first (0: all)")
    parser.add_argument("--max-side", type=int, default=defaults.max_side, help="shrink larger images to this")
    parser.add_argument("--min-size", type=int, default=defaults.min_size, help="drop narrower or lower boxes")
    parser.add_argument("--checkpoint", default="", help="rpn: a Faster R-CNN checkpoint (.pt)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: one per CPU)")
    parser.add_argument("--cache", default="", help="keep proposals in this cache folder (default: none kept)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def image_files(source: Path) -> dict[str, Path]:
    """{file_name: path}: the image itself (by its name), or every image under a folder (names relative to it)."""
    if source.is_dir():
        found = {rel.as_posix(): source / rel for rel in list_images(source)}
        if not found:
            raise UserError(f"{source}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
        return found
    if not source.exists():
        raise UserError(f"source not found: {source}")
    if source.suffix.lower() not in IMAGE_SUFFIXES:
        raise UserError(f"{source}: not an image ({', '.join(IMAGE_SUFFIXES)}) or a folder")
    return {source.name: source}


def check_args(args: argparse.Namespace) -> ProposalConfig:
    """The proposal settings of the arguments; UserError for a bad count, method, mode or checkpoint."""
    if args.max < 0:
        raise UserError(f"--max must be 0 (all) or more, got {args.max}")
    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers must be at least 1, got {args.workers}")
    cfg = ProposalConfig(method=args.method, mode=args.mode, max_side=args.max_side, min_size=args.min_size,
                         checkpoint=args.checkpoint)
    build_proposer(cfg)  # unknown method, bad mode or checkpoint: one error now, not one per worker
    return cfg


def propose_all(files: dict[str, Path], cfg: ProposalConfig, cache_root: str, args: argparse.Namespace):
    """({file_name: boxes [P, 4] xyxy}, seconds spent computing) through a proposal cache at `cache_root`."""
    cache = ProposalCache(cache_root, cfg)
    start = time.perf_counter()
    cache.ensure(list(files.values()), workers=args.workers, progress=not args.no_progress)
    seconds = time.perf_counter() - start
    limit = args.max or None
    return {name: cache.get(path)[:limit] for name, path in files.items()}, seconds, cache


@cli_main
def main(argv: list[str] | None = None, prog: str = "detpipe proposals") -> int:
    args = parse_args(argv, prog)
    files = image_files(Path(args.source))
    cfg = check_args(args)
    if args.cache:
        proposals, seconds, cache = propose_all(files, cfg, args.cache, args)
    else:
        with tempfile.TemporaryDirectory(prefix="proposals-") as tmp:
            proposals, seconds, cache = propose_all(files, cfg, tmp, args)
    write_proposals(args.out, proposals)
    mean = sum(len(b) for b in proposals.values()) / len(proposals)
    speed = f"{1000 * seconds / cache.computed:.1f} ms/image" if cache.computed else "all from the cache"
    print(f"{len(proposals)} images, {mean:.0f} proposals per image, {cache.computed} computed ({speed}) "
          f"-> {args.out}")
    return 0

