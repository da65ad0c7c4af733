"""Pydantic models of the POST /v1/track answer: the tracked objects of every frame of the uploaded video.

They give the OpenAPI schema its shapes; boxes are COCO [x, y, w, h] in the video's pixels.
"""
from __future__ import annotations

from pydantic import BaseModel, Field


class TrackedObject(BaseModel):
    """One object in one frame."""

    id: int = Field(..., description="track id, from 1; the same object keeps its id from frame to frame")
    bbox: list[float] = Field(..., min_length=4, max_length=4, description="[x, y, width, height] in pixels (COCO)")
    score: float | None = Field(..., description="multi-object: the last matched detection's score; single-object: "
                                "the tracker's confidence, null on the first frame (the given box)")
    category_id: int | None = Field(None, description="multi-object: the detector's COCO category id")
    category: str | None = Field(None, description="multi-object: the category's name")


class FrameTracks(BaseModel):
    """The objects tracked in one frame (none when nothing is tracked there)."""

    frame: int = Field(..., description="frame number, from 1")
    objects: list[TrackedObject]


class TrackResponse(BaseModel):
    """Answer to POST /v1/track: one entry per frame of the video, in order."""

    mode: str = Field(..., description="'single' (init box, SiamFC) or 'multi' (detector + ByteTrack)")
    model: str = Field(..., description="the detector (multi) or the SiamFC tracker (single) that ran")
    frames: int
    fps: float = Field(..., description="the frame rate the video declares (25 when it declares none)")
    width: int
    height: int
    tracks: list[FrameTracks]
    time_ms: float = Field(..., description="server-side time from request to answer")
