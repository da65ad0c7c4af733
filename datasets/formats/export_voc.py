"""COCO splits out to a Pascal VOC folder: Annotations/, JPEGImages/ and ImageSets/Main/<split>.txt.

Boxes become 1-based inclusive integer corners; difficult, truncated and occluded come from the attributes.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import cv2

from datasets.core.atomic import atomic_open, place_file, write_bytes, write_text
from datasets.core.errors import UserError
from datasets.core.images import read_bgr
from datasets.formats.export_splits import ExportSplit, warn_leftovers

JPEG_SUFFIXES = (".jpg", ".jpeg")


def voc_keeps(ann: dict) -> bool:
    """Whether VOC has a place for an annotation: every non-crowd one, and crowd ones marked difficult."""
    return not ann.get("iscrowd") or bool((ann.get("attributes") or {}).get("difficult"))


def voc_flags(ann: dict) -> list[tuple[str, int]]:
    """truncated and difficult (and occluded when known) as 0/1; iscrowd alone is not difficult."""
    attributes = ann.get("attributes") or {}
    tags = ["truncated", "difficult"] + (["occluded"] if "occluded" in attributes else [])
    return [(tag, int(bool(attributes.get(tag)))) for tag in tags]


def add_object(root: ET.Element, name: str, ann: dict) -> None:
    """One <object> with its flags and its box as 1-based inclusive integer corners."""
    x, y, w, h = ann["bbox"]
    xmin, ymin = round(x) + 1, round(y) + 1
    xmax, ymax = max(round(x + w), xmin), max(round(y + h), ymin)
    obj = ET.SubElement(root, "object")
    ET.SubElement(obj, "name").text = name
    for tag, value in [("pose", "Unspecified")] + voc_flags(ann):
        ET.SubElement(obj, tag).text = str(value)
    box = ET.SubElement(obj, "bndbox")
    for tag, value in (("xmin", xmin), ("ymin", ymin), ("xmax", xmax), ("ymax", ymax)):
        ET.SubElement(box, tag).text = str(value)


def voc_tree(split: ExportSplit, img: dict, image_id: str, folder: str) -> ET.ElementTree:
    """The XML of one image: every non-crowd object, and crowd ones marked difficult."""
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = folder
    ET.SubElement(root, "filename").text = image_id + ".jpg"
    size = ET.SubElement(root, "size")
    for tag, value in (("width", img["width"]), ("height", img["height"]), ("depth", 3)):
        ET.SubElement(size, tag).text = str(value)
    ET.SubElement(root, "segmented").text = "0"
    for ann in split.by_image[img["id"]]:
        if voc_keeps(ann):
            add_object(root, split.category_name(ann), ann)
    ET.indent(root)
    return ET.ElementTree(root)


def place_jpeg(src: Path, dst: Path, copy: bool) -> str:
    """JPEGImages/<id>.jpg: JPEG files linked (or copied), others re-encoded (quality 95)."""
    if src.suffix.lower() in JPEG_SUFFIXES:
        return "linked" if place_file(src, dst, copy) else "copied"
    ok, data = cv2.imencode(".jpg", read_bgr(src), [cv2.IMWRITE_JPEG_QUALITY, 95])
    if not ok:
        raise UserError(f"{src}: cannot encode as JPEG")
    write_bytes(dst, data.tobytes())
    return "encoded"


def image_ids(splits: list[ExportSplit]) -> dict[tuple[str, str], str]:
    """(split, file_name) -> VOC id (the path without its suffix); UserError when two images share an id,
    since VOC keeps every split's images in one JPEGImages folder."""
    ids: dict[tuple[str, str], str] = {}
    seen: dict[str, tuple[str, str]] = {}
    for split in splits:
        for img in split.images.values():
            image_id = Path(img["file_name"]).with_suffix("").as_posix()
            first = seen.setdefault(image_id, (split.source, img["file_name"]))
            if first != (split.source, img["file_name"]):
                raise UserError(f"{split.source}: image {img['file_name']} and {first[1]} of {first[0]} would "
                                f"both be JPEGImages/{image_id}.jpg; VOC names images by path without suffix")
            ids[split.name, img["file_name"]] = image_id
    return ids


def export(splits: list[ExportSplit], out: Path, copy: bool = False) -> dict[str, int]:
    """Write the VOC folder; returns counts: images, linked, copied, encoded."""
    ids, counts = image_ids(splits), {"linked": 0, "copied": 0, "encoded": 0}
    members: dict[str, list[str]] = {}
    written: set[Path] = set()
    for split in splits:
        for img in split.images.values():
            image_id = ids[split.name, img["file_name"]]
            jpeg, xml = out / "JPEGImages" / f"{image_id}.jpg", out / "Annotations" / f"{image_id}.xml"
            counts[place_jpeg(split.images_dir / img["file_name"], jpeg, copy)] += 1
            with atomic_open(xml, "wb") as handle:
                voc_tree(split, img, image_id, out.name).write(handle, encoding="utf-8", xml_declaration=True)
            written |= {jpeg, xml}
            members.setdefault(split.name, []).append(image_id)
    if "train" in members or "val" in members:
        members["trainval"] = members.get("train", []) + members.get("val", [])
    for name, members_of in members.items():
        write_text(out / "ImageSets" / "Main" / f"{name}.txt", "".join(i + "\n" for i in members_of))
    warn_leftovers([out / "JPEGImages", out / "Annotations"], written)
    return {"images": len(ids), **counts}
