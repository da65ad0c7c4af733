"""The COCO files an export reads, one per split, checked before anything is written.

Shared by the YOLO and VOC writers: split names, one class list for all splits, image files, leftovers.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from datasets.coco import index_coco, load_coco
from datasets.errors import UserError

SPLIT_NAMES = ("train", "val", "test")


@dataclass
class ExportSplit:
    """One split: its name, COCO file, images and categories by id, annotations by image id."""

    name: str
    source: str
    images: dict
    categories: dict
    by_image: dict

    def category_name(self, ann: dict) -> str:
        return self.categories[ann["category_id"]]["name"]


def parse_splits(annotations: str | None, split_args: list[str] | None) -> list[tuple[str, str]]:
    """(split name, COCO file) pairs from --annotations FILE (the train split) or --split NAME=FILE ..."""
    if annotations:
        return [("train", annotations)]
    pairs = []
    for arg in split_args or []:
        name, sep, path = arg.partition("=")
        if not sep or not path:
            raise UserError(f"--split {arg}: expected NAME=FILE, e.g. --split train=train.json")
        if name not in SPLIT_NAMES:
            raise UserError(f"--split {arg}: the split name must be one of {', '.join(SPLIT_NAMES)}")
        if name in (seen for seen, _ in pairs):
            raise UserError(f"--split {name} is given twice")
        pairs.append((name, path))
    return sorted(pairs, key=lambda pair: SPLIT_NAMES.index(pair[0]))


def load_splits(pairs: list[tuple[str, str]], images_dir: Path) -> list[ExportSplit]:
    """Every split loaded and checked: file names inside --images, files present, no image in two splits."""
    splits, owner = [], {}
    for name, path in pairs:
        split = ExportSplit(name, path, *index_coco(load_coco(path), path))
        for img in split.images.values():
            check_image_file(img["file_name"], images_dir, path)
            if owner.setdefault(img["file_name"], name) != name:
                raise UserError(f"{path}: image {img['file_name']} is also in the {owner[img['file_name']]} split")
        splits.append(split)
    return splits


def check_image_file(file_name: str, images_dir: Path, source: str) -> None:
    """UserError unless file_name is a relative path to an existing file under --images."""
    rel = Path(file_name)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise UserError(f"{source}: file_name '{file_name}' must be a path inside --images")
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
