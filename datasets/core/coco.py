"""Shared COCO helpers: loading with clear errors, building files, masks <-> segmentation.

Every command reads and writes COCO through these so the conventions live in one place.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from datasets.core.atomic import write_json
from datasets.core.errors import UserError

INFO = {"description": "made by python -m datasets", "version": "1.0"}


def load_coco(path: str | os.PathLike) -> dict:
    """Read a COCO json file; UserError if it is missing, not JSON, or lacks the three lists."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})")
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a UTF-8 text file")
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object with images, annotations, categories")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise UserError(f"{path}: field '{key}' is missing or not a list")
    return data


def save_coco(path: str | os.PathLike, data: dict) -> None:
    """Write a COCO dict atomically (compact JSON)."""
    write_json(path, data)


def new_coco(images: list, annotations: list, categories: list, info: dict | None = None) -> dict:
    """Assemble a COCO dict with info and licenses in the usual key order."""
    return {
        "info": dict(info or INFO),
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }


def categories_from_names(names: Iterable[str]) -> list[dict]:
    """COCO categories with ids 1..K in the given order."""
    return [{"id": i, "name": name, "supercategory": "object"} for i, name in enumerate(names, 1)]


def check_not_input(out: str | os.PathLike, *inputs: str | os.PathLike | None) -> None:
    """UserError if the output path is one of the inputs (we never overwrite an input)."""
    out_path = Path(out).resolve()
    for item in inputs:
        if item is not None and Path(item).resolve() == out_path:
            raise UserError(f"--out {out} is also an input; choose another output path")


def require_dir(path: str | os.PathLike, what: str) -> Path:
    """Return `path` as a Path, or UserError if it is not an existing folder."""
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"{what} {path}: no such folder")
    return path


def encode_rle(mask: np.ndarray) -> dict:
    """Compressed RLE of a binary HxW mask, JSON-ready (counts as str)."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def mask_outlines(mask: np.ndarray) -> tuple[list[np.ndarray], bool]:
    """Outlines of a mask's parts and holes on pixel edges ((k, 2) int x, y arrays), and whether it has a hole.

    The mask is upsampled 2x so OpenCV's contour (through border pixel centres) maps
    onto pixel edges with (u + 1) // 2; pycocotools then rasterises it back exactly.
    """
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return [], False
    x0, y0 = int(xs.min()), int(ys.min())
    crop = mask[y0 : int(ys.max()) + 1, x0 : int(xs.max()) + 1].astype(np.uint8)
    crop = np.pad(crop, 1)
    up = np.repeat(np.repeat(crop, 2, axis=0), 2, axis=1)
    contours, hierarchy = cv2.findContours(up, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    outlines = []
    for contour in contours:
        points = (contour.reshape(-1, 2) + 1) // 2 + np.array([x0 - 1, y0 - 1])
        keep = np.any(points != np.roll(points, 1, axis=0), axis=1)
        points = points[keep] if keep.any() else points[:1]
        if len(points) >= 3:
            outlines.append(points)
    return outlines, hierarchy is not None and bool((hierarchy[0][:, 3] != -1).any())


def mask_to_polygons(mask: np.ndarray) -> list[list[float]] | None:
    """Exact pixel-edge polygons of a mask's parts, or None if the mask has a hole."""
    outlines, hole = mask_outlines(mask)
    return None if hole else [[float(v) for v in points.reshape(-1)] for points in outlines]


def mask_to_annotation(mask: np.ndarray) -> dict:
    """segmentation (polygons, or RLE where a hole makes polygons wrong), area and bbox of a mask."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    polygons = mask_to_polygons(mask)
    segmentation: Any = polygons if polygons else encode_rle(mask)
    return {
        "segmentation": segmentation,
        "area": float(mask_utils.area(rle)),
        "bbox": [float(v) for v in mask_utils.toBbox(rle)],
    }


def segmentation_to_rle(segmentation: Any, height: int, width: int) -> dict:
    """pycocotools RLE of a polygon list, uncompressed or compressed RLE segmentation."""
    if isinstance(segmentation, list):
        return mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    if isinstance(segmentation.get("counts"), list):
        return mask_utils.frPyObjects(segmentation, height, width)
    counts = segmentation["counts"]
    return {"size": segmentation["size"], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}


def annotation_mask(ann: dict, height: int, width: int) -> np.ndarray:
    """HxW uint8 mask of an annotation: its segmentation, or its box when it has none."""
    seg = ann.get("segmentation")
    if seg:
        return mask_utils.decode(segmentation_to_rle(seg, height, width))
    mask = np.zeros((height, width), np.uint8)
    x, y, w, h = ann["bbox"]
    mask[int(round(y)) : int(round(y + h)), int(round(x)) : int(round(x + w))] = 1
    return mask


def box_polygon(x: float, y: float, w: float, h: float) -> list[list[float]]:
    """The segmentation polygon of an axis-aligned box (for box-only formats)."""
    return [[x, y, x + w, y, x + w, y + h, x, y + h]]


def round_box(values: Iterable[float], digits: int = 3) -> list[float]:
    """Round box numbers so converted files stay small and stable."""
    return [round(float(v), digits) for v in values]


def polygon_area_bbox(polygons: list[list[float]], height: int, width: int) -> tuple[float, list[float]]:
    """Area (pixels pycocotools rasterises) and extent box [x, y, w, h] of polygons."""
    area = float(mask_utils.area(segmentation_to_rle(polygons, height, width)))
    xs = [v for poly in polygons for v in poly[0::2]]
    ys = [v for poly in polygons for v in poly[1::2]]
    x0, y0 = max(min(xs), 0.0), max(min(ys), 0.0)
    x1, y1 = min(max(xs), float(width)), min(max(ys), float(height))
    return area, round_box([x0, y0, x1 - x0, y1 - y0])


def index_coco(data: dict, source: str) -> tuple[dict, dict, dict]:
    """images by id, categories by id and annotations by image id; UserError on broken links.

    Checks only what a command needs to run; `validate` does the full check.
    """
    try:
        images = {img["id"]: img for img in data["images"]}
        categories = {cat["id"]: cat for cat in data["categories"]}
    except (TypeError, KeyError) as exc:
        raise UserError(f"{source}: every image and category needs an 'id' ({exc!r} missing)")
    by_image: dict = {image_id: [] for image_id in images}
    for ann in data["annotations"]:
        where = f"{source}: annotation {ann.get('id') if isinstance(ann, dict) else ann!r}"
        if not isinstance(ann, dict) or ann.get("image_id") not in images:
            raise UserError(f"{where}: image_id does not name an image (run validate)")
        if ann.get("category_id") not in categories:
            raise UserError(f"{where}: category_id {ann.get('category_id')} is not a category (run validate)")
        box = ann.get("bbox")
        if not isinstance(box, list) or len(box) != 4 or not all(isinstance(v, (int, float)) for v in box):
            raise UserError(f"{where}: bbox must be [x, y, w, h] numbers (run validate)")
        by_image[ann["image_id"]].append(ann)
    for img in images.values():
        if not isinstance(img.get("file_name"), str) or not all(
            isinstance(img.get(k), int) and img[k] > 0 for k in ("width", "height")
        ):
            raise UserError(f"{source}: image {img['id']}: needs file_name, width and height (run validate)")
    return images, categories, by_image
