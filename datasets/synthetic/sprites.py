"""Objects cut out of a COCO dataset (by mask, else by box) and backgrounds with the objects painted out.

The raw material of `datasets sequences`: sprites to move over a background, frame by frame.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from datasets.core.coco import annotation_mask, index_coco, load_coco, require_dir
from datasets.core.errors import UserError
from datasets.core.images import read_bgr


@dataclass
class Sprite:
    """One object: BGR pixels [h, w, 3] uint8, opacity [h, w] float32 in 0..1, its COCO category id."""

    pixels: np.ndarray
    alpha: np.ndarray
    category_id: int


@dataclass
class SpriteSource:
    """What a COCO dataset offers: sprites, its categories, and its images (for backgrounds)."""

    sprites: list[Sprite]
    categories: list[dict]
    images: dict
    by_image: dict
    images_dir: Path


def usable(ann: dict, min_side: int) -> bool:
    """An ordinary (not crowd) object at least `min_side` pixels wide and high."""
    return not ann.get("iscrowd") and min(ann["bbox"][2:]) >= min_side


def cut_sprite(image: np.ndarray, ann: dict) -> Sprite | None:
    """The annotation's pixels inside its box, opaque where its mask (or, without one, its box) is."""
    height, width = image.shape[:2]
    x, y, w, h = ann["bbox"]
    x0, y0 = max(int(np.floor(x)), 0), max(int(np.floor(y)), 0)
    x1, y1 = min(int(np.ceil(x + w)), width), min(int(np.ceil(y + h)), height)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    mask = annotation_mask(ann, height, width)[y0:y1, x0:x1].astype(np.float32)
    if mask.sum() < 4:
        return None
    return Sprite(image[y0:y1, x0:x1].copy(), mask, int(ann["category_id"]))


def load_sprites(file: str | os.PathLike, images_dir: str | os.PathLike, rng: np.random.Generator,
                 limit: int = 64, min_side: int = 8) -> SpriteSource:
    """Up to `limit` sprites from randomly chosen annotations; UserError when the dataset has none."""
    images_dir = require_dir(images_dir, "--images")
    images, categories, by_image = index_coco(load_coco(file), str(file))
    candidates = [ann for anns in by_image.values() for ann in anns if usable(ann, min_side)]
    if not candidates:
        raise UserError(f"{file}: no object of at least {min_side}x{min_side} pixels to cut out")
    sprites, cache = [], {}
    for index in rng.permutation(len(candidates))[: 4 * limit]:
        ann = candidates[int(index)]
        if ann["image_id"] not in cache:
            cache[ann["image_id"]] = read_bgr(images_dir / images[ann["image_id"]]["file_name"])
        sprite = cut_sprite(cache[ann["image_id"]], ann)
        if sprite is not None:
            sprites.append(sprite)
        if len(sprites) == limit:
            break
    ordered = [categories[k] for k in sorted(categories)]
    return SpriteSource(sprites, ordered, images, by_image, images_dir)


def painted_out(image: np.ndarray, anns: list[dict]) -> np.ndarray:
    """The image with every annotated object filled in from its surroundings (OpenCV inpainting)."""
    height, width = image.shape[:2]
    mask = np.zeros((height, width), np.uint8)
    for ann in anns:
        mask |= annotation_mask(ann, height, width)
    if not mask.any():
        return image
    mask = cv2.dilate(mask, np.ones((5, 5), np.uint8))
    return cv2.inpaint(image, mask * 255, 5, cv2.INPAINT_TELEA)


def dataset_background(source: SpriteSource, rng: np.random.Generator, size: int) -> np.ndarray:
    """A random square of a random image of the dataset, objects painted out, resized to size x size and
    softened (BGR)."""
    image_id = list(source.images)[int(rng.integers(len(source.images)))]
    image = read_bgr(source.images_dir / source.images[image_id]["file_name"])
    clean = painted_out(image, source.by_image[image_id])
    side = min(clean.shape[:2])
    top, left = (int(rng.integers(extent - side + 1)) for extent in clean.shape[:2])
    square = clean[top:top + side, left:left + side]
    return cv2.GaussianBlur(cv2.resize(square, (size, size), interpolation=cv2.INTER_CUBIC), (0, 0), 1.5)
