"""`tile`: cut large images into overlapping tiles, keeping boxes mostly inside each tile (clipped).

Masks are cropped with their tile; writes DIR/images/<stem>_<x>_<y>.<ext> and DIR/annotations.json, each
tile's image record naming its photo (`source`) and its place there (`offset`).
"""
from __future__ import annotations

from pathlib import Path

import cv2
from tqdm import tqdm

from datasets.core.coco import (annotation_mask, check_not_input, encode_rle, index_coco, load_coco,
                           mask_to_annotation, new_coco, require_dir, round_box, save_coco)
from datasets.core.errors import UserError
from datasets.core.images import read_bgr, write_image


def tile_starts(length: int, size: int, stride: int) -> list[int]:
    """Tile origins along one side; the last tile ends at the edge."""
    if length <= size:
        return [0]
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] != length - size:
        starts.append(length - size)
    return starts


def clip_to_tile(box: list[float], tile: tuple[int, int, int, int]) -> tuple[list[float], float]:
    """The box clipped to the tile in tile coordinates, and the fraction of it kept."""
    x, y, w, h = box
    tx, ty, tw, th = tile
    x0, y0 = max(x, tx), max(y, ty)
    x1, y1 = min(x + w, tx + tw), min(y + h, ty + th)
    if x1 <= x0 or y1 <= y0 or w <= 0 or h <= 0:
        return [], 0.0
    return [x0 - tx, y0 - ty, x1 - x0, y1 - y0], (x1 - x0) * (y1 - y0) / (w * h)


def tile_annotation(ann: dict, tile: tuple, mask_of, min_visibility: float) -> dict | None:
    """The annotation as seen in one tile, or None if too little of it is inside."""
    box, visible = clip_to_tile(ann["bbox"], tile)
    if visible < min_visibility:
        return None
    fields = {"bbox": round_box(box), "area": round(box[2] * box[3], 3)}
    if ann.get("segmentation"):
        tx, ty, tw, th = tile
        mask = mask_of(ann)[ty : ty + th, tx : tx + tw]
        if not mask.any():
            return None
        cropped = mask_to_annotation(mask)
        segmentation = encode_rle(mask) if ann.get("iscrowd") else cropped["segmentation"]
        fields.update(segmentation=segmentation, area=cropped["area"])
    return {**ann, **fields}


def tile_image(img: dict, anns: list, size: int, stride: int, min_visibility: float):
    """Yield (tile box, annotations) for every tile of one image."""
    masks: dict = {}

    def mask_of(ann: dict):
        if ann["id"] not in masks:
            masks[ann["id"]] = annotation_mask(ann, img["height"], img["width"])
        return masks[ann["id"]]

    for ty in tile_starts(img["height"], size, stride):
        for tx in tile_starts(img["width"], size, stride):
            tile = (tx, ty, min(size, img["width"]), min(size, img["height"]))
            kept = [t for a in anns if (t := tile_annotation(a, tile, mask_of, min_visibility)) is not None]
            yield tile, kept


def check_options(size: int, overlap: float, min_visibility: float) -> int:
    """The stride between tiles; UserError for options out of range."""
    if size < 8:
        raise UserError(f"--size must be at least 8, got {size}")
    if not 0 <= overlap < 1:
        raise UserError(f"--overlap must be in [0, 1), got {overlap}")
    if not 0 < min_visibility <= 1:
        raise UserError(f"--min-visibility must be in (0, 1], got {min_visibility}")
    return max(1, int(round(size * (1 - overlap))))


def tile_record(img: dict, tile_id: int, name: str, tile: tuple[int, int, int, int]) -> dict:
    """The image record of one tile: `source` is the file_name of the photo it was cut from and `offset`
    its top-left corner there (a tile of a tile keeps the first photo and adds the offsets), so
    `split --group-by source` keeps a photo's tiles in one split."""
    tx, ty, tw, th = tile
    ox, oy = img.get("offset", [0, 0]) if "source" in img else [0, 0]
    return {"id": tile_id, "file_name": name, "width": tw, "height": th,
            "source": img.get("source", img["file_name"]), "offset": [ox + tx, oy + ty]}


def tile_dataset(file: str | Path, images_dir: str | Path, size: int, overlap: float, out: str | Path,
                 min_visibility: float = 0.5) -> Path:
    """Tile every image of a COCO file; returns the new annotations path."""
    stride = check_options(size, overlap, min_visibility)
    images_dir, out = require_dir(images_dir, "--images"), Path(out)
    check_not_input(out / "images", images_dir)
    check_not_input(out / "annotations.json", file)
    data = load_coco(file)
    images, _, by_image = index_coco(data, str(file))
    missing = [img["file_name"] for img in images.values() if not (images_dir / img["file_name"]).is_file()]
    if missing:
        raise UserError(f"{images_dir / missing[0]}: image file not found ({len(missing)} missing)")
    new_images, new_anns = [], []
    for image_id, img in tqdm(images.items(), desc="tile", disable=None):
        pixels = read_bgr(images_dir / img["file_name"], unchanged=True)
        if pixels.shape[:2] != (img["height"], img["width"]):
            raise UserError(f"image {image_id} ({img['file_name']}): file size differs from the json (run validate)")
        rel = Path(img["file_name"])
        for (tx, ty, tw, th), anns in tile_image(img, by_image[image_id], size, stride, min_visibility):
            name = (rel.parent / f"{rel.stem}_{tx}_{ty}{rel.suffix}").as_posix()
            write_image(out / "images" / name, pixels[ty : ty + th, tx : tx + tw])
            tile_id = len(new_images) + 1
            new_images.append(tile_record(img, tile_id, name, (tx, ty, tw, th)))
            new_anns += [{**a, "id": len(new_anns) + i + 1, "image_id": tile_id} for i, a in enumerate(anns)]
    path = out / "annotations.json"
    save_coco(path, new_coco(new_images, new_anns, data["categories"], data.get("info")))
    return path


def run(args) -> None:
    """CLI: python -m datasets tile."""
    path = tile_dataset(args.file, args.images, args.size, args.overlap, args.out, args.min_visibility)
    print(f"wrote tiles to {Path(args.out) / 'images'} and {path}")
