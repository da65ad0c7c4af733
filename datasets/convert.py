"""`convert --from voc|yolo|labelme|csv`: any supported annotation format to one COCO file.

Each format lives in its own convert_<format>.py and returns plain records; this file writes COCO.
"""
from __future__ import annotations

import importlib
import os
from pathlib import Path

from datasets.coco import check_not_input, save_coco
from datasets.errors import UserError
from datasets.records import records_to_coco

FORMATS = ("voc", "yolo", "labelme", "csv")


def convert_to_coco(fmt: str, src: str | os.PathLike, images: str | os.PathLike, classes: str | None = None) -> dict:
    """COCO dict from annotations in `fmt` at `src`, images under `images`."""
    module = importlib.import_module(f"datasets.convert_{fmt}")
    records, names = module.convert(src, images, classes)
    return records_to_coco(records, names)


def run(args) -> None:
    """CLI: python -m datasets convert."""
    check_not_input(args.out, args.src, args.classes)
    if Path(args.out).is_dir():
        raise UserError(f"--out {args.out} is a folder; give a .json file path")
    coco = convert_to_coco(args.fmt, args.src, args.images, args.classes)
    save_coco(args.out, coco)
    print(f"wrote {args.out}: {len(coco['images'])} images, {len(coco['annotations'])} annotations, "
          f"{len(coco['categories'])} categories")
