"""Pascal VOC XML annotations (one file per image) to COCO records, flags kept as attributes.

VOC boxes are 1-based and inclusive: x = xmin - 1, w = xmax - xmin + 1 (export does the reverse).
"""
from __future__ import annotations

import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from datasets.core.errors import UserError
from datasets.core.images import image_size
from datasets.formats.records import ImageFinder, ImageRecord, ObjectRecord, read_class_names

FLAGS = ("difficult", "truncated", "occluded")
DIFFICULT_MODES = ("keep", "crowd", "skip")


def xml_files(src: Path) -> list[Path]:
    """The .xml files of a folder (recursively), or the one file given."""
    if src.is_file():
        return [src]
    if not src.is_dir():
        raise UserError(f"--src {src}: no such file or folder")
    files = sorted(src.rglob("*.xml"))
    if not files:
        raise UserError(f"--src {src}: no .xml files in it")
    return files


def text_of(node: ET.Element, tag: str, where: str) -> str:
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise UserError(f"{where}: missing <{tag}>")
    return child.text.strip()


def number_of(node: ET.Element, tag: str, where: str) -> float:
    value = text_of(node, tag, where)
    try:
        return float(value)
    except ValueError:
        raise UserError(f"{where}: <{tag}> is not a number: '{value}'")


def flags_of(node: ET.Element, where: str) -> dict[str, bool]:
    """VOC's 0/1 flags (difficult, truncated, occluded) that the object has, as booleans."""
    flags = {}
    for tag in FLAGS:
        text = (node.findtext(tag) or "").strip()
        if text:
            if text not in ("0", "1"):
                raise UserError(f"{where}: <{tag}> must be 0 or 1, got '{text}'")
            flags[tag] = text == "1"
    return flags


def parse_object(node: ET.Element, where: str) -> ObjectRecord:
    """One <object>: name, flags and bndbox, converted to a 0-based [x, y, w, h]."""
    name = text_of(node, "name", where)
    box = node.find("bndbox")
    if box is None:
        raise UserError(f"{where}: object '{name}' has no <bndbox>")
    xmin, ymin, xmax, ymax = (number_of(box, tag, where) for tag in ("xmin", "ymin", "xmax", "ymax"))
    if xmax < xmin or ymax < ymin:
        raise UserError(f"{where}: object '{name}' has xmax < xmin or ymax < ymin")
    return ObjectRecord(name, [xmin - 1, ymin - 1, xmax - xmin + 1, ymax - ymin + 1], where=where,
                        attributes=flags_of(node, where))


def apply_difficult(records: list[ImageRecord], mode: str) -> int:
    """Difficult objects stay ordinary (keep), become iscrowd (crowd) or go (skip); returns how many."""
    count = 0
    for rec in records:
        difficult = [obj for obj in rec.objects if obj.attributes.get("difficult")]
        count += len(difficult)
        if mode == "skip":
            rec.objects = [obj for obj in rec.objects if obj not in difficult]
        for obj in difficult:
            obj.iscrowd = mode == "crowd"
    return count


def parse_file(path: Path, finder: ImageFinder) -> ImageRecord:
    """One VOC XML file as an image record (size read from the image when the XML lacks it)."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise UserError(f"{path}: not valid XML ({exc})")
    name = root.findtext("filename") or path.stem
    rel = finder.find(name.strip(), str(path))
    size = root.find("size")
    width = int(number_of(size, "width", str(path))) if size is not None and size.findtext("width") else 0
    height = int(number_of(size, "height", str(path))) if size is not None and size.findtext("height") else 0
    if width <= 0 or height <= 0:
        width, height = image_size(finder.folder / rel)
    objects = [parse_object(node, f"{path}: object {i}") for i, node in enumerate(root.findall("object"), 1)]
    return ImageRecord(rel.as_posix(), width, height, objects)


def convert(src: str | os.PathLike, images: str | os.PathLike, classes: str | None = None,
            difficult: str = "crowd") -> tuple[list[ImageRecord], list[str] | None]:
    """Records for every XML file under `src` (class order from --classes if given).

    difficult: "keep" (ordinary objects), "crowd" (iscrowd=1, ignored by COCOeval) or "skip" (left out).
    """
    if difficult not in DIFFICULT_MODES:
        raise UserError(f"--difficult must be one of {', '.join(DIFFICULT_MODES)}, got '{difficult}'")
    finder = ImageFinder(images)
    records = [parse_file(path, finder) for path in xml_files(Path(src))]
    count = apply_difficult(records, difficult)
    if count and difficult != "keep":
        done = "marked iscrowd=1 (COCOeval ignores them)" if difficult == "crowd" else "left out"
        print(f"note: {count} difficult objects {done}; --difficult keep|crowd|skip chooses", file=sys.stderr)
    return records, read_class_names(classes) if classes else None
