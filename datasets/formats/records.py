"""The plain record every converter produces, and the one function that turns records into COCO.

Converters only parse their format; ids, categories, areas and segmentation are decided here.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from datasets.core.coco import box_polygon, categories_from_names, new_coco, polygon_area_bbox, round_box
from datasets.core.errors import UserError
from datasets.core.images import list_images


@dataclass
class ObjectRecord:
    """One object: category name and box [x, y, w, h] in pixels, or polygons (box from them).

    `attributes` (VOC's difficult, truncated, occluded) go into the annotation as they are.
    """

    category: str
    bbox: list[float]
    polygons: list[list[float]] | None = None
    where: str = ""
    iscrowd: bool = False
    attributes: dict | None = None


@dataclass
class ImageRecord:
    """One image: its file name relative to the images folder, size and objects."""

    file_name: str
    width: int
    height: int
    objects: list[ObjectRecord] = field(default_factory=list)


def read_class_names(path: str | os.PathLike) -> list[str]:
    """Class names in index order from classes.txt (one a line), a YAML `names:` list/dict, or JSON."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such classes file")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml", ".json"):
        try:
            data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError) as exc:
            raise UserError(f"{path}: cannot parse: {str(exc).splitlines()[0]}")
        names = data.get("names") if isinstance(data, dict) else data
        if isinstance(names, dict):
            names = [names[k] for k in sorted(names, key=int)]
        if not isinstance(names, list) or not names:
            raise UserError(f"{path}: expected a list of class names (or a 'names:' field)")
        return [str(n) for n in names]
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise UserError(f"{path}: no class names in it")
    return names


class ImageFinder:
    """Finds an image file under a folder by relative path, file name or stem."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise UserError(f"--images {folder}: no such folder")
        self.files = list_images(self.folder)
        self.by_name = {p.name: p for p in self.files}
        self.by_stem = {p.stem: p for p in self.files}

    def find(self, name: str, where: str) -> Path:
        """Relative path of the image called `name`; UserError naming `where` if absent."""
        rel = Path(name.replace("\\", "/"))
        if rel.is_absolute() or ".." in rel.parts:
            rel = Path(rel.name)
        if (self.folder / rel).is_file():
            return rel
        found = self.by_name.get(rel.name) or self.by_stem.get(rel.name) or self.by_stem.get(rel.stem)
        if found is None:
            raise UserError(f"{where}: image '{name}' not found in {self.folder}")
        return found


def category_list(records: list[ImageRecord], class_names: list[str] | None) -> list[str]:
    """Category names in id order: the given class names, else sorted names found."""
    found = sorted({obj.category for rec in records for obj in rec.objects})
    if class_names is None:
        return found
    for rec in records:
        for obj in rec.objects:
            if obj.category not in class_names:
                raise UserError(f"{obj.where or rec.file_name}: category '{obj.category}' is not in the class list")
    return list(class_names)


def records_to_coco(records: list[ImageRecord], class_names: list[str] | None = None) -> dict:
    """COCO dict from image records: ids from 1, box-only objects get a box polygon."""
    names = category_list(records, class_names)
    ids = {name: i for i, name in enumerate(names, 1)}
    images, annotations = [], []
    for image_id, rec in enumerate(sorted(records, key=lambda r: r.file_name), 1):
        images.append({"id": image_id, "file_name": rec.file_name, "width": rec.width, "height": rec.height})
        for obj in rec.objects:
            if obj.polygons:
                area, box = polygon_area_bbox(obj.polygons, rec.height, rec.width)
                segmentation = obj.polygons
            else:
                box = round_box(obj.bbox)
                area, segmentation = box[2] * box[3], box_polygon(*box)
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": ids[obj.category],
                "iscrowd": int(obj.iscrowd), "segmentation": segmentation, "area": round(float(area), 3), "bbox": box,
                **({"attributes": dict(obj.attributes)} if obj.attributes else {}),
            })
    return new_coco(images, annotations, categories_from_names(names))
