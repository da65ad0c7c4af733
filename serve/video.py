"""Video uploads of POST /v1/track: limits on bytes, frames and frame size, then every frame read with OpenCV.

OpenCV reads videos from files, so the upload goes to a temporary file, removed once its frames are read.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from datasets.core.errors import UserError
from datasets.core.video import open_video, video_fps, video_frames

VIDEO_CONTENT_TYPES = ("video/mp4", "video/quicktime", "video/webm", "video/x-matroska", "video/x-msvideo",
                       "video/avi", "application/octet-stream")


class TrackError(Exception):
    """A /v1/track request the service cannot use (its video or its parameters): HTTP status, code, sentence."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail

    def as_dict(self) -> dict:
        """Plain data that crosses from the tracker deployment to the ingress."""
        return {"status": self.status, "error": self.error, "detail": self.detail}


@dataclass(frozen=True)
class VideoLimits:
    """Bounds on an accepted video: bytes (413), frames and pixels a frame (422), the smallest side (422).

    The whole video is held decoded: max_frames * max_pixels * 3 bytes at most (830 MB at the defaults).
    """

    max_bytes: int = 32 * 1024 * 1024
    max_frames: int = 300
    max_pixels: int = 1280 * 720
    min_side: int = 2


@dataclass
class Video:
    """A decoded upload: frames BGR uint8 [H, W, 3], all of one size, and the rate the file declares."""

    frames: list[np.ndarray]
    fps: float
    width: int
    height: int


def check_frame_size(width: int, height: int, limits: VideoLimits) -> None:
    """TrackError (422) when a frame of width x height is over the pixel limit or under the smallest side."""
    if width * height > limits.max_pixels:
        raise TrackError(422, "video_too_large", f"the video is {width}x{height} = {width * height} pixels a "
                         f"frame; the limit is {limits.max_pixels}")
    if min(width, height) < limits.min_side:
        raise TrackError(422, "video_too_small",
                         f"the video is {width}x{height}; each side must be at least {limits.min_side} pixels")


def read_frames(capture: cv2.VideoCapture, limits: VideoLimits) -> Video:
    """Every frame of an open capture: the declared size (when there is one) and frame count are checked before
    decoding, the first frame's size again."""
    width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    if width and height:
        check_frame_size(width, height, limits)
    too_many = TrackError(422, "too_many_frames", f"the video has more than {limits.max_frames} frames, the limit")
    if int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) > limits.max_frames:
        raise too_many
    frames: list[np.ndarray] = []
    for frame in video_frames(capture):
        if len(frames) == limits.max_frames:
            raise too_many
        if frame.shape[:2] != (height, width):
            check_frame_size(frame.shape[1], frame.shape[0], limits)
            if frames:
                raise TrackError(422, "invalid_video", f"frame {len(frames) + 1} is {frame.shape[1]}x"
                                 f"{frame.shape[0]}, the first was {width}x{height}")
            height, width = frame.shape[:2]
        frames.append(frame)
    if not frames:
        raise TrackError(422, "no_frames", "the video opens but no frame of it can be decoded")
    return Video(frames, video_fps(capture), width, height)


def read_video(data: bytes, limits: VideoLimits) -> Video:
    """Check and decode an uploaded video (MP4, AVI, MOV, MKV, WebM: what OpenCV's FFmpeg reads)."""
    if not data:
        raise TrackError(400, "empty_body", "the request has no video data")
    if len(data) > limits.max_bytes:
        raise TrackError(413, "body_too_large", f"the video has {len(data)} bytes; the limit is {limits.max_bytes}")
    with tempfile.TemporaryDirectory(prefix="detpipe-track-") as folder:
        path = Path(folder) / "upload"
        path.write_bytes(data)
        try:
            capture = open_video(path)
        except UserError:
            raise TrackError(400, "invalid_video", "the data is not a video OpenCV can read (MP4, AVI, MOV, MKV, "
                             "WebM), or it is cut short or has no frames") from None
        try:
            return read_frames(capture, limits)
        finally:
            capture.release()
