"""LabelMe JSON files (one per image; polygon, rectangle and circle shapes) to COCO records.

Shapes sharing a label and a group_id become one multi-part object; lines and points are skipped.
"""
from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

from datasets.core.errors import UserError
from datasets.core.images import image_size
from datasets.formats.records import ImageFinder, ImageRecord, ObjectRecord, read_class_names


def json_files(src: Path) -> list[Path]:
    """The .json files of a folder (recursively), or the one file given."""
    if src.is_file():
        return [src]
    if not src.is_dir():
        raise UserError(f"--src {src}: no such file or folder")
    files = sorted(src.rglob("*.json"))
    if not files:
        raise UserError(f"--src {src}: no .json files in it")
    return files


def shape_polygon(shape: dict, where: str) -> list[float] | None:
    """Flat polygon [x1, y1, ...] of a polygon, rectangle or circle shape; None for other types."""
    kind = shape.get("shape_type") or "polygon"
    try:
        points = [(float(x), float(y)) for x, y in shape["points"]]
    except (KeyError, TypeError, ValueError):
        raise UserError(f"{where}: 'points' must be a list of [x, y] pairs")
    if kind == "rectangle" and len(points) == 2:
        (x0, y0), (x1, y1) = points
        x0, x1, y0, y1 = min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1)
        points = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    elif kind == "circle" and len(points) == 2:
        (cx, cy), (px, py) = points
        radius = math.hypot(px - cx, py - cy)
        points = [(cx + radius * math.cos(t * math.pi / 16), cy + radius * math.sin(t * math.pi / 16)) for t in range(32)]
    elif kind != "polygon":
        return None
    if len(points) < 3:
        raise UserError(f"{where}: a {kind} needs at least 3 points, got {len(points)}")
    return [round(v, 3) for point in points for v in point]


def parse_shapes(shapes: list, where: str) -> tuple[list[ObjectRecord], int]:
    """Objects of one file (grouped by label and group_id) and the number of skipped shapes."""
    groups: dict[tuple, ObjectRecord] = {}
    skipped = 0
    for index, shape in enumerate(shapes):
        here = f"{where}: shapes[{index}]"
        if not isinstance(shape, dict) or not isinstance(shape.get("label"), str):
            raise UserError(f"{here}: each shape needs a 'label' string")
        polygon = shape_polygon(shape, here)
        if polygon is None:
            skipped += 1
            continue
        group = shape.get("group_id")
        key = (shape["label"], group) if group is not None else (shape["label"], "single", index)
        if key in groups:
            groups[key].polygons.append(polygon)
        else:
            groups[key] = ObjectRecord(shape["label"], [], [polygon], where=here)
    return list(groups.values()), skipped


def parse_file(path: Path, finder: ImageFinder) -> tuple[ImageRecord, int]:
    """One LabelMe file as an image record, and how many shapes it skipped."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid JSON ({exc})")
    if not isinstance(data, dict) or not isinstance(data.get("shapes"), list):
        raise UserError(f"{path}: not a LabelMe file (no 'shapes' list)")
    rel = finder.find(str(data.get("imagePath") or path.stem), str(path))
    width, height = data.get("imageWidth"), data.get("imageHeight")
    if not isinstance(width, int) or not isinstance(height, int) or width <= 0 or height <= 0:
        width, height = image_size(finder.folder / rel)
    objects, skipped = parse_shapes(data["shapes"], str(path))
    return ImageRecord(rel.as_posix(), width, height, objects), skipped


def convert(src: str | os.PathLike, images: str | os.PathLike, classes: str | None = None) -> tuple[list[ImageRecord], list[str] | None]:
    """Records for every LabelMe file under `src`."""
    finder = ImageFinder(images)
    records, skipped = [], 0
    for path in json_files(Path(src)):
        record, count = parse_file(path, finder)
        records.append(record)
        skipped += count
    if skipped:
        print(f"note: skipped {skipped} shapes that are not polygons, rectangles or circles", file=sys.stderr)
    return records, read_class_names(classes) if classes else None
