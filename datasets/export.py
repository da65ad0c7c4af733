"""`export --to yolo|voc`: COCO out to YOLO txt labels or Pascal VOC XML, so datasets round-trip.

Crowd regions have no place in either format and are left out (the count is printed).
"""
from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

from datasets.atomic import atomic_open
from datasets.coco import check_not_input, index_coco, load_coco, require_dir
from datasets.errors import UserError


def yolo_lines(anns: list[dict], index: dict, width: int, height: int) -> list[str]:
    """`class cx cy w h` lines (normalised, 6 decimals) for an image's non-crowd boxes."""
    lines = []
    for ann in anns:
        x, y, w, h = ann["bbox"]
        cx, cy = (x + w / 2) / width, (y + h / 2) / height
        lines.append(f"{index[ann['category_id']]} {cx:.6f} {cy:.6f} {w / width:.6f} {h / height:.6f}")
    return lines


def write_text(path: Path, text: str) -> None:
    with atomic_open(path, "w") as handle:
        handle.write(text)


def export_yolo(data: dict, images_dir: Path, out: Path, source: str) -> int:
    """labels/<image>.txt for every image, classes.txt and data.yaml; returns files written."""
    images, categories, by_image = index_coco(data, source)
    ordered = sorted(categories.values(), key=lambda c: c["id"])
    index = {cat["id"]: i for i, cat in enumerate(ordered)}
    names = [cat["name"] for cat in ordered]
    for image_id, img in images.items():
        anns = [a for a in by_image[image_id] if not a.get("iscrowd")]
        lines = yolo_lines(anns, index, img["width"], img["height"])
        write_text(out / "labels" / Path(img["file_name"]).with_suffix(".txt"), "".join(l + "\n" for l in lines))
    write_text(out / "classes.txt", "".join(name + "\n" for name in names))
    spec = {"path": str(out.resolve()), "train": str(images_dir.resolve()), "val": str(images_dir.resolve()),
            "nc": len(names), "names": dict(enumerate(names))}
    write_text(out / "data.yaml", yaml.safe_dump(spec, sort_keys=False))
    return len(images)


def voc_tree(img: dict, anns: list[dict], categories: dict, folder: str) -> ET.ElementTree:
    """A VOC XML tree for one image (1-based inclusive integer corners)."""
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = folder
    ET.SubElement(root, "filename").text = img["file_name"]
    size = ET.SubElement(root, "size")
    for tag, value in (("width", img["width"]), ("height", img["height"]), ("depth", 3)):
        ET.SubElement(size, tag).text = str(value)
    ET.SubElement(root, "segmented").text = "0"
    for ann in anns:
        x, y, w, h = ann["bbox"]
        xmin, ymin = round(x) + 1, round(y) + 1
        xmax, ymax = max(round(x + w), xmin), max(round(y + h), ymin)
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = categories[ann["category_id"]]["name"]
        for tag, value in (("pose", "Unspecified"), ("truncated", 0), ("difficult", 0)):
            ET.SubElement(obj, tag).text = str(value)
        box = ET.SubElement(obj, "bndbox")
        for tag, value in (("xmin", xmin), ("ymin", ymin), ("xmax", xmax), ("ymax", ymax)):
            ET.SubElement(box, tag).text = str(value)
    ET.indent(root)
    return ET.ElementTree(root)


def export_voc(data: dict, images_dir: Path, out: Path, source: str) -> int:
    """Annotations/<image>.xml for every image; returns files written."""
    images, categories, by_image = index_coco(data, source)
    for image_id, img in images.items():
        anns = [a for a in by_image[image_id] if not a.get("iscrowd")]
        tree = voc_tree(img, anns, categories, images_dir.name)
        with atomic_open(out / "Annotations" / Path(img["file_name"]).with_suffix(".xml"), "wb") as handle:
            tree.write(handle, encoding="utf-8", xml_declaration=True)
    return len(images)


def run(args) -> None:
    """CLI: python -m datasets export."""
    out, images_dir = Path(args.out), require_dir(args.images, "--images")
    check_not_input(out, args.annotations, images_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder")
    data = load_coco(args.annotations)
    writer = export_yolo if args.to == "yolo" else export_voc
    count = writer(data, images_dir, out, str(args.annotations))
    crowd = sum(1 for a in data["annotations"] if a.get("iscrowd"))
    if crowd:
        print(f"note: left out {crowd} crowd annotations ({args.to} has no crowd regions)", file=sys.stderr)
    print(f"wrote {args.to} labels for {count} images to {out}")
