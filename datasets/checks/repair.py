"""Repair of a COCO dict for `validate --fix`: clip boxes, recompute areas, re-index, drop empties.

Keeps category ids (they carry meaning); images and annotations get fresh ids from 1.
"""
from __future__ import annotations

from pathlib import Path

from datasets.checks.rules import check_ids, is_int, is_number, segmentation_area
from datasets.core.coco import INFO, box_polygon
from datasets.core.errors import UserError
from datasets.core.images import image_size


def repair_categories(categories: list, notes: list[str]) -> tuple[list[dict], dict]:
    """Categories with integer ids and names, and old id -> kept id (a repeated name maps to its first)."""
    _, by_id = check_ids(categories, "category")
    kept, first_of, remap = [], {}, {}
    for cat_id, cat in by_id.items():
        name = cat.get("name")
        if not isinstance(name, str) or not name.strip():
            continue
        if name not in first_of:
            first_of[name] = cat_id
            kept.append(cat)
        remap[cat_id] = first_of[name]
    if len(kept) != len(categories):
        notes.append(f"dropped {len(categories) - len(kept)} categories (bad or duplicate id, missing or repeated name)")
    return kept, remap


def repair_image(img: dict, images_dir: Path | None) -> dict | None:
    """The image with its real size (when files are at hand), or None if it cannot be kept."""
    name = img.get("file_name")
    if not isinstance(name, str) or not name:
        return None
    if images_dir is not None:
        if not (images_dir / name).is_file():
            return None
        try:
            width, height = image_size(images_dir / name)
        except UserError:
            return None
        return {**img, "width": width, "height": height}
    if is_int(img.get("width")) and is_int(img.get("height")) and img["width"] > 0 and img["height"] > 0:
        return dict(img)
    return None


def repair_images(images: list, images_dir: Path | None, notes: list[str]) -> tuple[list[dict], dict]:
    """Kept images with new ids 1..N, and old id -> new image."""
    _, by_id = check_ids(images, "image")
    kept, old_to_new, names = [], {}, set()
    for old_id, img in by_id.items():
        fixed = repair_image(img, images_dir)
        if fixed is None or fixed["file_name"] in names:
            continue
        names.add(fixed["file_name"])
        fixed["id"] = len(kept) + 1
        kept.append(fixed)
        old_to_new[old_id] = fixed
    if len(kept) != len(images):
        notes.append(f"dropped {len(images) - len(kept)} images (bad or duplicate id, missing file or size)")
    return kept, old_to_new


def clip_box(box, width: int, height: int) -> list[float] | None:
    """[x, y, w, h] clipped to the image, None when malformed or empty after clipping."""
    if not (isinstance(box, list) and len(box) == 4 and all(is_number(v) for v in box)):
        return None
    x0, y0 = min(max(box[0], 0), width), min(max(box[1], 0), height)
    x1, y1 = min(max(box[0] + box[2], 0), width), min(max(box[1] + box[3], 0), height)
    if x1 - x0 <= 0 or y1 - y0 <= 0:
        return None
    return [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]


def repair_annotation(ann: dict, img: dict) -> dict | None:
    """Clipped box, integer iscrowd, area from the segmentation (or box); None if empty."""
    box = clip_box(ann.get("bbox"), img["width"], img["height"])
    if box is None:
        return None
    fixed = {**ann, "image_id": img["id"], "bbox": box, "iscrowd": 1 if ann.get("iscrowd") in (1, True, "1") else 0}
    try:
        area = segmentation_area(fixed, img)
    except ValueError:
        fixed["segmentation"], area = box_polygon(*box), None
    if area == 0:
        return None
    fixed["area"] = area if area is not None else box[2] * box[3]
    return fixed


def repair_coco(data: dict, images_dir: Path | None = None) -> tuple[dict, list[str]]:
    """A repaired copy of `data` and notes on what changed."""
    notes: list[str] = []
    categories, cat_remap = repair_categories(data["categories"], notes)
    images, old_to_new = repair_images(data["images"], images_dir, notes)
    kept = []
    for ann in (a for a in data["annotations"] if isinstance(a, dict)):
        img = old_to_new.get(ann.get("image_id"))
        known = img is not None and ann.get("category_id") in cat_remap
        fixed = repair_annotation(ann, img) if known else None
        if fixed is not None:
            fixed.update(id=len(kept) + 1, category_id=cat_remap[ann["category_id"]])
            kept.append(fixed)
    if len(kept) != len(data["annotations"]):
        notes.append(f"dropped {len(data['annotations']) - len(kept)} annotations (unknown image or category, empty box or mask)")
    info = data.get("info") if isinstance(data.get("info"), dict) else dict(INFO)
    licenses = data.get("licenses") if isinstance(data.get("licenses"), list) else []
    fixed = {"info": info, "licenses": licenses, "images": images, "annotations": kept, "categories": categories}
    return fixed, notes
