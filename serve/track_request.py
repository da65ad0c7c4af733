"""What POST /v1/track takes: the query (init box or detector model, ByteTrack settings), the body, and the plan
the ingress hands to the tracker deployment once the request is checked."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from pydantic import BaseModel, ConfigDict, Field

from detection.errors import UserError
from detection.track import parse_args as track_cli_args
from detection.track_sot import parse_init
from detection.tracking.bytetrack import ByteTrackOptions
from serve.video import VIDEO_CONTENT_TYPES, TrackError, VideoLimits

CLI = track_cli_args(["--source", "-", "--out", "-"])  # `python -m detection.track`'s defaults, shared
BYTETRACK_KEYS = ("high_threshold", "low_threshold", "new_track_threshold", "match_iou", "min_hits", "max_age",
                  "class_aware")


class TrackQuery(BaseModel):
    """Query parameters of POST /v1/track; the ByteTrack settings are those of `python -m detection.track`."""

    model_config = ConfigDict(extra="forbid")

    init: str | None = Field(None, description="x,y,w,h: single-object tracking of this box (pixels of the first "
                             "frame) with the service's SiamFC tracker", examples=["40,52,24,24"])
    model: str | None = Field(None, description="multi-object tracking: a served detector (GET /v1/models) runs on "
                              "every frame and ByteTrack links its boxes; with `init`, only the tracker's own name")
    high_threshold: float = Field(CLI.high_threshold, ge=0, le=1, description="ByteTrack: first-association score")
    low_threshold: float = Field(CLI.low_threshold, ge=0, le=1,
                                 description="ByteTrack: second-association score; detections below are dropped")
    new_track_threshold: float = Field(CLI.new_track_threshold, ge=0, le=1, description="score to start a track")
    match_iou: float = Field(CLI.match_iou, ge=0, le=1, description="least IoU to continue a track")
    min_hits: int = Field(CLI.min_hits, ge=1, le=1000, description="detections to confirm a new track")
    max_age: int = Field(CLI.max_age, ge=0, le=10000, description="frames a lost track waits to be found")
    class_aware: bool = Field(CLI.class_aware, description="match detections only to tracks of their class")
    max_detections: int = Field(CLI.max_detections, ge=1, le=1000, description="detector boxes per frame")
    nms_iou: float = Field(CLI.nms_iou, gt=0, le=1, description="boxes of any class overlapping a better one "
                           "this much are dropped (1 keeps all)")


@dataclass(frozen=True)
class TrackPlan:
    """A checked request: follow `init` (x, y, w, h) with the SiamFC tracker, or track `model`'s detections;
    the video is held to `limits`."""

    model: str
    init: tuple[float, float, float, float] | None
    bytetrack: dict
    max_detections: int
    nms_iou: float
    limits: VideoLimits


def _init_box(text: str) -> tuple[float, float, float, float]:
    try:
        return tuple(float(v) for v in parse_init(text))  # type: ignore[return-value]
    except UserError as exc:
        raise TrackError(422, "invalid_init", str(exc).replace("--init", "init", 1)) from None


def _bytetrack(query: TrackQuery) -> dict:
    settings = {key: getattr(query, key) for key in BYTETRACK_KEYS}
    try:
        ByteTrackOptions(**settings).check()
    except UserError as exc:
        raise TrackError(422, "invalid_parameter", str(exc)) from None
    return settings


def plan_track(query: TrackQuery, detectors: Iterable[str], tracker: str | None, limits: VideoLimits) -> TrackPlan:
    """The plan for `query`, given the served detectors and the SiamFC tracker's name (None without one);
    TrackError (404, 422) for a request that names nothing to track with, or the wrong thing."""
    detectors = sorted(detectors)
    served = ", ".join(detectors + ([f"{tracker} (SiamFC, with init)"] if tracker else []))
    unknown = TrackError(404, "unknown_model", f"no model named {query.model!r}; served: {served}")
    common = {"max_detections": query.max_detections, "nms_iou": query.nms_iou, "limits": limits}
    if query.init is None:
        if query.model is None:
            raise TrackError(422, "missing_parameter", "give init=x,y,w,h (follow one box with the SiamFC tracker) "
                             "or model=NAME (track every object a served detector finds)")
        if query.model == tracker:
            raise TrackError(422, "missing_parameter", f"{tracker!r} is the SiamFC tracker: it follows the box "
                             "given as init=x,y,w,h")
        if query.model not in detectors:
            raise unknown
        return TrackPlan(query.model, None, _bytetrack(query), **common)
    if tracker is None:
        raise TrackError(404, "no_tracker", "this service has no SiamFC tracker for init (start it with --tracker "
                         "SIAMFC.pt, or `tracker:` in the config's args); model=NAME tracks a detector's objects")
    if query.model is not None and query.model != tracker:
        if query.model in detectors:
            raise TrackError(422, "init_with_detector", f"{query.model!r} is a detector: init follows one box with "
                             f"the SiamFC tracker ({tracker!r}); leave out init to track every object it finds")
        raise unknown
    return TrackPlan(tracker, _init_box(query.init), {}, **common)


def _binary(description: str) -> dict:
    return {"schema": {"type": "string", "format": "binary"}, "description": description}


TRACK_BODY = {"requestBody": {"required": True, "content": {
    **{t: _binary("the encoded video") for t in VIDEO_CONTENT_TYPES},
    "multipart/form-data": {"schema": {"type": "object", "required": ["video"], "properties": {
        "video": {"type": "string", "format": "binary"}}}}}}}
