"""CSV boxes to COCO records. Header: file_name,x1,y1,x2,y2,category (extra columns ignored).

x1,y1,x2,y2 are absolute pixel corners (w = x2 - x1); a row with only file_name is an image with no boxes.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path

from datasets.core.errors import UserError
from datasets.core.images import image_size
from datasets.formats.records import ImageFinder, ImageRecord, ObjectRecord, read_class_names

COLUMNS = ("file_name", "x1", "y1", "x2", "y2", "category")


def parse_row(row: dict, where: str) -> ObjectRecord | None:
    """One CSV row as an object (None for an image-only row)."""
    values = [(row.get(key) or "").strip() for key in COLUMNS[1:]]
    if not any(values):
        return None
    if not all(values):
        missing = [key for key, value in zip(COLUMNS[1:], values) if not value]
        raise UserError(f"{where}: empty {', '.join(missing)}")
    try:
        x1, y1, x2, y2 = (float(v) for v in values[:4])
    except ValueError:
        raise UserError(f"{where}: x1, y1, x2, y2 must be numbers, got {values[:4]}")
    if x2 <= x1 or y2 <= y1:
        raise UserError(f"{where}: need x2 > x1 and y2 > y1, got {values[:4]}")
    return ObjectRecord(values[4], [x1, y1, x2 - x1, y2 - y1], where=where)


def read_rows(path: Path) -> dict[str, list[tuple[str, dict]]]:
    """Rows grouped by file_name, each with its 'file:line' for error messages."""
    if not path.is_file():
        raise UserError(f"--src {path}: no such file")
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = [name.strip() for name in reader.fieldnames or []]
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise UserError(f"{path}:1: header lacks {', '.join(missing)} (need {','.join(COLUMNS)})")
        reader.fieldnames = header
        groups: dict[str, list[tuple[str, dict]]] = {}
        try:
            for row in reader:
                name = (row.get("file_name") or "").strip()
                if not name:
                    raise UserError(f"{path}:{reader.line_num}: empty file_name")
                groups.setdefault(name, []).append((f"{path}:{reader.line_num}", row))
        except csv.Error as exc:
            raise UserError(f"{path}:{reader.line_num}: {exc}")
    return groups


def convert(src: str | os.PathLike, images: str | os.PathLike, classes: str | None = None) -> tuple[list[ImageRecord], list[str] | None]:
    """Records for every file_name in the CSV."""
    finder = ImageFinder(images)
    records = []
    for name, rows in read_rows(Path(src)).items():
        rel = finder.find(name, rows[0][0])
        width, height = image_size(finder.folder / rel)
        objects = [obj for where, row in rows if (obj := parse_row(row, where)) is not None]
        records.append(ImageRecord(rel.as_posix(), width, height, objects))
    return records, read_class_names(classes) if classes else None
