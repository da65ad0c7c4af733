"""`from-masks`: instance masks to COCO (polygons, or RLE where a hole makes polygons wrong).

Two conventions: <stem>.png label images (0 = background, each value one instance, classes from
--category or --categories) and binary masks named <image-stem>_<category>_<n>.png, one per instance.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np

from datasets.core.coco import (categories_from_names, check_not_input, mask_to_annotation, new_coco, require_dir,
                                save_coco)
from datasets.core.errors import UserError
from datasets.core.images import IMAGE_SUFFIXES, image_size, list_images, read_bgr


def read_mask_categories(path: str | os.PathLike | None) -> tuple[list[str] | None, dict]:
    """(names in id order or None, labels: {image stem or "*": {value: name}}) from the JSON file.

    The file is {"names": [...], "labels": {...}}, or just the names list, or just the labels.
    """
    if path is None:
        return None, {}
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"--categories {path}: no such file")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"--categories {path}: not valid JSON ({exc})")
    if isinstance(data, list):
        return [str(n) for n in data], {}
    if not isinstance(data, dict):
        raise UserError(f"--categories {path}: expected a JSON object or a list of names")
    names = data.get("names")
    labels = data.get("labels", {} if "names" in data else data)
    if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        raise UserError(f"--categories {path}: 'names' must be a list of strings")
    if not isinstance(labels, dict) or not all(isinstance(v, dict) for v in labels.values()):
        raise UserError(f"--categories {path}: 'labels' must map image stems (or \"*\") to {{value: name}} objects")
    return names, labels


def match_mask(mask_path: Path, stems: dict[str, Path]) -> tuple[str, str | None, int]:
    """(image stem, category or None for a label image, instance number) from a mask file name."""
    stem = mask_path.stem
    if stem in stems:
        return stem, None, 0
    for image_stem in sorted(stems, key=len, reverse=True):
        if stem.startswith(image_stem + "_"):
            category, _, number = stem[len(image_stem) + 1 :].rpartition("_")
            if category and number.isdigit():
                return image_stem, category, int(number)
    raise UserError(f"{mask_path}: name is neither <image-stem>.png nor <image-stem>_<category>_<n>.png for an image in --images")


def load_mask(path: Path, size: tuple[int, int]) -> np.ndarray:
    """A mask file as a 2-D integer array the size of its image."""
    mask = read_bgr(path, unchanged=True)
    if mask.ndim == 3:
        if not (mask[..., :3] == mask[..., :1]).all():
            raise UserError(f"{path}: colour mask; expected a single-channel (grey) mask")
        mask = mask[..., 0]
    if (mask.shape[1], mask.shape[0]) != size:
        raise UserError(f"{path}: mask is {mask.shape[1]}x{mask.shape[0]}, its image is {size[0]}x{size[1]}")
    return mask


def value_category(labels: dict, stem: str, value: str) -> str | None:
    """The category of a label value: the image's own mapping first, then "*"; in each the value, then "*"."""
    for mapping in (labels.get(stem, {}), labels.get("*", {})):
        name = mapping.get(value, mapping.get("*"))
        if name is not None:
            return name
    return None


def label_instances(path: Path, stem: str, size, labels: dict) -> list[tuple[str, np.ndarray]]:
    """(category, mask) per non-zero value of a label image."""
    if not labels:
        raise UserError(f"{path}: label images need --category NAME (one class for all) or --categories")
    mask = load_mask(path, size)
    instances = []
    for value in np.unique(mask[mask != 0]):
        name = value_category(labels, stem, str(value))
        if not isinstance(name, str):
            raise UserError(f"{path}: value {value} has no category in --categories (under \"{stem}\" or \"*\")")
        instances.append((name, mask == value))
    return instances


def plan_masks(images_dir: Path, masks_dir: Path) -> dict[Path, list[tuple[Path, str | None, int]]]:
    """Image path (relative) -> its mask files as (path, category or None, number); nothing decoded."""
    images = list_images(images_dir)
    stems = {p.stem: p for p in images}
    if len(stems) != len(images):
        raise UserError(f"--images {images_dir}: two images share a file stem; mask names would be ambiguous")
    plan: dict[Path, list] = {p: [] for p in images}
    for path in sorted(p for p in masks_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        stem, category, number = match_mask(path, stems)
        plan[stems[stem]].append((path, category, number))
    return plan


def image_instances(files: list, stem: str, size: tuple[int, int], labels: dict) -> list[tuple[str, np.ndarray]]:
    """(category, mask) instances of one image: label-image values first, then binary masks."""
    instances = []
    for path, category, _ in files:
        if category is None:
            instances += label_instances(path, stem, size, labels)
    for path, category, _ in sorted((f for f in files if f[1] is not None), key=lambda f: (f[1], f[2])):
        instances.append((category, load_mask(path, size) > 0))
    return instances


def from_masks(images_dir: str | os.PathLike, masks_dir: str | os.PathLike, categories: str | None = None,
               category: str | None = None) -> dict:
    """COCO dict with one annotation per instance mask; bbox and area from the mask.

    `category` names the one class of every label-image instance (instead of a `categories` file).
    """
    images_dir, masks_dir = require_dir(images_dir, "--images"), require_dir(masks_dir, "--masks")
    if category is not None and not category.strip():
        raise UserError("--category needs a non-empty name")
    names, labels = (None, {"*": {"*": category}}) if category is not None else read_mask_categories(categories)
    plan = plan_masks(images_dir, masks_dir)
    if names is None:
        found = {cat for files in plan.values() for _, cat, _ in files if cat}
        found |= {n for mapping in labels.values() for n in mapping.values() if isinstance(n, str)}
        names = sorted(found)
    ids = {name: i for i, name in enumerate(names, 1)}
    images, annotations, empty = [], [], 0
    for image_id, (rel, files) in enumerate(sorted(plan.items()), 1):
        width, height = image_size(images_dir / rel)
        images.append({"id": image_id, "file_name": rel.as_posix(), "width": width, "height": height})
        for name, mask in image_instances(files, rel.stem, (width, height), labels):
            if name not in ids:
                raise UserError(f"image {rel}: category '{name}' is not in the 'names' of --categories")
            if not mask.any():
                empty += 1
                continue
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": ids[name],
                                "iscrowd": 0, **mask_to_annotation(mask)})
    if empty:
        print(f"note: skipped {empty} empty masks", file=sys.stderr)
    return new_coco(images, annotations, categories_from_names(names))


def run(args) -> None:
    """CLI: python -m datasets from-masks."""
    check_not_input(args.out, args.categories)
    coco = from_masks(args.images, args.masks, args.categories, args.category)
    save_coco(args.out, coco)
    print(f"wrote {args.out}: {len(coco['images'])} images, {len(coco['annotations'])} annotations")
