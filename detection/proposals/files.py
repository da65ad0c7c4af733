"""Proposal files: JSON {file_name: [[x, y, w, h], ...]} (COCO boxes, best first), written atomically and read
with errors that name the file, the entry and the box.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping

import numpy as np

from datasets.core.atomic import write_json
from datasets.core.errors import UserError

TOLERANCE = 1.0  # pixels a box may reach past the image's edges (rounding in other tools)


def write_proposals(path: str | os.PathLike, proposals: Mapping[str, np.ndarray]) -> None:
    """Write {file_name: boxes [P, 4] xyxy} as JSON {file_name: [[x, y, w, h], ...]} (2 decimals), atomically."""
    data = {}
    for name, boxes in proposals.items():
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
        data[str(name)] = np.round(xywh, 2).tolist()
    write_json(path, data)


def load_json(path: Path) -> dict:
    """The file's JSON object; UserError when missing, not JSON or not a mapping."""
    if not path.is_file():
        raise UserError(f"{path}: proposals file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not a JSON file ({exc})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object {{file_name: [[x, y, w, h], ...]}}, "
                        f"got a {type(data).__name__}")
    return data


def is_box(box: object) -> bool:
    """True for a list of 4 JSON numbers (true/false are not numbers here)."""
    return type(box) is list and len(box) == 4 and all(type(v) in (int, float) for v in box)


def entry_boxes(value: object, where: str, height: int, width: int) -> np.ndarray:
    """One entry's [[x, y, w, h], ...] -> float32 [P, 4] xyxy clipped to the image; UserError naming `where`
    (file and entry) and the box for anything but finite boxes of positive size within 1 px of the image."""
    if not isinstance(value, list):
        raise UserError(f"{where}: expected a list of [x, y, w, h] boxes, got a {type(value).__name__}")
    for index, box in enumerate(value):
        if not is_box(box):
            raise UserError(f"{where}, box {index}: expected 4 numbers [x, y, w, h], got {json.dumps(box)[:80]}")
    xywh = np.array(value, np.float64).reshape(-1, 4)
    problems = [
        (~np.isfinite(xywh).all(axis=1), "has a value that is not a finite number"),
        ((xywh[:, 2] <= 0) | (xywh[:, 3] <= 0), "needs a width and height above 0"),
        ((xywh[:, 0] < -TOLERANCE) | (xywh[:, 1] < -TOLERANCE) | (xywh[:, 0] + xywh[:, 2] > width + TOLERANCE)
         | (xywh[:, 1] + xywh[:, 3] > height + TOLERANCE), f"lies outside the {width}x{height} image"),
    ]
    for bad, reason in problems:
        if bad.any():
            index = int(np.argmax(bad))
            raise UserError(f"{where}, box {index} {value[index]}: {reason}")
    xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
    xyxy[:, 0::2] = xyxy[:, 0::2].clip(0, width)
    xyxy[:, 1::2] = xyxy[:, 1::2].clip(0, height)
    return xyxy.astype(np.float32)


def read_proposals(path: str | os.PathLike, image_sizes: Mapping[str, tuple[int, int]]) -> dict[str, np.ndarray]:
    """{file_name: float32 [P, 4] xyxy, in the file's order} from a proposals file, checked against the dataset's
    images ({file_name: (height, width)}); images without an entry are absent. UserError naming the file and
    the entry: not JSON, not an object, an unknown file_name, a box that is not 4 numbers, w or h <= 0, or a
    box more than 1 px outside its image."""
    path = Path(path)
    found = {}
    for name, value in load_json(path).items():
        if name not in image_sizes:
            raise UserError(f"{path}: entry {name!r} is not an image of the dataset "
                            f"({len(image_sizes)} images, e.g. {next(iter(image_sizes), 'none')!r})")
        height, width = image_sizes[name]
        found[name] = entry_boxes(value, f"{path}: entry {name!r}", int(height), int(width))
    return found
