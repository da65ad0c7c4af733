"""`convert --from voc|yolo|labelme|csv`: any supported annotation format to COCO, one file per split.

Each format lives in its own convert_<format>.py and returns plain records; this file writes COCO.
"""
from __future__ import annotations

import importlib
import os
from pathlib import Path

from datasets.core.coco import check_not_input, save_coco
from datasets.core.errors import UserError
from datasets.formats.records import records_to_coco
from datasets.formats.yolo import convert_root

FORMATS = ("voc", "yolo", "labelme", "csv")


def convert_to_coco(fmt: str, src: str | os.PathLike, images: str | os.PathLike, classes: str | None = None,
                    **options) -> dict:
    """COCO dict from annotations in `fmt` at `src`, images under `images` (options: voc's `difficult`)."""
    module = importlib.import_module(f"datasets.formats.{fmt}")
    records, names = module.convert(src, images, classes, **options)
    return records_to_coco(records, names)


def convert_splits(fmt: str, src: str | os.PathLike, images: str | os.PathLike | None, classes: str | None = None,
                   **options) -> list[tuple[str, Path, dict]]:
    """(split, images folder, COCO dict) per split: several for a YOLO dataset root given without images."""
    if fmt == "yolo" and images is None:
        splits, names = convert_root(src, classes)
        return [(name, folder, records_to_coco(records, names)) for name, folder, records in splits]
    if images is None:
        raise UserError(f"--from {fmt} needs --images, the folder of images")
    return [("", Path(images), convert_to_coco(fmt, src, images, classes, **options))]


def output_paths(out: Path, splits: list[str]) -> list[Path]:
    """The .json file for one split, or OUT/<split>.json in the folder `out` for several."""
    if len(splits) == 1:
        if out.is_dir():
            raise UserError(f"--out {out} is a folder; give a .json file path")
        return [out]
    if out.suffix.lower() == ".json" or out.is_file():
        raise UserError(f"--src has the splits {', '.join(splits)}: give --out a folder for "
                        f"{', '.join(s + '.json' for s in splits)}")
    return [out / f"{name}.json" for name in splits]


def shown(folder: Path) -> str:
    """A folder as the user would type it: relative to the working folder when it is inside it."""
    relative = os.path.relpath(folder)
    return str(folder) if relative.startswith("..") else relative


def run(args) -> None:
    """CLI: python -m datasets convert."""
    if args.difficult is not None and args.fmt != "voc":
        raise UserError("--difficult applies to --from voc only")
    options = {"difficult": args.difficult or "crowd"} if args.fmt == "voc" else {}
    check_not_input(args.out, args.src, args.classes)
    splits = convert_splits(args.fmt, args.src, args.images, args.classes, **options)
    paths = output_paths(Path(args.out), [name for name, _, _ in splits])
    for path in paths:
        check_not_input(path, args.src, args.classes)
    for path, (_name, folder, coco) in zip(paths, splits):
        save_coco(path, coco)
        print(f"wrote {path}: {len(coco['images'])} images, {len(coco['annotations'])} annotations, "
              f"{len(coco['categories'])} categories (file names relative to {shown(folder)})")
