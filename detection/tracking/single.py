"""Single-object tracking as a library: `follow_box(frames, tracker, init_xywh)` starts a tracker (SiamFC) on a box of
the first frame and answers its box in every frame; `parse_box` reads an 'x,y,w,h' box. Used by the CLI and serve."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Iterable, Iterator

import cv2
import numpy as np

from datasets.core.errors import UserError
from detection.tracking.base import SingleObjectTracker, TrackingStats


@dataclass
class FollowedFrame:
    """The target in one frame: frame number (from 1), the frame (BGR), its box [4] xyxy and the tracker's score
    (None on the first frame, where the box is the given one)."""

    index: int
    image: np.ndarray
    box: np.ndarray
    score: float | None


def parse_box(text: str, name: str = "init") -> np.ndarray:
    """'x,y,w,h' -> [4] xywh floats; UserError (naming the option `name`) unless 4 finite numbers with a positive
    width and height."""
    try:
        values = [float(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        values = []
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise UserError(f"{name} must be x,y,w,h (4 numbers, pixels of the first frame), got {text!r}")
    if values[2] <= 0 or values[3] <= 0:
        raise UserError(f"{name} {text}: the box has zero size (width and height must be positive)")
    return np.array(values)


def check_inside(box_xywh: np.ndarray, frame: np.ndarray) -> None:
    """UserError when the init box is not inside the first frame."""
    height, width = frame.shape[:2]
    x, y, w, h = box_xywh
    if x < 0 or y < 0 or x + w > width or y + h > height:
        raise UserError(f"the init box {x:g},{y:g},{w:g},{h:g} is not inside the first frame ({width}x{height})")


def follow_box(frames: Iterable[np.ndarray], tracker: SingleObjectTracker, init_xywh: np.ndarray,
               stats: TrackingStats | None = None) -> Iterator[FollowedFrame]:
    """Follow the box init_xywh [4] (x, y, w, h pixels of the first frame) through `frames` (BGR uint8 [H, W, 3],
    all one size) with `tracker`, lazily, one FollowedFrame a frame. `stats` (when given) counts the frames and the
    seconds spent in the tracker's update. UserError when there are no frames, the box is not inside the first
    frame or a frame's size differs."""
    stats = stats if stats is not None else TrackingStats()
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise UserError("no frames could be read")
    init_xywh = np.asarray(init_xywh, dtype=np.float64)
    check_inside(init_xywh, first)
    box = np.concatenate([init_xywh[:2], init_xywh[:2] + init_xywh[2:]])
    tracker.init(cv2.cvtColor(first, cv2.COLOR_BGR2RGB), box)
    stats.frames = 1
    yield FollowedFrame(1, first, box, None)
    size = first.shape[:2]
    for index, image in enumerate(frames, 2):
        if image.shape[:2] != size:
            raise UserError(f"frame {index} is {image.shape[1]}x{image.shape[0]}, the first was {size[1]}x{size[0]}")
        started = time.perf_counter()
        box, score = tracker.update(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        stats.tracker_seconds += time.perf_counter() - started
        stats.frames = index
        yield FollowedFrame(index, image, np.asarray(box, dtype=np.float64), float(score))
