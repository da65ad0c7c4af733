"""`draw`: images with their boxes, semi-transparent masks and class labels, for looking at a dataset.

Small images are enlarged (nearest neighbour) so labels stay readable; large ones are shrunk to --max-side.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from datasets.core.coco import annotation_mask, check_not_input, index_coco, load_coco, require_dir
from datasets.core.errors import UserError
from datasets.core.images import read_bgr, write_image

PALETTE = [(230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66), (0, 114, 178), (213, 94, 0),
           (204, 121, 167), (255, 255, 255), (127, 60, 141), (17, 165, 121), (57, 105, 172), (242, 183, 1)]
MIN_SIDE = 512
MIN_MAX_SIDE = 32
FORMATS = ("jpg", "png")
JPEG_QUALITY = 90


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


def canvas_scale(width: int, height: int, max_side: int = 0) -> float:
    """Drawing scale: small images enlarged by a whole factor towards MIN_SIDE, then shrunk if need be so
    the longer side is at most `max_side` pixels (0: no limit)."""
    longer = max(width, height)
    scale = max(1, int(np.ceil(MIN_SIDE / longer)))
    return max_side / longer if max_side and longer * scale > max_side else float(scale)


def mask_crop(ann: dict, height: int, width: int) -> tuple[int, int, np.ndarray]:
    """(x0, y0, mask) of an annotation cut to its extent, in image pixels: a polygon is rasterised in its
    own box only, so thousands of small objects on a large image stay fast."""
    seg = ann.get("segmentation")
    if isinstance(seg, list) and seg:
        xs, ys = [v for p in seg for v in p[0::2]], [v for p in seg for v in p[1::2]]
        x0, y0 = max(int(np.floor(min(xs))), 0), max(int(np.floor(min(ys))), 0)
        x1, y1 = min(int(np.ceil(max(xs))) + 1, width), min(int(np.ceil(max(ys))) + 1, height)
        if x1 <= x0 or y1 <= y0:
            return 0, 0, np.zeros((0, 0), np.uint8)
        shifted = [[v - (x0 if i % 2 == 0 else y0) for i, v in enumerate(p)] for p in seg]
        return x0, y0, annotation_mask({"segmentation": shifted}, y1 - y0, x1 - x0)
    mask = annotation_mask(ann, height, width)
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    if not len(rows):
        return 0, 0, np.zeros((0, 0), np.uint8)
    return int(cols[0]), int(rows[0]), mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def paint_mask(overlay: np.ndarray, ann: dict, img: dict, scale: float, color) -> tuple:
    """Fill the annotation's mask into `overlay` (canvas pixels); returns its outline contours."""
    x0, y0, mask = mask_crop(ann, img["height"], img["width"])
    cx0, cy0 = int(round(x0 * scale)), int(round(y0 * scale))
    cw, ch = int(round((x0 + mask.shape[1]) * scale)) - cx0, int(round((y0 + mask.shape[0]) * scale)) - cy0
    if mask.size == 0 or cw < 1 or ch < 1:
        return ()
    patch = cv2.resize(mask, (cw, ch), interpolation=cv2.INTER_NEAREST)
    overlay[cy0 : cy0 + ch, cx0 : cx0 + cw][patch.astype(bool)] = color
    contours, _ = cv2.findContours(patch, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE, offset=(cx0, cy0))
    return contours


def draw_annotations(image: np.ndarray, img: dict, anns: list, categories: dict, max_side: int = 0) -> np.ndarray:
    """A copy of the image (BGR), enlarged if small and shrunk to `max_side` if large (0: no limit), with
    masks, boxes and labels drawn."""
    scale = canvas_scale(img["width"], img["height"], max_side)
    size = (int(round(img["width"] * scale)), int(round(img["height"] * scale)))
    canvas = image if scale == 1 else cv2.resize(image, size, interpolation=cv2.INTER_NEAREST if scale > 1
                                                 else cv2.INTER_AREA)
    overlay = canvas.copy()
    outlines = [(paint_mask(overlay, ann, img, scale, color_of(ann["category_id"])), color_of(ann["category_id"]))
                for ann in anns]
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


def check_draw_options(limit: int, max_side: int, fmt: str) -> None:
    """UserError for a --limit, --max-side or --format out of range."""
    if limit < 1:
        raise UserError(f"--limit must be at least 1, got {limit}")
    if max_side != 0 and max_side < MIN_MAX_SIDE:
        raise UserError(f"--max-side must be 0 (full size) or at least {MIN_MAX_SIDE}, got {max_side}")
    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")


def draw_dataset(file: str | Path, images_dir: str | Path, out: str | Path, limit: int = 20, *,
                 max_side: int = 2048, fmt: str = "jpg") -> list[Path]:
    """Draw the first `limit` images of a COCO file into `out` as .jpg (or .png), the longer side at most
    `max_side` pixels (0: full size); returns the written paths."""
    images_dir, out = require_dir(images_dir, "--images"), Path(out)
    check_not_input(out, images_dir)
    check_draw_options(limit, max_side, fmt)
    data = load_coco(file)
    images, categories, by_image = index_coco(data, str(file))
    written = []
    for image_id in sorted(images)[:limit]:
        img = images[image_id]
        pixels = as_bgr(read_bgr(images_dir / img["file_name"], unchanged=True))
        if pixels.shape[:2] != (img["height"], img["width"]):
            raise UserError(f"image {image_id} ({img['file_name']}): file size differs from the json (run validate)")
        target = (out / img["file_name"]).with_suffix("." + fmt)
        check_not_input(target, file, images_dir / img["file_name"])
        drawn = draw_annotations(pixels, img, by_image[image_id], categories, max_side)
        write_image(target, drawn, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if fmt == "jpg" else None)
        written.append(target)
    return written


def run(args) -> None:
    """CLI: python -m datasets draw."""
    written = draw_dataset(args.file, args.images, args.out, args.limit, max_side=args.max_side, fmt=args.format)
    print(f"wrote {len(written)} images to {args.out}")
