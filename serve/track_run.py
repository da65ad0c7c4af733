"""The loops of `python -m detection.track` run on a decoded upload, and what the trackers answered turned into
the /v1/track answer: one entry per frame (from 1), objects with an id and a COCO [x, y, w, h] box."""
from __future__ import annotations

import argparse

import numpy as np

from detection.track import FrameSource, RunStats, build_tracker, detection_arrays, run_tracking
from detection.track_sot import SotStats, run_single
from detection.tracking.base import SingleObjectTracker, Track
from detection.tracking.boxes import xyxy_to_xywh


class SingleRecorder:
    """A single-object tracker that keeps every (box, score) its `update` answers."""

    def __init__(self, tracker: SingleObjectTracker) -> None:
        self.tracker = tracker
        self.answers: list[tuple[np.ndarray, float]] = []

    def init(self, image: np.ndarray, box: np.ndarray) -> None:
        self.tracker.init(image, box)

    def update(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        box, score = self.tracker.update(image)
        self.answers.append((np.asarray(box, dtype=np.float64), float(score)))
        return box, score


class MultiRecorder:
    """A multi-object tracker that keeps the tracks of every frame its `update` answers."""

    def __init__(self, tracker) -> None:
        self.tracker = tracker
        self.frames: list[list[Track]] = []

    def update(self, boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray | None = None,
               embeddings: np.ndarray | None = None) -> list[Track]:
        tracks = self.tracker.update(boxes, scores, classes, embeddings)
        self.frames.append(tracks)
        return tracks


def _xywh(box_xyxy: np.ndarray) -> list[float]:
    return [round(float(v), 2) for v in xyxy_to_xywh(box_xyxy)[0]]


def follow_box(frames: list[np.ndarray], tracker: SingleObjectTracker, init_xywh: tuple) -> list[dict]:
    """Follow the box init_xywh of the first frame (BGR frames) with `tracker`, as detection.track --init does;
    object id 1 in every frame, score null on the first (the given box)."""
    recorder = SingleRecorder(tracker)
    init = np.asarray(init_xywh, dtype=np.float64)
    run_single(iter(frames), recorder, init, ",".join(f"{v:g}" for v in init), None, SotStats())
    first = {"id": 1, "bbox": [round(float(v), 2) for v in init], "score": None}
    later = [{"id": 1, "bbox": _xywh(box), "score": round(score, 4)} for box, score in recorder.answers]
    return [{"frame": index, "objects": [obj]} for index, obj in enumerate([first, *later], 1)]


def track_detections(frames: list[np.ndarray], detections: list[list[dict]], bytetrack: dict, nms_iou: float,
                     fps: float) -> list[dict]:
    """ByteTrack over a detector's answers for each frame (dicts with bbox, score, category_id, category), as
    detection.track --checkpoint does: class-agnostic NMS first, then the tracker with `bytetrack` settings."""
    recorder = MultiRecorder(build_tracker(argparse.Namespace(**bytetrack)))
    arrays = [detection_arrays(dets, nms_iou) for dets in detections]
    names = {int(d["category_id"]): str(d["category"]) for dets in detections for d in dets}
    source = FrameSource(iter(frames), len(frames), fps, "upload")
    run_tracking(source, lambda frame_id, _image: arrays[frame_id - 1], recorder, None, RunStats())
    return [{"frame": index, "objects": [track_object(t, names) for t in tracks]}
            for index, tracks in enumerate(recorder.frames, 1)]


def track_object(track: Track, names: dict[int, str]) -> dict:
    """One tracked object of the answer: id, COCO box, the last detection's score and category."""
    category_id = int(track.category_id)
    return {"id": int(track.track_id), "bbox": _xywh(track.box), "score": round(float(track.score), 4),
            "category_id": category_id, "category": names.get(category_id)}
