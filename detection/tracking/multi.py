"""Multi-object tracking as a library: `track_frames(frames, detections, options)` runs ByteTrack over each frame's
detections (a detector's, public MOTChallenge ones, or given arrays) and answers the tracks of every frame."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Sequence

import cv2
import numpy as np

from datasets.core.errors import UserError
from detection.tracking.base import Embedder, Track, TrackingStats
from detection.tracking.boxes import xywh_to_xyxy
from detection.tracking.bytetrack import ByteTracker, ByteTrackOptions
from detection.tracking.mot_io import read_mot

if TYPE_CHECKING:
    from detection.inference.predictor import Predictor

Detections = tuple[np.ndarray, np.ndarray, np.ndarray]  # boxes [N, 4] xyxy, scores [N], classes [N]
Detect = Callable[[int, np.ndarray], Detections]  # (frame number from 1, BGR image) -> that frame's detections
NO_DETECTIONS: Detections = (np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64))
MAX_DETECTIONS = 100  # a detector's boxes per frame, by default (the track command's and POST /v1/track's)
NMS_IOU = 0.5  # boxes of any class overlapping a better one this much are dropped, by default (1 keeps all)


@dataclass
class TrackedFrame:
    """The confirmed tracks of one frame: frame number (from 1), the frame (BGR) and its tracks, by id."""

    index: int
    image: np.ndarray
    tracks: list[Track]


def detection_arrays(dets: list[dict], nms_iou: float) -> Detections:
    """A detector's answer (dicts with COCO `bbox` [x, y, w, h], `score`, `category_id`) as the tracker's arrays,
    with boxes of other classes on the same object removed (class-agnostic NMS at nms_iou): one object, one track."""
    import torch
    from torchvision.ops import nms

    boxes = xywh_to_xyxy(np.array([d["bbox"] for d in dets]).reshape(-1, 4))
    scores = np.array([d["score"] for d in dets], dtype=np.float64)
    keep = nms(torch.from_numpy(boxes), torch.from_numpy(scores), nms_iou).numpy()
    return boxes[keep], scores[keep], np.array([d["category_id"] for d in dets], dtype=np.int64)[keep]


def public_detections(path: str | Path) -> Detect:
    """Detections of frame n from a MOTChallenge detections file (class: its 8th column, -1 when absent)."""
    rows = read_mot(path, "detections")
    by_frame = rows.by_frame()

    def detect(frame: int, _image: np.ndarray) -> Detections:
        index = by_frame.get(frame)
        if index is None:
            return NO_DETECTIONS
        return xywh_to_xyxy(rows.boxes[index]), rows.scores[index], rows.classes[index]

    return detect


def detector_detections(predictor: Predictor, score_threshold: float, max_detections: int, nms_iou: float) -> Detect:
    """Detections of a frame by a Predictor (detection.inference.predictor), scores from `score_threshold` up (the
    tracker's low_threshold), at most `max_detections`, class-agnostic NMS at `nms_iou` (detection_arrays)."""

    def detect(_frame: int, image: np.ndarray) -> Detections:
        dets = predictor.predict([cv2.cvtColor(image, cv2.COLOR_BGR2RGB)], score_threshold, max_detections)[0]
        return detection_arrays(dets, nms_iou)

    return detect


def given_detections(per_frame: Sequence[Detections]) -> Detect:
    """The detections of frame n from a list made beforehand (one entry a frame, in order)."""
    return lambda frame, _image: per_frame[frame - 1] if frame <= len(per_frame) else NO_DETECTIONS


def track_frames(frames: Iterable[np.ndarray], detections: Detect | Sequence[Detections],
                 options: ByteTrackOptions | None = None, embed: Embedder | None = None,
                 stats: TrackingStats | None = None) -> Iterator[TrackedFrame]:
    """ByteTrack through `frames` (BGR uint8 [H, W, 3], all one size), lazily, one TrackedFrame a frame.

    `detections`: a Detect callable (public_detections, detector_detections) or one Detections entry per frame;
    `embed`: a re-id Embedder whose appearance joins the association (detection.tracking.load.load_embedder).
    `stats` (when given) counts frames and the seconds in the tracker and embedder. UserError when a frame's size
    differs from the first's, or when there are no frames at all.
    """
    detect = detections if callable(detections) else given_detections(detections)
    tracker = ByteTracker(options or ByteTrackOptions())
    stats = stats if stats is not None else TrackingStats()
    size = None
    for index, image in enumerate(frames, 1):
        if size is not None and image.shape[:2] != size:
            raise UserError(f"frame {index} is {image.shape[1]}x{image.shape[0]}, the first was {size[1]}x{size[0]}")
        size = image.shape[:2]
        boxes, scores, classes = detect(index, image)
        started = time.perf_counter()
        embeddings = None if embed is None else embed(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), boxes)
        tracks = tracker.update(boxes, scores, classes, embeddings)
        stats.tracker_seconds += time.perf_counter() - started
        stats.frames = index
        yield TrackedFrame(index, image, tracks)
    if size is None:
        raise UserError("no frames could be read")
