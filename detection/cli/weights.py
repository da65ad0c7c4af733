"""detpipe weights list | fetch NAME | import torchvision:NAME ... | import CKPT.pt --categories NEW.json ...

Pretrained weights: what is known and cached, the one explicit download, imports into our checkpoints.
"""
from __future__ import annotations

import argparse
import json

from datasets.core.errors import UserError, cli_main

EPILOG = """examples:
  %(prog)s list
  %(prog)s fetch fasterrcnn_mobilenet_v3_large_320_fpn
  %(prog)s import torchvision:fasterrcnn_mobilenet_v3_large_320_fpn --out weights/frcnn_mnv3_320_coco.pt
  %(prog)s import weights/frcnn_mnv3_320_coco.pt --categories data/train.json --out weights/mine.pt

fetch is the only command that downloads (into $TORCH_HOME/hub/checkpoints, where torchvision looks too);
DETPIPE_WEIGHTS_MIRROR=URL takes the same file names from a mirror."""


def parse_args(argv: list[str] | None, prog: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[2],
                                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="list|fetch|import")
    listing = commands.add_parser("list", help="the known weights: file, size, licence, URL, cached or not")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    fetch = commands.add_parser("fetch", help="download NAME into torch's hub cache, checking its hash")
    fetch.add_argument("name", help="a name from `list`, e.g. fasterrcnn_resnet50_fpn or resnet50")
    fetch.add_argument("--no-progress", action="store_true", help="no progress bar")
    imp = commands.add_parser("import", help="torchvision:NAME -> our checkpoint; or CKPT.pt -> new categories")
    imp.add_argument("source", help="torchvision:NAME (a Faster R-CNN or an SSD), or one of our checkpoints to "
                                     "remap")
    imp.add_argument("--file", help="torchvision:NAME's weights file (default: the one `fetch` put in the cache)")
    imp.add_argument("--categories", help="COCO json: torchvision:NAME's categories when not COCO's (label i is "
                                          "the category with id i); for CKPT.pt, the new category list")
    imp.add_argument("--out", required=True, help="the checkpoint to write")
    return parser.parse_args(argv)


def list_weights(as_json: bool) -> None:
    from detection.weights.catalog import cache_dir, cached_path, catalog

    if not as_json:
        print(f"cache: {cache_dir()}  (fetch NAME downloads into it; import reads it)")
    for entry in catalog():
        cached = cached_path(entry).is_file()
        if as_json:
            print(json.dumps({"name": entry.name, "kind": entry.kind, "file": entry.file_name, "url": entry.url,
                              "size_mb": entry.size_mb, "licence": entry.licence, "cached": cached,
                              "path": str(cached_path(entry))}))
        else:
            mark = "cached" if cached else "-"
            print(f"{entry.name:40s} {entry.kind:8s} {entry.size_mb:6.1f} MB  {mark:6s}  {entry.licence}\n"
                  f"    {entry.url}")


def run_import(args: argparse.Namespace) -> None:
    if args.source.startswith("torchvision:"):
        from detection.weights.torchvision_import import import_torchvision

        done = import_torchvision(args.source, args.out, args.file, args.categories)
        print(f"wrote {done['out']}: torchvision:{done['torchvision']} as {done['family']} on {done['backbone']}, "
              f"{done['categories']} labels, input size {done['input_size']} (from {done['file']})")
        return
    if args.file:
        raise UserError(f"--file is for torchvision:NAME; {args.source} is read as one of our checkpoints")
    if not args.categories:
        raise UserError(f"import {args.source}: give --categories NEW.json (the category list to remap onto), or "
                        f"torchvision:NAME to import torchvision's weights")
    from detection.weights.finetune import remap_checkpoint

    result = remap_checkpoint(args.source, args.categories, args.out)
    print(f"wrote {args.out}, " + result.line(args.source, what="remapped from"))


@cli_main
def main(argv: list[str] | None = None, prog: str = "detpipe weights") -> int:
    args = parse_args(argv, prog)
    if args.command == "list":
        list_weights(args.json)
    elif args.command == "fetch":
        from detection.weights.catalog import find
        from detection.weights.fetch import fetch

        entry = find(args.name)
        path = fetch(entry, progress=not args.no_progress)
        print(f"{entry.name}: {path}")
    else:
        run_import(args)
    return 0
