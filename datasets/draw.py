"""`draw`: images with their boxes, semi-transparent masks and class labels, for looking at a dataset.

Small images are enlarged (nearest neighbour) so labels stay readable.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from datasets.coco import annotation_mask, check_not_input, index_coco, load_coco, require_dir
from datasets.errors import UserError
from datasets.images import read_image, write_image

PALETTE = [(230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66), (0, 114, 178), (213, 94, 0),
           (204, 121, 167), (255, 255, 255), (127, 60, 141), (17, 165, 121), (57, 105, 172), (242, 183, 1)]
MIN_SIDE = 512


def color_of(category_id: int) -> tuple[int, int, int]:
    r, g, b = PALETTE[(category_id - 1) % len(PALETTE)]
    return (b, g, r)


LABEL_SCALE, LABEL_THICKNESS = 0.5, 1


def label_size(text: str) -> tuple[int, int]:
    """Width and height in pixels of the filled box `put_label` draws for `text`."""
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, LABEL_SCALE, LABEL_THICKNESS)
    return tw + 4, th + base + 2


def put_label(image: np.ndarray, text: str, x: int, y: int, color) -> None:
    """Text on a filled box just above (x, y), or inside the image top when there is no room."""
    scale, thickness = LABEL_SCALE, LABEL_THICKNESS
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    y = max(y, th + base + 2)
    cv2.rectangle(image, (x, y - th - base - 2), (x + tw + 4, y), color, -1)
    luminance = 0.114 * color[0] + 0.587 * color[1] + 0.299 * color[2]
    ink = (0, 0, 0) if luminance > 140 else (255, 255, 255)
    cv2.putText(image, text, (x + 2, y - base - 1), cv2.FONT_HERSHEY_SIMPLEX, scale, ink, thickness, cv2.LINE_AA)


def draw_annotations(image: np.ndarray, img: dict, anns: list, categories: dict) -> np.ndarray:
    """A copy of the image (BGR), enlarged if small, with masks, boxes and labels drawn."""
    scale = max(1, int(np.ceil(MIN_SIDE / max(img["width"], img["height"]))))
    canvas = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    overlay = canvas.copy()
    outlines = []
    for ann in anns:
        mask = annotation_mask(ann, img["height"], img["width"])
        mask = np.repeat(np.repeat(mask, scale, axis=0), scale, axis=1)
        overlay[mask.astype(bool)] = color_of(ann["category_id"])
        contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        outlines.append((contours, color_of(ann["category_id"])))
    canvas = cv2.addWeighted(overlay, 0.45, canvas, 0.55, 0)
    for contours, color in outlines:
        cv2.drawContours(canvas, contours, -1, color, 1, cv2.LINE_AA)
    for ann in anns:
        x, y, w, h = (v * scale for v in ann["bbox"])
        color = color_of(ann["category_id"])
        cv2.rectangle(canvas, (int(round(x)), int(round(y))), (int(round(x + w)) - 1, int(round(y + h)) - 1), color, 2)
        name = categories[ann["category_id"]].get("name", str(ann["category_id"]))
        put_label(canvas, name + (" (crowd)" if ann.get("iscrowd") else ""), int(round(x)), int(round(y)), color)
    return canvas


def as_bgr(image: np.ndarray) -> np.ndarray:
    """8-bit 3-channel version of a decoded image (grey, alpha or 16-bit)."""
    if image.dtype != np.uint8:
        image = (image / max(float(image.max()), 1.0) * 255).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return image[..., :3] if image.shape[2] == 4 else image


def draw_dataset(file: str | Path, images_dir: str | Path, out: str | Path, limit: int = 20) -> list[Path]:
    """Draw the first `limit` images of a COCO file into `out`; returns the written paths."""
    images_dir, out = require_dir(images_dir, "--images"), Path(out)
    check_not_input(out, images_dir)
    if limit < 1:
        raise UserError(f"--limit must be at least 1, got {limit}")
    data = load_coco(file)
    images, categories, by_image = index_coco(data, str(file))
    written = []
    for image_id in sorted(images)[:limit]:
        img = images[image_id]
        pixels = as_bgr(read_image(images_dir / img["file_name"], cv2.IMREAD_UNCHANGED))
        if pixels.shape[:2] != (img["height"], img["width"]):
            raise UserError(f"image {image_id} ({img['file_name']}): file size differs from the json (run validate)")
        target = (out / img["file_name"]).with_suffix(".png")
        check_not_input(target, file, images_dir / img["file_name"])
        write_image(target, draw_annotations(pixels, img, by_image[image_id], categories))
        written.append(target)
    return written


def run(args) -> None:
    """CLI: python -m datasets draw."""
    written = draw_dataset(args.file, args.images, args.out, args.limit)
    print(f"wrote {len(written)} images to {args.out}")
