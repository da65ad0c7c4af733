"""Pydantic models of the HTTP answers: detections, model descriptions, health and errors; detection answers' JSON.

The models give the OpenAPI schema its shapes; detection answers are JSON text built once from the replica's
detections (answer_json). Boxes are COCO [x, y, w, h] in original image pixels.
"""
from __future__ import annotations

import json

from pydantic import BaseModel, Field


class Detection(BaseModel):
    """One detected object."""

    bbox: list[float] = Field(..., min_length=4, max_length=4,
                              description="[x, y, width, height] in original image pixels (COCO)")
    score: float = Field(..., ge=0.0, le=1.0)
    category_id: int = Field(..., description="COCO category id")
    category: str


class ImageResult(BaseModel):
    """Detections on one image."""

    width: int
    height: int
    detections: list[Detection]
    batch_size: int = Field(..., description="how many images the model ran together with this one")
    file_name: str | None = None


class DetectResponse(ImageResult):
    """Answer to POST /v1/detect."""

    model: str
    version: str
    time_ms: float = Field(..., description="server-side time from request to answer")


class BatchResponse(BaseModel):
    """Answer to POST /v1/detect/batch: one result per image, in request order."""

    model: str
    version: str
    results: list[ImageResult]
    time_ms: float


class Category(BaseModel):
    """A category the model predicts."""

    id: int
    name: str


class ModelInfo(BaseModel):
    """What GET /v1/models says about one served model."""

    name: str
    version: str
    categories: list[Category]
    input_size: int
    metrics: dict[str, float | int | str | None]
    score_threshold: float = Field(..., description="what a request without score_threshold gets (the checkpoint's)")
    max_detections: int = Field(..., description="what a request without max_detections gets (the checkpoint's)")
    device: str
    max_batch_size: int
    batch_wait_timeout_s: float
    torch_threads: int


class ModelsResponse(BaseModel):
    """Answer to GET /v1/models."""

    default: str
    models: list[ModelInfo]


class Health(BaseModel):
    """Answer to GET /healthz: ready only when every model is loaded."""

    status: str
    models: dict[str, str]


class ErrorResponse(BaseModel):
    """Every error answer: a short code and a sentence saying what to fix."""

    error: str
    detail: str


def with_json(fields: dict, key: str, value_json: str) -> str:
    """The JSON text of `fields` plus `key`, whose value is given as JSON text already (never parsed again)."""
    head = json.dumps(fields, separators=(",", ":"))
    return f'{head[:-1]},"{key}":{value_json}}}'


def answer_json(fields: dict, detections_json: str) -> str:
    """The JSON text of an answer: `fields` plus "detections" (JSON text from the model replica)."""
    return with_json(fields, "detections", detections_json)


def batch_json(fields: dict, results: list[str]) -> str:
    """The JSON text of a batch answer: `fields` plus "results", each one an answer_json text."""
    return with_json(fields, "results", f"[{','.join(results)}]")
