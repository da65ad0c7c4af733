"""What POST /v1/track takes: the query (init box or detector model, ByteTrack settings), the body, and the plan
the ingress hands to the tracker deployment once the request is checked."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Iterable

from pydantic import BaseModel, ConfigDict, Field

from datasets.core.errors import UserError
from detection.tracking.bytetrack import ByteTrackOptions
from detection.tracking.multi import MAX_DETECTIONS, NMS_IOU
from detection.tracking.single import parse_box
from serve.video import VIDEO_CONTENT_TYPES, TrackError, VideoLimits

DEFAULTS = ByteTrackOptions()  # the ByteTrack settings' defaults and help texts are the track command's
HELP = {field.name: field.metadata["help"] for field in dataclasses.fields(ByteTrackOptions)}
BYTETRACK_KEYS = ("high_threshold", "low_threshold", "new_track_threshold", "match_iou", "min_hits", "max_age",
                  "class_aware")  # the settings a request may change; the others keep their defaults


class TrackQuery(BaseModel):
    """Query parameters of POST /v1/track; the ByteTrack settings are ByteTrackOptions fields, as the track
    command's flags are."""

    model_config = ConfigDict(extra="forbid")

    init: str | None = Field(None, description="x,y,w,h: single-object tracking of this box (pixels of the first "
                             "frame) with the service's SiamFC tracker", examples=["40,52,24,24"])
    model: str | None = Field(None, description="multi-object tracking: a served detector (GET /v1/models) runs on "
                              "every frame and ByteTrack links its boxes; with `init`, only the tracker's own name")
    high_threshold: float = Field(DEFAULTS.high_threshold, ge=0, le=1, description=HELP["high_threshold"])
    low_threshold: float = Field(DEFAULTS.low_threshold, ge=0, le=1, description=HELP["low_threshold"])
    new_track_threshold: float = Field(DEFAULTS.new_track_threshold, ge=0, le=1,
                                       description=HELP["new_track_threshold"])
    match_iou: float = Field(DEFAULTS.match_iou, ge=0, le=1, description=HELP["match_iou"])
    min_hits: int = Field(DEFAULTS.min_hits, ge=1, le=1000, description=HELP["min_hits"])
    max_age: int = Field(DEFAULTS.max_age, ge=0, le=10000, description=HELP["max_age"])
    class_aware: bool = Field(DEFAULTS.class_aware, description=HELP["class_aware"])
    max_detections: int = Field(MAX_DETECTIONS, ge=1, le=1000, description="detector boxes per frame")
    nms_iou: float = Field(NMS_IOU, gt=0, le=1, description="boxes of any class overlapping a better one "
                           "this much are dropped (1 keeps all)")


@dataclass(frozen=True)
class TrackPlan:
    """A checked request: follow `init` (x, y, w, h) with the SiamFC tracker, or track `model`'s detections;
    the video is held to `limits`."""

    model: str
    init: tuple[float, float, float, float] | None
    bytetrack: ByteTrackOptions | None  # multi-object tracking's settings (None with init)
    max_detections: int
    nms_iou: float
    limits: VideoLimits


def _init_box(text: str) -> tuple[float, float, float, float]:
    try:
        return tuple(float(v) for v in parse_box(text, "init"))  # type: ignore[return-value]
    except UserError as exc:
        raise TrackError(422, "invalid_init", str(exc)) from None


def _bytetrack(query: TrackQuery) -> ByteTrackOptions:
    options = ByteTrackOptions(**{key: getattr(query, key) for key in BYTETRACK_KEYS})
    try:
        options.check()
    except UserError as exc:
        raise TrackError(422, "invalid_parameter", str(exc)) from None
    return options


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
    return TrackPlan(tracker, _init_box(query.init), None, **common)


def _binary(description: str) -> dict:
    return {"schema": {"type": "string", "format": "binary"}, "description": description}


TRACK_BODY = {"requestBody": {"required": True, "content": {
    **{t: _binary("the encoded video") for t in VIDEO_CONTENT_TYPES},
    "multipart/form-data": {"schema": {"type": "object", "required": ["video"], "properties": {
        "video": {"type": "string", "format": "binary"}}}}}}}
