"""Draw tracks on a frame: one stable colour per track id (golden-ratio hues) with an `id N` label on each box, or the
one target of single-object tracking with its score. The annotated MP4s of the track command are made of these."""
from __future__ import annotations

import colorsys

import cv2
import numpy as np

from datasets.view.draw import put_label
from detection.tracking.base import Track

GOLDEN = 0.618033988749895
TARGET_COLOR = (0, 200, 255)  # BGR


def id_color(track_id: int) -> tuple[int, int, int]:
    """A bright BGR colour of its own for each id; neighbouring ids get far-apart hues."""
    hue = (track_id * GOLDEN) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 0.95)
    return int(b * 255), int(g * 255), int(r * 255)


def draw_tracks(frame_bgr: np.ndarray, tracks: list[Track]) -> np.ndarray:
    """A copy of the frame with each track's box and `id N` label in the id's colour."""
    canvas = frame_bgr.copy()
    for track in tracks:
        x1, y1, x2, y2 = (int(round(v)) for v in track.box)
        color = id_color(track.track_id)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), color, 2, cv2.LINE_AA)
        put_label(canvas, f"id {track.track_id}", max(x1, 0), max(y1, 0), color)
    return canvas


def draw_target(frame_bgr: np.ndarray, box_xyxy: np.ndarray, score: float | None) -> np.ndarray:
    """A copy of the frame with the target's box, labelled with the tracker's score (`init` on the first frame)."""
    canvas = frame_bgr.copy()
    x1, y1, x2, y2 = (int(round(v)) for v in box_xyxy)
    cv2.rectangle(canvas, (x1, y1), (x2, y2), TARGET_COLOR, 2, cv2.LINE_AA)
    put_label(canvas, "init" if score is None else f"{score:.2f}", max(x1, 0), max(y1, 0), TARGET_COLOR)
    return canvas
