"""What the predict and track commands read: the images of a file or folder, and the frames of a video or of a folder
of images (sorted by name) with their frame rate (the video's, a seqinfo.ini's, or 25)."""
from __future__ import annotations

import configparser
import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from datasets.core.errors import UserError
from datasets.core.images import IMAGE_SUFFIXES, list_images, read_bgr
from datasets.core.video import VIDEO_SUFFIXES, open_video, video_fps, video_frames

DEFAULT_FPS = 25.0


@dataclass
class FrameSource:
    """Frames (BGR) of a video or a folder, how many there are (None if unknown), their rate, a name."""

    frames: Iterator[np.ndarray]
    count: int | None
    fps: float
    name: str


def image_files(source: Path) -> list[Path]:
    """The image itself, or every image under a folder (recursively, sorted); UserError when there is none."""
    if source.is_dir():
        files = [source / rel for rel in list_images(source)]
        if not files:
            raise UserError(f"{source}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
        return files
    if source.suffix.lower() in IMAGE_SUFFIXES:
        return [source]
    raise UserError(f"{source}: not an image ({', '.join(IMAGE_SUFFIXES)}), video or folder")


def is_video(source: Path) -> bool:
    return source.is_file() and source.suffix.lower() in VIDEO_SUFFIXES


def folder_fps(folder: Path, given: float | None = None) -> float:
    """`given`, else the frameRate of a seqinfo.ini in or beside the folder (MOTChallenge), else 25."""
    if given:
        return given
    for ini in (folder / "seqinfo.ini", folder.parent / "seqinfo.ini"):
        if ini.is_file():
            parser = configparser.ConfigParser()
            with contextlib.suppress(configparser.Error, ValueError):
                parser.read(ini)
                return float(parser.get("Sequence", "frameRate", fallback=str(DEFAULT_FPS)))
    return DEFAULT_FPS


def open_frames(source: Path, stack: contextlib.ExitStack, fps: float | None = None,
                name: str | None = None) -> FrameSource:
    """The frames of a video file, or of the images of a folder in name order; the video is released when `stack`
    closes. `fps` and `name` replace what the source says (name: the video's stem, or the sequence folder's name)."""
    if not source.exists():
        raise UserError(f"source not found: {source}")
    if source.is_file():
        if not is_video(source):
            raise UserError(f"{source}: not a video ({', '.join(sorted(VIDEO_SUFFIXES))}) or a folder of frames")
        capture = open_video(source)
        stack.callback(capture.release)
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
        return FrameSource(video_frames(capture), count, fps or video_fps(capture), name or source.stem)
    files = image_files(source)
    named = source.parent if (source.parent / "seqinfo.ini").is_file() else source
    return FrameSource((read_bgr(f) for f in files), len(files), folder_fps(source, fps), name or named.resolve().name)
