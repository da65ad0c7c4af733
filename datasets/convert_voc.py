"""Pascal VOC XML annotations (one file per image) to COCO records.

VOC boxes are 1-based and inclusive: x = xmin - 1, w = xmax - xmin + 1 (export does the reverse).
"""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

from datasets.errors import UserError
from datasets.images import image_size
from datasets.records import ImageFinder, ImageRecord, ObjectRecord, read_class_names


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


def parse_object(node: ET.Element, where: str) -> ObjectRecord:
    """One <object>: name and bndbox, converted to a 0-based [x, y, w, h]."""
    name = text_of(node, "name", where)
    box = node.find("bndbox")
    if box is None:
        raise UserError(f"{where}: object '{name}' has no <bndbox>")
    xmin, ymin, xmax, ymax = (number_of(box, tag, where) for tag in ("xmin", "ymin", "xmax", "ymax"))
    if xmax < xmin or ymax < ymin:
        raise UserError(f"{where}: object '{name}' has xmax < xmin or ymax < ymin")
    return ObjectRecord(name, [xmin - 1, ymin - 1, xmax - xmin + 1, ymax - ymin + 1], where=where)


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


def convert(src: str | os.PathLike, images: str | os.PathLike, classes: str | None = None) -> tuple[list[ImageRecord], list[str] | None]:
    """Records for every XML file under `src` (class order from --classes if given)."""
    finder = ImageFinder(images)
    records = [parse_file(path, finder) for path in xml_files(Path(src))]
    return records, read_class_names(classes) if classes else None
