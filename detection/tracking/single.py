"""Single-object tracking for `python -m detection.track --checkpoint SIAMFC.pt --init x,y,w,h`: the tracker starts on
the box in the first frame; OUT/<name>.txt gets one OTB `x,y,w,h` line per frame, OUT/<name>.mp4 the drawn box."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import cv2
import numpy as np

from datasets.view.draw import put_label
from detection.errors import UserError

BOX_COLOR = (0, 200, 255)  # BGR


def parse_init(text: str) -> np.ndarray:
    """'x,y,w,h' -> [4] xywh floats; UserError unless 4 finite numbers with a positive width and height."""
    try:
        values = [float(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        values = []
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise UserError(f"--init must be x,y,w,h (4 numbers, pixels of the first frame), got {text!r}")
    if values[2] <= 0 or values[3] <= 0:
        raise UserError(f"--init {text}: the box has zero size (width and height must be positive)")
    return np.array(values)


def check_inside(box_xywh: np.ndarray, frame: np.ndarray, text: str) -> None:
    """UserError when the --init box is not inside the first frame."""
    height, width = frame.shape[:2]
    x, y, w, h = box_xywh
    if x < 0 or y < 0 or x + w > width or y + h > height:
        raise UserError(f"--init {text}: the box is not inside the first frame ({width}x{height})")


def draw_box(frame_bgr: np.ndarray, box_xyxy: np.ndarray, score: float | None) -> np.ndarray:
    """A copy of the frame with the target's box, labelled with the tracker's score (none on the first frame)."""
    canvas = frame_bgr.copy()
    x1, y1, x2, y2 = (int(round(v)) for v in box_xyxy)
    cv2.rectangle(canvas, (x1, y1), (x2, y2), BOX_COLOR, 2, cv2.LINE_AA)
    put_label(canvas, "init" if score is None else f"{score:.2f}", max(x1, 0), max(y1, 0), BOX_COLOR)
    return canvas


@dataclass
class SotStats:
    """What a run did: frames, and seconds spent in the tracker's update."""

    frames: int = 0
    tracker_seconds: float = 0.0


def run_single(frames, tracker, init_xywh: np.ndarray, init_text: str, video, stats: SotStats) -> list[str]:
    """Track through `frames` (BGR, an iterator) from the box `init_xywh` in the first; OTB lines, one a frame."""
    first = next(frames, None)
    if first is None:
        raise UserError("--source: no frames could be read")
    check_inside(init_xywh, first, init_text)
    box = np.concatenate([init_xywh[:2], init_xywh[:2] + init_xywh[2:]])
    tracker.init(cv2.cvtColor(first, cv2.COLOR_BGR2RGB), box)
    lines, score, image, size = [], None, first, first.shape[:2]
    while image is not None:
        if image.shape[:2] != size:
            raise UserError(f"frame {stats.frames + 1} is {image.shape[1]}x{image.shape[0]}, "
                            f"the first was {size[1]}x{size[0]}")
        if stats.frames > 0:
            started = time.perf_counter()
            box, score = tracker.update(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
            stats.tracker_seconds += time.perf_counter() - started
        x1, y1, x2, y2 = box
        lines.append(f"{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f}")
        if video is not None:
            video.write(draw_box(image, box, score))
        stats.frames += 1
        image = next(frames, None)
    return lines
