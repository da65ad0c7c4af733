"""The tracking work of POST /v1/track, on a whole uploaded video: multi-object tracking runs inside the detector's
own deployment (frames go through its batch queue, never across processes); TrackerServer follows one box (SiamFC)."""
from __future__ import annotations

import asyncio
from typing import Awaitable, Callable

import cv2
import numpy as np
import torch
from ray import serve

from serve.track_request import TrackPlan
from serve.track_run import multi_object_tracks, single_object_tracks
from serve.video import TrackError, Video, read_video

CHUNK = 32  # frames in the detector's queue at once: enough to fill its batches, a bounded share of RGB copies
Detect = Callable[[np.ndarray, float, int], Awaitable[dict]]  # ModelServer.infer: RGB image, threshold, top-k


def answer(video: Video, tracks: list[dict]) -> dict:
    return {"frames": len(video.frames), "fps": video.fps, "width": video.width, "height": video.height,
            "tracks": tracks}


async def track_objects(data: bytes, plan: TrackPlan, detect: Detect) -> dict:
    """Read the video, run `detect` on every frame, then ByteTrack over the answers in frame order: the answer's
    fields, or {"error": {status, error, detail}} for a video the service cannot use."""
    try:
        video = await asyncio.to_thread(read_video, data, plan.limits)
    except TrackError as exc:
        return {"error": exc.as_dict()}
    detections: list[list[dict]] = []
    for start in range(0, len(video.frames), CHUNK):
        rgb = await asyncio.to_thread(_rgb, video.frames[start:start + CHUNK])
        outs = await asyncio.gather(*[detect(image, plan.bytetrack.low_threshold, plan.max_detections)
                                      for image in rgb])
        detections += [out["detections"] for out in outs]
    tracks = await asyncio.to_thread(multi_object_tracks, video.frames, detections, plan.bytetrack, plan.nms_iou)
    return answer(video, tracks)


def _rgb(frames: list[np.ndarray]) -> list[np.ndarray]:
    return [cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) for frame in frames]


def check_init_inside(init: tuple, video: Video) -> None:
    """TrackError (422) when the init box x, y, w, h is not inside the first frame."""
    x, y, w, h = init
    if x < 0 or y < 0 or x + w > video.width or y + h > video.height:
        raise TrackError(422, "init_outside_frame", f"init {x:g},{y:g},{w:g},{h:g} is not inside the first frame "
                         f"({video.width}x{video.height})")


@serve.deployment(max_ongoing_requests=4, health_check_period_s=5.0, ray_actor_options={"num_cpus": 1})
class TrackerServer:
    """The SiamFC checkpoint, loaded once; one video at a time follows its box (the tracker holds one target)."""

    def __init__(self, checkpoint: str, device: str = "auto", torch_threads: int = 0) -> None:
        from detection.tracking.load import load_tracker

        if torch_threads > 0:
            torch.set_num_threads(torch_threads)
        self.tracker = load_tracker(checkpoint, device)
        self.lock = asyncio.Lock()

    async def track(self, data: bytes, plan: TrackPlan) -> dict:
        """Follow plan.init through the video: the answer's fields, or {"error": {status, error, detail}}."""
        try:
            video = await asyncio.to_thread(read_video, data, plan.limits)
            check_init_inside(plan.init, video)
        except TrackError as exc:
            return {"error": exc.as_dict()}
        async with self.lock:
            tracks = await asyncio.to_thread(single_object_tracks, video.frames, self.tracker, plan.init)
        return answer(video, tracks)
