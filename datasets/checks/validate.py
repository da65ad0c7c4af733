"""`validate`: check a COCO file (schema, links, boxes, areas, image files) and optionally repair it.

Every problem names its image, annotation or category id; `--fix OUT` writes a repaired copy.
"""
from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

from pycocotools.coco import COCO

from datasets.checks.repair import repair_coco
from datasets.checks.rules import Problem, check_ids, is_int, is_number, segmentation_area
from datasets.core.coco import check_not_input, load_coco, save_coco
from datasets.core.errors import UserError
from datasets.core.images import image_size

TOLERANCE = 0.01


def check_top(data: dict) -> list[Problem]:
    problems = []
    if not isinstance(data.get("info"), dict):
        problems.append(Problem("missing-info", "top level: 'info' object missing"))
    if not isinstance(data.get("licenses"), list):
        problems.append(Problem("missing-licenses", "top level: 'licenses' list missing"))
    return problems


def check_categories(categories: list) -> tuple[list[Problem], dict]:
    problems, by_id = check_ids(categories, "category")
    names: dict[str, int] = {}
    for cat_id, cat in by_id.items():
        name = cat.get("name")
        if not isinstance(name, str) or not name.strip():
            problems.append(Problem("category-name", f"category {cat_id}: 'name' missing or empty"))
        elif name in names:
            problems.append(Problem("duplicate-category", f"category {cat_id}: name '{name}' also used by category {names[name]}"))
        else:
            names[name] = cat_id
    return problems, by_id


def check_image(img: dict, images_dir: Path | None) -> list[Problem]:
    """Fields of one image, and its file (exists, real size equals the json) when a folder is given."""
    where = f"image {img['id']}"
    name, width, height = img.get("file_name"), img.get("width"), img.get("height")
    if not isinstance(name, str) or not name:
        return [Problem("image-file-name", f"{where}: 'file_name' missing or empty")]
    if not (is_int(width) and is_int(height) and width > 0 and height > 0):
        return [Problem("image-size", f"{where} ({name}): width and height must be positive integers")]
    if images_dir is None:
        return []
    path = images_dir / name
    if not path.is_file():
        return [Problem("image-missing", f"{where}: file {path} not found")]
    try:
        real = image_size(path)
    except UserError as exc:
        return [Problem("image-unreadable", f"{where}: {exc}")]
    if real != (width, height):
        return [Problem("image-size-mismatch", f"{where} ({name}): file is {real[0]}x{real[1]}, json says {width}x{height}")]
    return []


def check_images(images: list, images_dir: Path | None) -> tuple[list[Problem], dict]:
    problems, by_id = check_ids(images, "image")
    names: dict[str, int] = {}
    for image_id, img in by_id.items():
        problems += check_image(img, images_dir)
        name = img.get("file_name")
        if isinstance(name, str) and name in names:
            problems.append(Problem("duplicate-file-name", f"image {image_id}: file_name '{name}' also used by image {names[name]}"))
        elif isinstance(name, str):
            names[name] = image_id
    return problems, by_id


def check_box(ann: dict, img: dict | None) -> list[Problem]:
    """bbox: four finite numbers, positive size, inside its image."""
    where, box = f"annotation {ann['id']}", ann.get("bbox")
    if not (isinstance(box, list) and len(box) == 4 and all(is_number(v) for v in box)):
        return [Problem("bbox-format", f"{where}: bbox must be [x, y, w, h] numbers, got {box!r}")]
    x, y, w, h = box
    if w <= 0 or h <= 0:
        return [Problem("bbox-empty", f"{where}: bbox {box} has no positive width and height")]
    if img is not None and is_int(img.get("width")) and is_int(img.get("height")) and (
        x < -TOLERANCE or y < -TOLERANCE or x + w > img["width"] + TOLERANCE or y + h > img["height"] + TOLERANCE
    ):
        return [Problem("bbox-outside", f"{where}: bbox {box} extends outside image {img['id']} ({img['width']}x{img['height']})")]
    return []


def check_area(ann: dict, img: dict | None) -> list[Problem]:
    """area: a positive number, equal (within a border strip) to its segmentation's area."""
    where, area = f"annotation {ann['id']}", ann.get("area")
    if img is None or check_image(img, None):
        return []
    try:
        mask_area = segmentation_area(ann, img)
    except ValueError as exc:
        return [Problem("segmentation", f"{where}: segmentation {exc}")]
    if not is_number(area) or area <= 0:
        return [Problem("area", f"{where}: area must be a positive number, got {area!r}")]
    if mask_area is not None and mask_area == 0:
        return [Problem("segmentation-empty", f"{where}: segmentation covers no pixels")]
    if mask_area is not None:
        box = ann.get("bbox") if isinstance(ann.get("bbox"), list) and len(ann["bbox"]) == 4 else [0, 0, 0, 0]
        slack = 0.05 * mask_area + abs(box[2]) + abs(box[3]) if all(is_number(v) for v in box) else 0.05 * mask_area
        if abs(area - mask_area) > max(slack, 1.0):
            return [Problem("area-mismatch", f"{where}: area {area} differs from its segmentation's {mask_area:g} pixels")]
    return []


def check_annotation(ann: dict, images: dict, categories: dict) -> list[Problem]:
    where = f"annotation {ann['id']}"
    problems = []
    img = images.get(ann.get("image_id"))
    if img is None:
        problems.append(Problem("unknown-image", f"{where}: image_id {ann.get('image_id')!r} is not an image"))
    if ann.get("category_id") not in categories:
        problems.append(Problem("unknown-category", f"{where}: category_id {ann.get('category_id')!r} is not a category"))
    if not is_int(ann.get("iscrowd")) or ann["iscrowd"] not in (0, 1):
        problems.append(Problem("iscrowd", f"{where}: iscrowd must be the integer 0 or 1, got {ann.get('iscrowd')!r}"))
    return problems + check_box(ann, img) + check_area(ann, img)


def check_pycocotools(data: dict) -> list[Problem]:
    """pycocotools can index the file (run only once the structure is sound)."""
    coco = COCO()
    coco.dataset = data
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            coco.createIndex()
    except Exception as exc:  # any failure here is a defect of the file
        return [Problem("pycocotools", f"pycocotools cannot index the file: {exc!r}")]
    return []


def validate_coco(data: dict, images_dir: str | os.PathLike | None = None) -> list[Problem]:
    """Every problem of a COCO dict (files checked too when images_dir is given)."""
    folder = Path(images_dir) if images_dir is not None else None
    problems = check_top(data)
    cat_problems, categories = check_categories(data["categories"])
    img_problems, images = check_images(data["images"], folder)
    ann_problems, annotations = check_ids(data["annotations"], "annotation")
    problems += cat_problems + img_problems + ann_problems
    for ann in annotations.values():
        problems += check_annotation(ann, images, categories)
    if not problems:
        problems += check_pycocotools(data)
    return problems


def run(args) -> None:
    """CLI: python -m datasets validate."""
    images_dir = Path(args.images) if args.images else None
    if images_dir is not None and not images_dir.is_dir():
        raise UserError(f"--images {images_dir}: no such folder")
    data = load_coco(args.file)
    problems = validate_coco(data, images_dir)
    for problem in problems:
        print(problem)
    print(f"{args.file}: {len(data['images'])} images, {len(data['annotations'])} annotations, "
          f"{len(problems)} problems")
    if args.fix:
        check_not_input(args.fix, args.file)
        fixed, notes = repair_coco(data, images_dir)
        remaining = validate_coco(fixed, images_dir)
        save_coco(args.fix, fixed)
        for note in notes:
            print(f"fix: {note}")
        print(f"wrote {args.fix}: {len(remaining)} problems left")
        for problem in remaining:
            print(f"  {problem}")
        problems = remaining
    if problems:
        raise UserError(f"{len(problems)} problems in {args.fix or args.file}")
