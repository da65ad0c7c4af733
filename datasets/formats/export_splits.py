"""The COCO files an export reads, one per split, checked before anything is written.

Shared by the YOLO and VOC writers: split names, images folders, one class list, image files, leftovers.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from datasets.core.coco import index_coco, load_coco, require_dir
from datasets.core.errors import UserError

SPLIT_NAMES = ("train", "val", "test")


@dataclass
class ExportSplit:
    """One split: its name, COCO file, images folder, images and categories by id, annotations by image id."""

    name: str
    source: str
    images_dir: Path
    images: dict
    categories: dict
    by_image: dict

    def category_name(self, ann: dict) -> str:
        return self.categories[ann["category_id"]]["name"]


@dataclass
class SplitArg:
    """What the command line says of one split: its name, COCO file and images folder (None: --images)."""

    name: str
    path: str
    images: str | None = None


def split_file_and_images(arg: str, rest: str) -> tuple[str, str | None]:
    """FILE or FILE:IMAGES of a --split: the whole when it is a file, else cut at the first colon after
    which the left part is a file (so paths with colons still work)."""
    if Path(rest).is_file() or ":" not in rest:
        return rest, None
    for at in [i for i, char in enumerate(rest) if char == ":"]:
        if Path(rest[:at]).is_file() and rest[at + 1 :]:
            return rest[:at], rest[at + 1 :]
    raise UserError(f"--split {arg}: no COCO file found in '{rest}' (expected NAME=FILE or NAME=FILE:IMAGES)")


def parse_splits(annotations: str | None, split_args: list[str] | None) -> list[SplitArg]:
    """The splits of --annotations FILE (the train split) or --split NAME=FILE[:IMAGES] ..., in split order."""
    if annotations:
        return [SplitArg("train", annotations)]
    splits: list[SplitArg] = []
    for arg in split_args or []:
        name, sep, rest = arg.partition("=")
        if not sep or not rest:
            raise UserError(f"--split {arg}: expected NAME=FILE or NAME=FILE:IMAGES, e.g. --split train=train.json")
        if name not in SPLIT_NAMES:
            raise UserError(f"--split {arg}: the split name must be one of {', '.join(SPLIT_NAMES)}")
        if name in (seen.name for seen in splits):
            raise UserError(f"--split {name} is given twice")
        splits.append(SplitArg(name, *split_file_and_images(arg, rest)))
    return sorted(splits, key=lambda split: SPLIT_NAMES.index(split.name))


def split_images_dir(split: SplitArg, default: str | None) -> Path:
    """The images folder of a split: its own (NAME=FILE:IMAGES), else --images; UserError if neither exists."""
    if split.images is not None:
        return require_dir(split.images, f"--split {split.name}=...: images folder")
    if default is None:
        raise UserError(f"--split {split.name}={split.path}: give its images folder as "
                        f"{split.name}={split.path}:IMAGES, or --images for every split")
    return require_dir(default, "--images")


def load_splits(split_args: list[SplitArg], default_images: str | None) -> list[ExportSplit]:
    """Every split loaded and checked: file names inside its images folder, files present, no image file
    in two splits."""
    splits, owner = [], {}
    for arg in split_args:
        images_dir = split_images_dir(arg, default_images)
        split = ExportSplit(arg.name, arg.path, images_dir, *index_coco(load_coco(arg.path), arg.path))
        for img in split.images.values():
            check_image_file(img["file_name"], images_dir, arg.path)
            file = (images_dir / img["file_name"]).resolve()
            if owner.setdefault(file, arg.name) != arg.name:
                raise UserError(f"{arg.path}: image {img['file_name']} is also in the {owner[file]} split")
        splits.append(split)
    return splits


def check_image_file(file_name: str, images_dir: Path, source: str) -> None:
    """UserError unless file_name is a relative path to an existing file under the images folder."""
    rel = Path(file_name)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise UserError(f"{source}: file_name '{file_name}' must be a path inside the images folder {images_dir}")
    if not (images_dir / rel).is_file():
        raise UserError(f"{source}: image {file_name} not found in {images_dir}")


def class_names(splits: list[ExportSplit]) -> list[str]:
    """Category names of all splits in one list: the first file's id order, then names the others add."""
    names: list[str] = []
    for split in splits:
        for cat in sorted(split.categories.values(), key=lambda c: c["id"]):
            if cat["name"] not in names:
                names.append(cat["name"])
    return names


def warn_leftovers(folders: list[Path], written: set[Path]) -> None:
    """Warn about files in the output folders that this export did not write (from an earlier run)."""
    left = [p for folder in folders if folder.is_dir() for p in folder.rglob("*")
            if p.is_file() and not p.name.startswith(".") and p not in written]
    if left:
        print(f"warning: {len(left)} files in {', '.join(map(str, folders))} are not part of this export "
              f"(first: {left[0]}); remove them or export to an empty folder", file=sys.stderr)
