"""COCO splits out to the Ultralytics layout: images/<split>/, labels/<split>/, data.yaml and classes.txt.

Boxes become `class cx cy w h` lines; with segments, each instance one `class x1 y1 x2 y2 ...` polygon.
"""
from __future__ import annotations

from pathlib import Path

from datasets.core.atomic import place_file, write_text
from datasets.formats.export_splits import ExportSplit, class_names, warn_leftovers
from datasets.formats.segments import instance_polygon
from datasets.formats.yolo_layout import data_yaml_text, label_path


def box_line(ann: dict, width: int, height: int) -> list[float]:
    """Normalised cx, cy, w, h of an annotation's box."""
    x, y, w, h = ann["bbox"]
    return [(x + w / 2) / width, (y + h / 2) / height, w / width, h / height]


def segment_line(ann: dict, width: int, height: int) -> list[float]:
    """Normalised x1, y1, x2, y2, ... of the instance as one polygon."""
    polygon = instance_polygon(ann, height, width)
    return [v / (width if i % 2 == 0 else height) for i, v in enumerate(polygon)]


def label_text(split: ExportSplit, img: dict, index: dict[str, int], segments: bool) -> str:
    """The label file of one image: a line per non-crowd annotation (6 decimals)."""
    line = segment_line if segments else box_line
    lines = []
    for ann in split.by_image[img["id"]]:
        if not ann.get("iscrowd"):
            values = line(ann, img["width"], img["height"])
            lines.append(" ".join([str(index[split.category_name(ann)])] + [f"{v:.6f}" for v in values]))
    return "".join(line + "\n" for line in lines)


def export(splits: list[ExportSplit], out: Path, segments: bool = False, copy: bool = False) -> dict[str, int]:
    """Write the layout; returns counts: images, linked, copied."""
    names = class_names(splits)
    index = {name: i for i, name in enumerate(names)}
    written: set[Path] = set()
    linked = 0
    for split in splits:
        for img in split.images.values():
            image = out / "images" / split.name / img["file_name"]
            linked += place_file(split.images_dir / img["file_name"], image, copy)
            write_text(label_path(image), label_text(split, img, index, segments))
            written |= {image, label_path(image)}
    write_text(out / "classes.txt", "".join(name + "\n" for name in names))
    write_text(out / "data.yaml", data_yaml_text(out, [split.name for split in splits], names))
    warn_leftovers([out / folder / split.name for folder in ("images", "labels") for split in splits], written)
    return {"images": len(written) // 2, "linked": linked, "copied": len(written) // 2 - linked}
