"""YOLO txt labels (one `<stem>.txt` per image, normalised cx cy w h, or polygons) to COCO records.

A labels folder with --images gives one file (labels matched by relative path or by stem, split subfolders
included); a dataset root (data.yaml or images/ + labels/) one per split.
"""
from __future__ import annotations

import os
import sys
from functools import partial
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from datasets.core.errors import UserError
from datasets.core.images import image_size
from datasets.formats.records import ImageFinder, ImageRecord, ObjectRecord, read_class_names
from datasets.formats.yolo_layout import find_data_yaml, label_path, read_layout

CLASS_FILES = ("data.yaml", "data.yml", "classes.txt", "obj.names")


class UnmatchedLabels(UserError):
    """Label files are there, and none of them belongs to an image."""


def find_classes_file(folders: list[Path]) -> Path:
    """The first class list in the folders; UserError saying how to give one if there is none."""
    for folder in folders:
        for name in CLASS_FILES:
            if (folder / name).is_file():
                return folder / name
    raise UserError(f"no class names in {folders[0]}: pass --classes FILE or put data.yaml / classes.txt there")


def parse_numbers(tokens: list[str], where: str) -> list[float]:
    try:
        return [float(t) for t in tokens]
    except ValueError:
        raise UserError(f"{where}: expected numbers, got '{' '.join(tokens)}'")


def check_normalised(values: list[float], where: str) -> list[float]:
    """Clip values within 0.01 of [0, 1]; UserError for values clearly outside."""
    if any(v < -0.01 or v > 1.01 for v in values):
        raise UserError(f"{where}: coordinates must be normalised to [0, 1], got {values}")
    return [min(max(v, 0.0), 1.0) for v in values]


def parse_line(line: str, names: list[str], width: int, height: int, where: str) -> ObjectRecord:
    """One label line: `class cx cy w h` or `class x1 y1 x2 y2 x3 y3 ...` (segment)."""
    tokens = line.split()
    if len(tokens) < 5 or (len(tokens) > 5 and (len(tokens) % 2 == 0 or len(tokens) < 7)):
        raise UserError(f"{where}: expected 'class cx cy w h' or 'class x1 y1 x2 y2 x3 y3 ...', got '{line.strip()}'")
    if not tokens[0].isdigit() or int(tokens[0]) >= len(names):
        raise UserError(f"{where}: class '{tokens[0]}' is not an index into the {len(names)} class names")
    category = names[int(tokens[0])]
    values = check_normalised(parse_numbers(tokens[1:], where), where)
    if len(values) == 4:
        cx, cy, w, h = values
        if w <= 0 or h <= 0:
            raise UserError(f"{where}: box width and height must be positive")
        x0, y0 = max(cx - w / 2, 0.0) * width, max(cy - h / 2, 0.0) * height
        x1, y1 = min(cx + w / 2, 1.0) * width, min(cy + h / 2, 1.0) * height
        return ObjectRecord(category, [x0, y0, x1 - x0, y1 - y0], where=where)
    polygon = [v * (width if i % 2 == 0 else height) for i, v in enumerate(values)]
    return ObjectRecord(category, [], [[round(v, 3) for v in polygon]], where=where)


def read_labels(path: Path, names: list[str], width: int, height: int) -> list[ObjectRecord]:
    """Objects of one label file (missing file: no objects)."""
    if not path.is_file():
        return []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a text file")
    return [parse_line(line, names, width, height, f"{path}:{n}")
            for n, line in enumerate(lines, 1) if line.strip()]


def label_files(labels: Path) -> list[Path]:
    """The .txt label files under a folder (class lists left out)."""
    return sorted(p for p in labels.rglob("*.txt") if p.name not in CLASS_FILES) if labels.is_dir() else []


def stem_index(labels: Path) -> dict[str, list[Path]]:
    """Label files under a folder by stem, for images whose label sits in a split subfolder."""
    index: dict[str, list[Path]] = {}
    for path in label_files(labels):
        index.setdefault(path.stem, []).append(path)
    return index


def pick_by_folder(found: list[Path], labels: Path, image: Path) -> Path:
    """The one of several same-stem labels whose folders under `labels` end the image's folder path
    (labels/val/x.txt for images/val/x.png); UserError when that does not single one out."""
    folders = Path(os.path.abspath(image)).parent.parts
    tails = [p for p in found if folders[len(folders) - len(p.parent.relative_to(labels).parts):]
             == p.parent.relative_to(labels).parts]
    if len(tails) != 1:
        raise UserError(f"{image}: {len(found)} label files are named {image.stem}.txt under {labels} "
                        f"({found[0]}, {found[1]}, ...); give --src the labels folder of this split")
    return tails[0]


def folder_label_path(labels: Path, images: Path, by_stem: dict[str, list[Path]], rel: Path) -> Path:
    """Label file of image `rel` (under `images`) in a labels folder: the same relative path with .txt,
    else flat by stem, else the label of that stem in a subfolder (labels/train/x.txt); the flat path
    (missing) when there is none."""
    nested, flat = labels / rel.with_suffix(".txt"), labels / (rel.stem + ".txt")
    if nested.is_file() or flat.is_file():
        return nested if nested.is_file() else flat
    found = by_stem.get(rel.stem, [])
    if len(found) > 1:
        return pick_by_folder(found, labels, images / rel)
    return found[0] if found else flat


def check_labels_used(labels: Path, used: set[Path], images: list[Path],
                      example: tuple[Path, Path] | None) -> None:
    """UserError if the folder holds label files and none belongs to an image; a warning for some left over."""
    files = label_files(labels)
    orphans = [p for p in files if p not in used]
    where = ", ".join(map(str, images))
    if files and len(orphans) == len(files):
        hint = f" (the label of {example[0]} would be {example[1]})" if example else ""
        raise UnmatchedLabels(f"none of the {len(files)} label files in {labels} matches an image in {where}{hint}")
    if orphans:
        print(f"warning: {len(orphans)} label files in {labels} have no image in {where} (first: {orphans[0]})",
              file=sys.stderr)


def read_split(images: Path, labels: Path, lookup: Callable[[Path], Path], names: list[str],
               used: set[Path]) -> list[ImageRecord]:
    """Records for every image under `images`; `lookup` gives an image's label file (added to `used`)."""
    finder = ImageFinder(images)
    records = []
    for rel in tqdm(finder.files, desc="yolo", disable=None):
        width, height = image_size(finder.folder / rel)
        path = lookup(rel)
        if path.is_file():
            used.add(path)
        records.append(ImageRecord(rel.as_posix(), width, height, read_labels(path, names, width, height)))
    example = (images / finder.files[0], lookup(finder.files[0])) if finder.files else None
    check_labels_used(labels, used, [images], example)
    return records


def convert(src: str | os.PathLike, images: str | os.PathLike, classes: str | None = None) -> tuple[list[ImageRecord], list[str]]:
    """Records for every image under `images`; labels from the `src` folder, or from `src`/labels."""
    labels = Path(src)
    if not labels.is_dir():
        raise UserError(f"--src {src}: expected the folder of YOLO .txt label files, or a dataset root")
    labels = labels / "labels" if (labels / "labels").is_dir() else labels
    names = read_class_names(classes or find_classes_file([labels, labels.parent, labels.parent.parent]))
    try:
        lookup = partial(folder_label_path, labels, Path(images), stem_index(labels))
        return read_split(Path(images), labels, lookup, names, set()), names
    except UnmatchedLabels as exc:
        if labels == Path(src) or not (find_data_yaml(Path(src)) or (Path(src) / "images").is_dir()):
            raise
        raise UnmatchedLabels(f"{exc}; to read the dataset root {src} split by split, leave out --images") from None


def root_label_path(images: Path, rel: Path) -> Path:
    return label_path(images / rel)


def convert_root(src: str | os.PathLike,
                 classes: str | None = None) -> tuple[list[tuple[str, Path, list[ImageRecord]]], list[str]]:
    """(split, images folder, records) per split of a dataset root; labels found by Ultralytics' rule."""
    if not Path(src).is_dir():
        raise UserError(f"--src {src}: no such folder")
    root = Path(os.path.abspath(src))
    layout = read_layout(root)
    names = read_class_names(classes or find_classes_file([root, root / "labels"]))
    used: set[Path] = set()
    splits, label_dirs = [], []
    for name, images in layout:
        label_dirs.append(label_path(images / "x").parent)
        splits.append((name, images, read_split(images, label_dirs[-1], partial(root_label_path, images), names, used)))
    if root / "labels" not in label_dirs:
        check_labels_used(root / "labels", used, [images for _, images in layout], None)
    return splits, names
