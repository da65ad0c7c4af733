"""Pictures of label issues: per issue a crop around the labelled box (green, named "label: ...") and the model's
box (orange, "model: ... score"), captioned with rank, kind, score and file; many crops make issues.png.
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from datasets.core.errors import UserError
from datasets.core.images import read_bgr, write_image
from datasets.view.draw import label_size, put_label

TILE = 224  # side of one issue's crop in the gallery, pixels
CAPTION = 38  # caption strip under it
COLUMNS = 6
LABEL_COLOUR = (60, 190, 60)  # BGR
MODEL_COLOUR = (0, 140, 255)
BACKGROUND = 40


def crop_window(issue: dict, width: int, height: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1): the labelled and the model's box with a margin of half their size (16 px at least)."""
    boxes = [b for b in (issue.get("bbox"), issue.get("model_bbox")) if b]
    x0 = min(b[0] for b in boxes)
    y0 = min(b[1] for b in boxes)
    x1 = max(b[0] + b[2] for b in boxes)
    y1 = max(b[1] + b[3] for b in boxes)
    margin = max(16.0, 0.5 * max(x1 - x0, y1 - y0))
    return (max(0, int(x0 - margin)), max(0, int(y0 - margin)), min(width, int(np.ceil(x1 + margin))),
            min(height, int(np.ceil(y1 + margin))))


def draw_box(canvas: np.ndarray, box, offset, scale: float, colour, text: str, below: bool) -> None:
    x = int(round((box[0] - offset[0]) * scale))
    y = int(round((box[1] - offset[1]) * scale))
    x2 = int(round((box[0] + box[2] - offset[0]) * scale))
    y2 = int(round((box[1] + box[3] - offset[1]) * scale))
    cv2.rectangle(canvas, (x, y), (x2, y2), colour, 2)
    width, height = label_size(text)
    tx = min(max(0, x), max(0, canvas.shape[1] - width))
    ty = min(y2 + height + 2, canvas.shape[0]) if below else y
    put_label(canvas, text, tx, ty, colour)


def caption_lines(issue: dict) -> list[str]:
    head = f"#{issue.get('rank', '?')} {issue['kind']} {issue['score']:.2f}"
    return [head, issue["file_name"][-30:]]


def issue_tile(image: np.ndarray, issue: dict) -> np.ndarray:
    """One issue as a [TILE + CAPTION, TILE, 3] BGR picture."""
    height, width = image.shape[:2]
    x0, y0, x1, y1 = crop_window(issue, width, height)
    crop = image[y0:y1, x0:x1]
    scale = TILE / max(crop.shape[:2])
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    canvas = np.full((TILE, TILE, 3), BACKGROUND, np.uint8)
    canvas[: size[1], : size[0]] = cv2.resize(crop, size, interpolation=cv2.INTER_NEAREST if scale > 1
                                              else cv2.INTER_AREA)
    if issue.get("model_bbox"):
        text = f"model: {issue['model_category']} {issue['model_score']:.2f}"
        draw_box(canvas, issue["model_bbox"], (x0, y0), scale, MODEL_COLOUR, text, below=True)
    if issue["kind"] != "missing":
        draw_box(canvas, issue["bbox"], (x0, y0), scale, LABEL_COLOUR, f"label: {issue['category']}", below=False)
    strip = np.full((CAPTION, TILE, 3), 255, np.uint8)
    for k, line in enumerate(caption_lines(issue)):
        cv2.putText(strip, line, (4, 15 + 17 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([canvas, strip])


def grid(tiles: list[np.ndarray], columns: int = COLUMNS) -> np.ndarray:
    """Tiles in rows of `columns`, 4 px apart."""
    rows = [tiles[k : k + columns] for k in range(0, len(tiles), columns)]
    gap = 4
    tile_h, tile_w = tiles[0].shape[:2]
    width = min(columns, len(tiles)) * (tile_w + gap) + gap
    out = np.full((len(rows) * (tile_h + gap) + gap, width, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            y, x = gap + r * (tile_h + gap), gap + c * (tile_w + gap)
            out[y : y + tile_h, x : x + tile_w] = tile
    return out


def issue_tiles(issues: list[dict], images_dir: str | os.PathLike) -> list[tuple[dict, np.ndarray]]:
    """(issue, tile) of each issue whose image can be read."""
    cache: dict[str, np.ndarray | None] = {}
    tiles = []
    for item in issues:
        name = item["file_name"]
        if name not in cache:
            try:
                cache[name] = read_bgr(Path(images_dir) / name)
            except UserError:
                cache[name] = None
        if cache[name] is not None:
            tiles.append((item, issue_tile(cache[name], item)))
    return tiles


def write_gallery(issues: list[dict], images_dir: str | os.PathLike, path: str | os.PathLike) -> int:
    """issues.png: the given issues' tiles in a grid; returns how many were drawn (none: no file)."""
    tiles = [tile for _, tile in issue_tiles(issues, images_dir)]
    if tiles:
        write_image(path, grid(tiles))
    return len(tiles)


def write_each(issues: list[dict], images_dir: str | os.PathLike, folder: str | os.PathLike) -> int:
    """One picture per issue: FOLDER/<rank>_<kind>_<image stem>.png; returns how many."""
    tiles = issue_tiles(issues, images_dir)
    for item, tile in tiles:
        write_image(Path(folder) / f"{item['rank']:04d}_{item['kind']}_{Path(item['file_name']).stem}.png", tile)
    return len(tiles)
