"""What the trackers answer on a decoded upload, as the /v1/track answer: one entry per frame (from 1), objects with an
id and a COCO [x, y, w, h] box. The tracking is detection.tracking's: follow_box (SiamFC) and track_frames (ByteTrack)."""
from __future__ import annotations

import numpy as np

from detection.inference.detections import coco_bbox
from detection.tracking.base import SingleObjectTracker, Track
from detection.tracking.bytetrack import ByteTrackOptions
from detection.tracking.multi import detection_arrays, track_frames
from detection.tracking.single import follow_box


def single_object_tracks(frames: list[np.ndarray], tracker: SingleObjectTracker, init_xywh: tuple) -> list[dict]:
    """Follow the box init_xywh of the first frame (BGR frames) with `tracker`, as `detpipe track --init` does;
    object id 1 in every frame, score null on the first (the given box)."""
    init = np.asarray(init_xywh, dtype=np.float64)
    answer = []
    for frame in follow_box(frames, tracker, init):
        if frame.score is None:
            found = {"id": 1, "bbox": [round(float(v), 2) for v in init], "score": None}
        else:
            found = {"id": 1, "bbox": coco_bbox(frame.box), "score": round(frame.score, 4)}
        answer.append({"frame": frame.index, "objects": [found]})
    return answer


def multi_object_tracks(frames: list[np.ndarray], detections: list[list[dict]], options: ByteTrackOptions,
                        nms_iou: float) -> list[dict]:
    """ByteTrack over a detector's answers for each frame (dicts with bbox, score, category_id, category), as
    `detpipe track --checkpoint` does: class-agnostic NMS first, then the tracker with `options`."""
    arrays = [detection_arrays(dets, nms_iou) for dets in detections]
    names = {int(d["category_id"]): str(d["category"]) for dets in detections for d in dets}
    return [{"frame": frame.index, "objects": [track_object(t, names) for t in frame.tracks]}
            for frame in track_frames(frames, arrays, options)]


def track_object(track: Track, names: dict[int, str]) -> dict:
    """One tracked object of the answer: id, COCO box, the last detection's score and category."""
    category_id = int(track.category_id)
    return {"id": int(track.track_id), "bbox": coco_bbox(track.box), "score": round(float(track.score), 4),
            "category_id": category_id, "category": names.get(category_id)}
