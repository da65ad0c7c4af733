"""Synthetic shapes dataset (circles, squares, triangles) with instance masks, as COCO.

Deterministic by seed; defaults give the easy, balanced set the training demo learns quickly.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from datasets.core.coco import encode_rle, mask_to_annotation
from datasets.core.errors import UserError
from datasets.synthetic.writer import read_options, write_set

CATEGORY_NAMES = ("circle", "square", "triangle")


@dataclass
class SynthOptions:
    """How the shapes look; the defaults are the easy demo set."""

    image_size: int = 128
    min_size: int = 16
    max_size: int = 56
    max_objects: int = 4
    crowd_fraction: float = 0.0
    imbalance: float = 1.0
    occlusion: bool = False
    image_format: str = "png"

    def check(self) -> None:
        """UserError naming the option that is out of range."""
        if self.image_size < 32:
            raise UserError(f"--image-size must be at least 32, got {self.image_size}")
        if not 4 <= self.min_size <= self.max_size <= self.image_size:
            raise UserError(
                f"need 4 <= --min-size ({self.min_size}) <= --max-size ({self.max_size})"
                f" <= --image-size ({self.image_size})"
            )
        if self.max_objects < 1:
            raise UserError(f"--max-objects must be at least 1, got {self.max_objects}")
        if not 0.0 <= self.crowd_fraction <= 1.0:
            raise UserError(f"--crowd-fraction must be in [0, 1], got {self.crowd_fraction}")
        if self.imbalance < 1.0:
            raise UserError(f"--imbalance must be >= 1 (1 = balanced), got {self.imbalance}")
        if self.image_format not in ("png", "jpg"):
            raise UserError(f"--format must be png or jpg, got {self.image_format}")


@dataclass
class Shape:
    """One drawn thing: full mask, colour, category index, crowd flag."""

    mask: np.ndarray
    color: np.ndarray
    label: int
    crowd: bool = False


def make_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A solid, gradient or smooth-noise background, float32 HxWx3."""
    kind = rng.integers(3)
    base = rng.uniform(30, 225, 3)
    if kind == 0:
        return np.broadcast_to(base, (size, size, 3)).astype(np.float32).copy()
    if kind == 1:
        other = np.clip(base + rng.uniform(-80, 80, 3), 0, 255)
        angle = rng.uniform(0, 2 * np.pi)
        ys, xs = np.mgrid[0:size, 0:size] / (size - 1)
        t = (np.cos(angle) * xs + np.sin(angle) * ys)
        t = (t - t.min()) / max(t.max() - t.min(), 1e-6)
        return (base * (1 - t[..., None]) + other * t[..., None]).astype(np.float32)
    coarse = rng.uniform(-40, 40, (4, 4, 3)).astype(np.float32)
    smooth = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    fine = rng.normal(0, 6, (size, size, 3)).astype(np.float32)
    return np.clip(base + smooth + fine, 0, 255).astype(np.float32)


def pick_color(rng: np.random.Generator, background: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A colour far from the background under the mask, so the shape is clearly visible."""
    local = background[mask.astype(bool)].mean(axis=0) if mask.any() else background.mean((0, 1))
    best, best_distance = None, -1.0
    for _ in range(20):
        color = rng.uniform(0, 255, 3)
        distance = float(np.linalg.norm(color - local))
        if distance > best_distance:
            best, best_distance = color, distance
        if distance >= 140:
            break
    return best


def shape_mask(label: int, center: tuple[int, int], extent: float, angle: float, size: int) -> np.ndarray:
    """Binary mask of a circle (0), square (1) or triangle (2) about `extent` pixels across."""
    mask = np.zeros((size, size), np.uint8)
    cx, cy = center
    if label == 0:
        cv2.circle(mask, (cx, cy), max(int(round(extent / 2)), 2), 1, -1)
        return mask
    if label == 1:
        side = extent / (abs(np.cos(np.radians(angle))) + abs(np.sin(np.radians(angle))))
        points = cv2.boxPoints(((cx, cy), (side, side), angle))
    else:
        radius = extent / 1.7
        thetas = np.radians(angle) + np.array([0, 2, 4]) * np.pi / 3
        points = np.stack([cx + radius * np.cos(thetas), cy + radius * np.sin(thetas)], axis=1)
    cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
    return mask


def random_shape_mask(rng: np.random.Generator, label: int, extent: float, size: int, near=None) -> np.ndarray:
    """A shape mask at a random place inside the image (or close to `near`, a centre)."""
    half = int(np.ceil(extent / 2))
    if near is not None:
        cx = int(np.clip(near[0] + rng.uniform(-0.7, 0.7) * extent, half, size - half))
        cy = int(np.clip(near[1] + rng.uniform(-0.7, 0.7) * extent, half, size - half))
    else:
        cx, cy = (int(v) for v in rng.integers(half, max(size - half, half + 1), 2))
    angle = rng.uniform(-15, 15) if label == 1 else rng.uniform(0, 360)
    return shape_mask(label, (cx, cy), extent, angle, size)


def fits(candidate: np.ndarray, shapes: list[Shape], occlusion: bool) -> bool:
    """Without occlusion: no contact with others. With it: every earlier shape keeps 40% visible."""
    if not candidate.any():
        return False
    if not occlusion:
        taken = np.zeros_like(candidate)
        for shape in shapes:
            taken |= shape.mask
        return not (cv2.dilate(taken, np.ones((5, 5), np.uint8)) & candidate).any()
    cover = candidate.astype(bool)
    for index, shape in enumerate(shapes):
        visible = shape.mask.astype(bool) & ~cover
        for later in shapes[index + 1 :]:
            visible &= ~later.mask.astype(bool)
        if visible.sum() < 0.4 * shape.mask.sum():
            return False
    return True


def crowd_mask(rng: np.random.Generator, label: int, size: int) -> np.ndarray:
    """A tight cluster of 5-9 tiny shapes of one class (annotated as one iscrowd region)."""
    mask = np.zeros((size, size), np.uint8)
    region = min(40, size // 2)
    x0, y0 = (int(v) for v in rng.integers(0, size - region, 2))
    for _ in range(int(rng.integers(5, 10))):
        center = (x0 + int(rng.integers(4, region - 4)), y0 + int(rng.integers(4, region - 4)))
        mask |= shape_mask(label, center, rng.uniform(6, 10), rng.uniform(0, 360), size)
    return mask


def place_shapes(rng: np.random.Generator, background: np.ndarray, options: SynthOptions) -> list[Shape]:
    """Choose classes, sizes and places for one image's shapes."""
    size = options.image_size
    weights = options.imbalance ** (-np.arange(3) / 2.0)
    shapes: list[Shape] = []
    if rng.random() < options.crowd_fraction:
        label = int(rng.choice(3, p=weights / weights.sum()))
        mask = crowd_mask(rng, label, size)
        shapes.append(Shape(mask, pick_color(rng, background, mask), label, crowd=True))
    count = 0 if rng.random() < 0.05 else int(rng.integers(1, options.max_objects + 1))
    for _ in range(count):
        label = int(rng.choice(3, p=weights / weights.sum()))
        extent = rng.uniform(options.min_size, options.max_size)
        for _attempt in range(30):
            near = None
            if options.occlusion and shapes and rng.random() < 0.6:
                near = np.argwhere(shapes[int(rng.integers(len(shapes)))].mask).mean(axis=0)[::-1]
            candidate = random_shape_mask(rng, label, extent, size, near)
            if fits(candidate, shapes, options.occlusion):
                shapes.append(Shape(candidate, pick_color(rng, background, candidate), label))
                break
    return shapes


def render_image(rng: np.random.Generator, options: SynthOptions) -> tuple[np.ndarray, list[tuple[Shape, np.ndarray]]]:
    """One image (uint8 BGR) and its shapes, each with the visible part of its mask."""
    background = make_background(rng, options.image_size)
    shapes = place_shapes(rng, background, options)
    image = background.copy()
    for shape in shapes:
        image[shape.mask.astype(bool)] = shape.color
    covered = np.zeros((options.image_size,) * 2, bool)
    visible = []
    for shape in reversed(shapes):
        visible.append((shape, shape.mask.astype(bool) & ~covered))
        covered |= shape.mask.astype(bool)
    return np.clip(np.round(image), 0, 255).astype(np.uint8), visible[::-1]


def shape_annotation(shape: Shape, visible: np.ndarray) -> dict:
    """COCO annotation fields (no ids) for one shape's visible mask."""
    fields = mask_to_annotation(visible)
    if shape.crowd:
        fields["segmentation"] = encode_rle(visible)
    return {"category_id": shape.label + 1, "iscrowd": int(shape.crowd), **fields}


def make_shapes(out_dir: str | os.PathLike, num_images: int, seed: int, **opts) -> Path:
    """Render `num_images` images into out_dir/images and write out_dir/annotations.json.

    Keyword options are the fields of SynthOptions. Returns the annotations path.
    """
    options = read_options(SynthOptions, opts, "synth")
    return write_set(out_dir, num_images, seed, options, shape_objects, "synth", "synthetic shapes", CATEGORY_NAMES)


def shape_objects(rng: np.random.Generator, options: SynthOptions) -> tuple[np.ndarray, list[dict]]:
    """One image and its shapes' annotation fields."""
    image, shapes = render_image(rng, options)
    return image, [shape_annotation(shape, visible) for shape, visible in shapes]


def run(args) -> None:
    """CLI: python -m datasets synth."""
    path = make_shapes(
        args.out, args.num_images, args.seed, image_size=args.image_size, min_size=args.min_size,
        max_size=args.max_size, max_objects=args.max_objects, crowd_fraction=args.crowd_fraction,
        imbalance=args.imbalance, occlusion=args.occlusion, image_format=args.format,
    )
    print(f"wrote {args.num_images} images and {path}")
