"""`export --to yolo|voc`: COCO files, one per split, out to the Ultralytics layout or a Pascal VOC folder.

Images are hard-linked where the filesystem allows, else copied; crowd regions are left out (counted).
"""
from __future__ import annotations

import sys
from pathlib import Path

from datasets.core.coco import check_not_input, require_dir
from datasets.core.errors import UserError
from datasets.formats import export_voc, export_yolo
from datasets.formats.export_splits import ExportSplit, load_splits, parse_splits


def crowd_note(splits: list[ExportSplit], fmt: str) -> None:
    """Say how many crowd regions were left out (VOC keeps those marked difficult)."""
    crowd = sum(1 for split in splits for anns in split.by_image.values() for a in anns
                if a.get("iscrowd") and not (fmt == "voc" and export_voc.voc_keeps(a)))
    if crowd:
        print(f"note: left out {crowd} crowd annotations ({fmt} has no crowd regions)", file=sys.stderr)


def run(args) -> None:
    """CLI: python -m datasets export."""
    out = Path(args.out)
    if args.images is not None:
        require_dir(args.images, "--images")
    elif args.annotations:
        raise UserError("--annotations needs --images, the folder its file names are relative to")
    if args.segments and args.to != "yolo":
        raise UserError("--segments applies to --to yolo only")
    split_args = parse_splits(args.annotations, args.split)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder")
    splits = load_splits(split_args, args.images)
    check_not_input(out, *(split.images_dir for split in splits), *(split.source for split in splits))
    if args.to == "yolo":
        counts = export_yolo.export(splits, out, segments=args.segments, copy=args.copy_images)
    else:
        counts = export_voc.export(splits, out, copy=args.copy_images)
    crowd_note(splits, args.to)
    if counts.get("encoded"):
        print(f"note: re-encoded {counts['encoded']} non-JPEG images as JPEG (VOC readers open JPEGImages/<id>.jpg)",
              file=sys.stderr)
    how = ", ".join(f"{n} {word}" for word, n in counts.items() if word != "images" and n)
    sizes = ", ".join(f"{split.name} {len(split.images)}" for split in splits)
    print(f"wrote {args.to} for {counts['images']} images ({sizes}) to {out}; images {how or 'none'}")
