"""Video I/O with OpenCV: open a file with a clear error, read its frames, write an MP4 atomically.

Shared by `datasets sequences`, `detection.predict` and `detection.track`; frames are BGR uint8.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from datasets.core.atomic import atomic_path
from datasets.core.errors import UserError

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}


def open_video(path: str | os.PathLike) -> cv2.VideoCapture:
    """An open capture of a video file; UserError naming the file when it cannot be opened."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise UserError(f"{path}: not a readable video")
    return capture


def video_frames(capture: cv2.VideoCapture) -> Iterator[np.ndarray]:
    """The capture's frames (BGR) until the first one that cannot be read."""
    while True:
        ok, frame = capture.read()
        if not ok:
            return
        yield frame


def video_fps(capture: cv2.VideoCapture, default: float = 25.0) -> float:
    """Frames per second the file declares, or `default` when it declares none."""
    fps = capture.get(cv2.CAP_PROP_FPS)
    return float(fps) if fps and fps > 0 else default


class Mp4Writer:
    """Frames to an MP4 (mp4v) written under a temporary name; `close()` renames it into place.

    The writer opens on the first frame, which sets the size. Use `mp4_writer(path, fps)`.
    """

    def __init__(self, tmp: Path, fps: float) -> None:
        self.tmp = tmp
        self.fps = fps
        self.frames = 0
        self._writer: cv2.VideoWriter | None = None

    def write(self, frame: np.ndarray) -> None:
        """Append one BGR frame; every frame must have the first one's size."""
        if self._writer is None:
            size = (frame.shape[1], frame.shape[0])
            self._writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, size)
            if not self._writer.isOpened():
                raise UserError(f"{self.tmp.parent}: OpenCV cannot write an MP4 video here")
        self._writer.write(frame)
        self.frames += 1

    def release(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None


@contextlib.contextmanager
def mp4_writer(path: str | os.PathLike, fps: float) -> Iterator[Mp4Writer]:
    """An Mp4Writer whose file appears at `path` only when the block ends cleanly with frames written."""
    with atomic_path(path, suffix=".mp4") as tmp:
        writer = Mp4Writer(tmp, fps)
        try:
            yield writer
        finally:
            writer.release()
        if writer.frames == 0:
            raise UserError(f"{path}: no frames to write")
