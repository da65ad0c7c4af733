"""The Ray Serve application: a FastAPI ingress (HTTP, auth, limits, image header checks) and a model per name.

`build_app(args)` makes the application from a dict, the `args:` of a Serve config file.
"""

import asyncio
import dataclasses
import hmac
import json
import math
import os
import time
from typing import Annotated, Any, Awaitable, Callable

import ray
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from ray import serve
from ray.serve.handle import DeploymentHandle
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException, MultiPartParser

from datasets.core.errors import UserError
from detection.config import DEFAULT_MAX_DETECTIONS, DEFAULT_SCORE_THRESHOLD, MAX_DETECTIONS_LIMIT
from detection.inference.slice_options import SliceOptions
from serve.decode import IMAGE_CONTENT_TYPES, DecodeLimits, ImageError, check_image, decode_image
from serve.drawn import (ANSWER_HEADER, COUNT_HEADER, HEADER_LIMIT, OMITTED_HEADER, answer_headers, drawn_jpeg,
                         wants_jpeg)
from serve.local import colocated, open_model
from serve.model import ModelServer
from serve.options import ServiceOptions
from serve.slice_request import Merge, Overlap, SliceFull, SliceMerge, SliceSize, request_slicing, slice_note
from serve.schemas import (BatchResponse, DetectResponse, ErrorResponse, Health, ModelsResponse, answer_json,
                           batch_json)
from serve.track import TrackerServer
from serve.track_request import TRACK_BODY, TrackQuery, plan_track
from serve.track_schemas import TrackResponse
from serve.video import VIDEO_CONTENT_TYPES, TrackError, VideoLimits

RAW_CONTENT_TYPES = frozenset(IMAGE_CONTENT_TYPES) | {"image/jpg", "image/x-ms-bmp", "application/octet-stream"}
UNAVAILABLE = (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError)
BackPressureError = ray.serve.exceptions.BackPressureError


class ApiError(Exception):
    """An HTTP error answered as {"error": code, "detail": message}."""

    def __init__(self, status: int, error: str, detail: str, headers: dict | None = None) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail, self.headers = status, error, detail, headers


def error_response(status: int, error: str, detail: str, headers: dict | None = None) -> JSONResponse:
    """The one shape of every error answer."""
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)


api = FastAPI(title="detpipe detection service", version="1",
              description="Object detection over HTTP: COCO [x, y, w, h] boxes in original image pixels.")


@api.exception_handler(ApiError)
async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
    return error_response(exc.status, exc.error, exc.detail, exc.headers)


@api.exception_handler(ImageError)
async def _image_error(_: Request, exc: ImageError) -> JSONResponse:
    return error_response(exc.status, exc.error, exc.detail)


@api.exception_handler(TrackError)
async def _track_error(_: Request, exc: TrackError) -> JSONResponse:
    return error_response(exc.status, exc.error, exc.detail)


@api.exception_handler(RequestValidationError)
async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    parts = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "body"))
        parts.append(f"{field}: {err.get('msg')} (got {err.get('input')!r})")
    return error_response(422, "invalid_parameter", "; ".join(parts))


@api.exception_handler(Exception)
async def _unexpected_error(_: Request, exc: Exception) -> JSONResponse:
    return error_response(500, "internal_error", f"the service failed on this request ({type(exc).__name__}); "
                          "see the ingress replica's log")


@api.exception_handler(StarletteHTTPException)
async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail))


def _binary(description: str) -> dict:
    return {"schema": {"type": "string", "format": "binary"}, "description": description}


DETECT_BODY = {"requestBody": {"required": True, "content": {
    **{t: _binary("the encoded image") for t in IMAGE_CONTENT_TYPES},
    "multipart/form-data": {"schema": {"type": "object", "required": ["image"], "properties": {
        "image": {"type": "string", "format": "binary"}}}}}}}
BATCH_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["images"], "properties": {
        "images": {"type": "array", "items": {"type": "string", "format": "binary"}}}}}}}}
ERRORS = {code: {"model": ErrorResponse} for code in (400, 401, 404, 413, 415, 422, 503)}


def _header(description: str) -> dict:
    return {"description": description, "schema": {"type": "string"}}


DRAWN = {200: {
    "description": "The detections as JSON; with `draw=true` or `Accept: image/jpeg`, the image instead, as a "
                   "JPEG of its own width and height with boxes and labels drawn (as `detection.predict` draws).",
    "content": {"image/jpeg": _binary("the drawn image (drawn answers)")},
    "headers": {
        ANSWER_HEADER: _header(f"drawn answers: the JSON answer (ASCII), when it fits in {HEADER_LIMIT} bytes"),
        OMITTED_HEADER: _header(f"drawn answers: why {ANSWER_HEADER} is left out (the JSON is too long)"),
        COUNT_HEADER: _header("drawn answers: the number of detections drawn")}}}

ScoreThreshold = Query(None, ge=0.0, le=1.0, description="the model's score threshold for this request, below or "
                       "above its checkpoint's; left out: the checkpoint's model.postprocess.score_threshold "
                       f"({DEFAULT_SCORE_THRESHOLD} unless its config set another)")
MaxDetections = Query(None, ge=1, le=MAX_DETECTIONS_LIMIT, description="at most this many detections per image, more "
                      "or fewer than the checkpoint's; left out: its model.postprocess.max_detections "
                      f"({DEFAULT_MAX_DETECTIONS} unless its config set another)")
ModelName = Query(None, description="model name (see GET /v1/models); the default model if left out")
Draw = Query(False, description="answer with the image as JPEG, detections drawn (as Accept: image/jpeg does)")


def media_type(request: Request) -> str:
    """The request's Content-Type without parameters, lower case ('' when absent)."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The whole request body; 413 as soon as it passes max_bytes (Content-Length is checked first)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise ApiError(413, "body_too_large", f"the body has {declared} bytes; the limit is {max_bytes}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise ApiError(413, "body_too_large", f"the body passes the limit of {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def multipart_files(request: Request, body: bytes, max_files: int) -> list[tuple[str, str, bytes]]:
    """(field name, file name, bytes) of every file part of a multipart body, in order."""

    async def stream():
        yield body

    parser = MultiPartParser(request.headers, stream(), max_files=max_files, max_fields=16)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise ApiError(400, "invalid_multipart", f"cannot parse the multipart body: {exc.message}") from None
    files = []
    for field, value in form.multi_items():
        if isinstance(value, UploadFile):
            files.append((field, value.filename or "", await value.read()))
            await value.close()
    return files


def overloaded(name: str, exc: BackPressureError) -> ApiError:
    """503 with Retry-After for a model whose queue is full (Serve's max_queued_requests)."""
    retry = max(1, math.ceil(exc.retry_after_s or 1))
    return ApiError(503, "overloaded", f"model {name!r} has as many requests waiting as it takes "
                    f"(max_queued_requests); retry after {retry} s", {"Retry-After": str(retry)})


async def model_answer(name: str, call: Callable[[], Awaitable], error: str, subject: str) -> Any:
    """The answer of `call()` to model `name`: 503 with Retry-After when its queue is full or no replica can
    take it, 500 `error` when it failed on `subject`."""
    try:
        return await call()
    except BackPressureError as exc:
        raise overloaded(name, exc) from None
    except UNAVAILABLE as exc:
        raise ApiError(503, "model_unavailable", f"model {name!r} is restarting or overloaded; "
                       f"retry shortly ({type(exc).__name__})", {"Retry-After": "1"}) from None
    except ray.exceptions.RayError as exc:
        raise ApiError(500, error, f"model {name!r} failed on {subject}: "
                       f"{str(exc).strip().splitlines()[-1][:300]}") from None


def check_content_type(kind: str, allowed: frozenset | set) -> None:
    """415 unless the Content-Type is one the endpoint takes."""
    if kind not in allowed:
        shown = f"'{kind}'" if kind else "missing"
        raise ApiError(415, "unsupported_media_type",
                       f"Content-Type {shown} is not accepted; send one of {', '.join(sorted(allowed))}")


@serve.deployment(name="ingress", max_ongoing_requests=256, ray_actor_options={"num_cpus": 0.25})
@serve.ingress(api)
class DetectIngress:
    """HTTP front: checks the key, limits, parameters and image headers, passes the encoded image to the named
    model's replica (which decodes it: the hop carries the compact bytes) and answers with its JSON text."""

    def __init__(self, models: dict[str, DeploymentHandle | dict], default_model: str, limits: dict,
                 max_batch_images: int = 32, max_batch_bytes: int = 64 * 1024 * 1024,
                 api_key_env: str = "DETECT_API_KEY", tracker: DeploymentHandle | None = None,
                 tracker_name: str | None = None, video_limits: dict | None = None,
                 slicing: dict | None = None) -> None:
        self.models = {name: open_model(model) for name, model in models.items()}  # colocated ones load here
        self.tracker, self.tracker_name = tracker, tracker_name
        self.video_limits = VideoLimits(**(video_limits or {}))
        self.default_model = default_model
        self.limits = DecodeLimits(**limits)
        self.max_batch_images = max_batch_images
        self.max_batch_bytes = max_batch_bytes
        self.api_key = os.environ.get(api_key_env) or None
        self.slicing = SliceOptions(**(slicing or {}))  # the default of /v1/detect requests (size 0: whole images)

    def authorize(self, request: Request) -> None:
        """When an API key is set, /v1/ endpoints need `Authorization: Bearer <key>` (else 401)."""
        if not self.api_key:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self.api_key.encode()):
            raise ApiError(401, "unauthorized", "missing or wrong API key; send 'Authorization: Bearer <key>'",
                           {"WWW-Authenticate": "Bearer"})

    def model(self, name: str | None) -> tuple[str, DeploymentHandle]:
        """The served model called `name` (the default one for None); 404 names the known ones."""
        name = name or self.default_model
        if name not in self.models:
            raise ApiError(404, "unknown_model", f"no model named {name!r}; served: {', '.join(sorted(self.models))}")
        return name, self.models[name]

    def check(self, data: bytes, label: str = "", slicing: SliceOptions | None = None) -> None:
        """Size, format and header checks, no pixels decoded (the model replica decodes); errors name the part,
        and a size error of a sliced request says that the limits hold all the same."""
        try:
            check_image(data, self.limits)
        except ImageError as exc:
            note = slice_note(slicing) if exc.status == 413 else ""
            raise ApiError(exc.status, exc.error, f"{label}{exc.detail}{note}") from None

    def request_slicing(self, size: int | None, overlap: float | None, full: bool | None,
                        merge: str | None) -> SliceOptions | None:
        """The request's slicing (the service's default, its parameters replacing); 422 naming a bad one."""
        try:
            return request_slicing(self.slicing, size, overlap, full, merge)
        except UserError as exc:
            raise ApiError(422, "invalid_parameter", str(exc)) from None

    async def read_image_body(self, request: Request, max_bytes: int, slicing: SliceOptions | None) -> bytes:
        """read_body, its 413 saying that slicing does not lift the limit."""
        try:
            return await read_body(request, max_bytes)
        except ApiError as exc:
            if exc.status == 413:
                exc.detail += slice_note(slicing)
            raise

    async def run_model(self, name: str, handle: DeploymentHandle, data: bytes, score_threshold: float | None,
                        max_detections: int | None, label: str = "", slicing: SliceOptions | None = None) -> dict:
        """One encoded image through the model's batch queue (with `slicing`, each of its windows): {version,
        batch_size, width, height, detections (JSON text)}; 4xx for an image it cannot decode, 503 when no replica
        can take it."""
        out = await model_answer(name, lambda: handle.detect.remote(data, score_threshold, max_detections, slicing),
                                 "inference_failed", "this image")
        if "error" in out:
            error = out["error"]
            raise ApiError(error["status"], error["error"], f"{label}{error['detail']}")
        return out

    @api.post("/v1/detect", response_model=DetectResponse, responses={**ERRORS, **DRAWN},
              openapi_extra=DETECT_BODY)
    async def detect(self, request: Request, score_threshold: float | None = ScoreThreshold,
                     max_detections: int | None = MaxDetections, model: str | None = ModelName,
                     draw: bool = Draw, slice_size: int | None = SliceSize, overlap: float | None = Overlap,
                     slice_full: bool | None = SliceFull, slice_merge: Merge | None = SliceMerge) -> Response:
        """Detect objects in one image sent as the raw body or as multipart field `image`; with draw=true or
        Accept: image/jpeg, answer with the image as JPEG, detections drawn, and the JSON in X-Detect-Answer.
        With slice=S, the image runs as overlapping SxS windows whose boxes are merged."""
        start = time.perf_counter()
        self.authorize(request)
        name, handle = self.model(model)
        slicing = self.request_slicing(slice_size, overlap, slice_full, slice_merge)
        kind = media_type(request)
        check_content_type(kind, RAW_CONTENT_TYPES | {"multipart/form-data"})
        body = await self.read_image_body(request, self.limits.max_bytes + (65536 if kind == "multipart/form-data"
                                                                            else 0), slicing)
        data, file_name = body, None
        if kind == "multipart/form-data":
            files = {field: (fname, content) for field, fname, content in await multipart_files(request, body, 4)}
            if "image" not in files:
                raise ApiError(422, "missing_field", "the multipart body has no file field 'image'")
            file_name, data = files["image"]
        self.check(data, slicing=slicing)
        out = await self.run_model(name, handle, data, score_threshold, max_detections, slicing=slicing)
        fields = {"model": name, "version": out["version"], "width": out["width"], "height": out["height"],
                  "batch_size": out["batch_size"], "file_name": file_name,
                  "time_ms": round((time.perf_counter() - start) * 1000, 2)}
        if not wants_jpeg(draw, request.headers.get("accept", "")):
            return Response(answer_json(fields, out["detections"]), media_type="application/json")
        detections = json.loads(out["detections"])
        image = await asyncio.to_thread(decode_image, data, self.limits)
        jpeg = await asyncio.to_thread(drawn_jpeg, image, detections)
        return Response(jpeg, media_type="image/jpeg", headers=answer_headers({**fields, "detections": detections}))

    @api.post("/v1/detect/batch", response_model=BatchResponse, responses=ERRORS, openapi_extra=BATCH_BODY)
    async def detect_batch(self, request: Request, score_threshold: float | None = ScoreThreshold,
                           max_detections: int | None = MaxDetections, model: str | None = ModelName,
                           slice_size: int | None = SliceSize, overlap: float | None = Overlap,
                           slice_full: bool | None = SliceFull, slice_merge: Merge | None = SliceMerge) -> Response:
        """Detect objects in several images sent as repeated multipart file fields `images` (each sliced with
        slice=S)."""
        start = time.perf_counter()
        self.authorize(request)
        name, handle = self.model(model)
        slicing = self.request_slicing(slice_size, overlap, slice_full, slice_merge)
        check_content_type(media_type(request), {"multipart/form-data"})
        body = await self.read_image_body(request, self.max_batch_bytes, slicing)
        files = await multipart_files(request, body, self.max_batch_images + 1)
        if not files:
            raise ApiError(422, "missing_field", "the multipart body has no file fields; send them as 'images'")
        if len(files) > self.max_batch_images:
            raise ApiError(413, "too_many_images", f"a batch takes at most {self.max_batch_images} images")
        labels = [f"image {i} ({fname or field}): " for i, (field, fname, _) in enumerate(files)]
        for (_, _, data), label in zip(files, labels):
            self.check(data, label, slicing)
        outs = await asyncio.gather(*[self.run_model(name, handle, data, score_threshold, max_detections, label,
                                                     slicing) for (_, _, data), label in zip(files, labels)])
        results = [answer_json({"width": o["width"], "height": o["height"], "batch_size": o["batch_size"],
                                "file_name": f[1] or None}, o["detections"]) for o, f in zip(outs, files)]
        fields = {"model": name, "version": outs[0]["version"],
                  "time_ms": round((time.perf_counter() - start) * 1000, 2)}
        return Response(batch_json(fields, results), media_type="application/json")

    @api.post("/v1/track", response_model=TrackResponse, responses=ERRORS, openapi_extra=TRACK_BODY)
    async def track(self, request: Request, query: Annotated[TrackQuery, Query()]) -> TrackResponse:
        """Track objects through a short video sent as the raw body or as multipart field `video`: the box `init`
        (x,y,w,h of the first frame) with the SiamFC tracker, or every object a served detector `model` finds,
        linked by ByteTrack. The whole video is read, then answered as the objects of every frame."""
        start = time.perf_counter()
        self.authorize(request)
        plan = plan_track(query, self.models, self.tracker_name, self.video_limits)
        kind = media_type(request)
        check_content_type(kind, frozenset(VIDEO_CONTENT_TYPES) | {"multipart/form-data"})
        multipart = kind == "multipart/form-data"
        body = await read_body(request, self.video_limits.max_bytes + (65536 if multipart else 0))
        if multipart:
            files = {field: content for field, _, content in await multipart_files(request, body, 4)}
            if "video" not in files:
                raise ApiError(422, "missing_field", "the multipart body has no file field 'video'")
            body = files["video"]
        handle = self.models[plan.model] if plan.init is None else self.tracker  # the tracking runs there
        out = await model_answer(plan.model, lambda: handle.track.remote(body, plan), "tracking_failed", "this video")
        if "error" in out:
            raise TrackError(**out["error"])
        return TrackResponse(mode="multi" if plan.init is None else "single", model=plan.model, **out,
                             time_ms=round((time.perf_counter() - start) * 1000, 2))

    @api.get("/v1/models", response_model=ModelsResponse, responses=ERRORS)
    async def list_models(self, request: Request) -> ModelsResponse:
        """Every served model: name, version, categories, input size and checkpoint metrics."""
        self.authorize(request)
        infos = await asyncio.gather(*[handle.info.remote() for handle in self.models.values()])
        return ModelsResponse(default=self.default_model, models=infos)

    @api.get("/healthz", response_model=Health, responses={503: {"model": Health}})
    async def healthz(self) -> JSONResponse:
        """200 when every model has a running replica with its checkpoint loaded, else 503."""
        states = await asyncio.gather(*[self.model_state(h) for h in self.models.values()])
        status = dict(zip(self.models, states))
        ready = all(s == "ready" for s in status.values())
        return JSONResponse({"status": "ok" if ready else "unavailable", "models": status},
                            status_code=200 if ready else 503)

    @staticmethod
    async def model_state(handle: DeploymentHandle, timeout: float = 3.0) -> str:
        """'ready' when a replica answers with its model loaded, 'loading' on a timeout, else 'unavailable'."""
        try:
            return "ready" if await asyncio.wait_for(handle.ready.remote(), timeout=timeout) else "loading"
        except asyncio.TimeoutError:
            return "loading"
        except Exception:  # noqa: BLE001 - any failure means not ready; the reason is in the Serve logs
            return "unavailable"


def build_app(args: dict) -> serve.Application:
    """The application from a dict of ServiceOptions fields (a Serve config file's `args:`)."""
    opts = ServiceOptions.from_dict(args)
    limits = {"max_bytes": opts.max_image_bytes, "max_pixels": opts.max_pixels, "min_side": opts.min_side}
    models: dict = {}
    for name, checkpoint in opts.checkpoints.items():
        server_args = dict(name=name, checkpoint=checkpoint, device=opts.device, torch_threads=opts.torch_threads,
                           max_batch_size=opts.max_batch_size, batch_wait_timeout_s=opts.batch_wait_timeout_s,
                           predictor=opts.predictor_for(checkpoint), limits=limits)
        if opts.colocated():
            models[name] = colocated(server_args, opts.model_ongoing(), opts.max_queued_requests, opts.retry_after_s)
        else:
            models[name] = ModelServer.options(name=f"model-{name}", **opts.model_deployment_options()).bind(
                **server_args)
    siamfc, tracker = opts.tracker_checkpoint(), None
    if siamfc:
        tracker = TrackerServer.options(name="tracker", **opts.tracker_deployment_options()).bind(
            siamfc[1], device=opts.device, torch_threads=opts.torch_threads)
    ingress = DetectIngress.options(**opts.ingress_deployment_options())
    return ingress.bind(models, opts.default_model, limits, max_batch_images=opts.max_batch_images,
                        max_batch_bytes=opts.max_batch_bytes, api_key_env=opts.api_key_env, tracker=tracker,
                        tracker_name=siamfc[0] if siamfc else None, video_limits=opts.video_limits(),
                        slicing=dataclasses.asdict(opts.slicing()))
