"""A small Python client of the detection service: detect on files, bytes or arrays; list models.

Errors come back as ServiceError with the HTTP status and the service's {"error", "detail"}.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Union

import numpy as np
import requests

ImageInput = Union[str, os.PathLike, bytes, np.ndarray]
SLICE_PARAMS = {"slice", "overlap", "slice_full", "slice_merge"}  # sliced inference, as /v1/detect takes them
SUFFIX_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp",
                ".bmp": "image/bmp"}


class ServiceError(Exception):
    """A non-2xx answer: status code, the error code and the detail sentence."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(f"HTTP {status} {error}: {detail}")
        self.status, self.error, self.detail = status, error, detail


def encode_image(image: ImageInput) -> tuple[bytes, str, str]:
    """(bytes, content type, file name) for a path, encoded bytes or an RGB uint8 array (sent as PNG)."""
    if isinstance(image, np.ndarray):
        import cv2

        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
        ok, buf = cv2.imencode(".png", bgr)
        if not ok:
            raise ValueError(f"cannot encode an array of shape {image.shape} as PNG")
        return buf.tobytes(), "image/png", "image.png"
    if isinstance(image, (bytes, bytearray)):
        return bytes(image), "application/octet-stream", "image"
    path = Path(image)
    return path.read_bytes(), SUFFIX_TYPES.get(path.suffix.lower(), "application/octet-stream"), path.name


class DetectClient:
    """Calls one service, e.g. DetectClient("http://127.0.0.1:8000").detect("image.jpg")."""

    def __init__(self, base_url: str = "http://127.0.0.1:8000", api_key: str | None = None,
                 timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        api_key = api_key if api_key is not None else os.environ.get("DETECT_API_KEY")
        if api_key:
            self.session.headers["Authorization"] = f"Bearer {api_key}"

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._send(method, path, **kwargs).json()

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """The response; ServiceError for a 4xx or 5xx answer."""
        response = self.session.request(method, self.base_url + path, timeout=self.timeout, **kwargs)
        if response.status_code >= 400:
            try:
                body = response.json()
                error, detail = body.get("error", "error"), body.get("detail", response.text)
            except ValueError:
                error, detail = "error", response.text[:500]
            raise ServiceError(response.status_code, error, str(detail))
        return response

    @staticmethod
    def _params(score_threshold: float | None, max_detections: int | None, model: str | None,
                slicing: dict[str, Any]) -> dict:
        params = {"score_threshold": score_threshold, "max_detections": max_detections, "model": model, **slicing}
        unknown = set(slicing) - SLICE_PARAMS
        if unknown:
            raise TypeError(f"unknown slicing parameter(s) {sorted(unknown)}; known: {sorted(SLICE_PARAMS)}")
        return {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in params.items() if v is not None}

    def detect(self, image: ImageInput, score_threshold: float | None = None, max_detections: int | None = None,
               model: str | None = None, **slicing: Any) -> dict:
        """Detections on one image: {model, version, width, height, detections, time_ms, ...}. score_threshold
        and max_detections are the model's post-processing for this call, below or above its checkpoint's (None:
        the checkpoint's, which GET /v1/models shows); so in every call of this client. `slicing`: the query
        parameters slice (S, 0: off), overlap, slice_full and slice_merge, e.g. detect(path, slice=256)."""
        data, content_type, _ = encode_image(image)
        return self._call("POST", "/v1/detect", data=data, headers={"Content-Type": content_type},
                          params=self._params(score_threshold, max_detections, model, slicing))

    def draw(self, image: ImageInput, score_threshold: float | None = None, max_detections: int | None = None,
             model: str | None = None, **slicing: Any) -> bytes:
        """The image as JPEG bytes (its own width and height) with the detections drawn."""
        data, content_type, _ = encode_image(image)
        params = self._params(score_threshold, max_detections, model, slicing)
        return self._send("POST", "/v1/detect", data=data, params=params,
                          headers={"Content-Type": content_type, "Accept": "image/jpeg"}).content

    def detect_batch(self, images: list[ImageInput], score_threshold: float | None = None,
                     max_detections: int | None = None, model: str | None = None, **slicing: Any) -> dict:
        """Detections on several images in one multipart request: {model, version, results: [...]}."""
        files = []
        for image in images:
            data, content_type, name = encode_image(image)
            files.append(("images", (name, data, content_type)))
        return self._call("POST", "/v1/detect/batch", files=files,
                          params=self._params(score_threshold, max_detections, model, slicing))

    def models(self) -> dict:
        """The served models: {default, models: [{name, version, categories, input_size, metrics, ...}]}."""
        return self._call("GET", "/v1/models")

    def health(self) -> dict:
        """The /healthz answer; raises ServiceError(503) while a model is not loaded."""
        return self._call("GET", "/healthz")

    def wait_ready(self, timeout: float = 120.0, interval: float = 0.5) -> dict:
        """Poll /healthz until every model is ready; TimeoutError after `timeout` seconds."""
        deadline, last = time.monotonic() + timeout, "no answer"
        while time.monotonic() < deadline:
            try:
                return self.health()
            except (requests.ConnectionError, requests.Timeout, ServiceError) as exc:
                last = str(exc)
            time.sleep(interval)
        raise TimeoutError(f"{self.base_url} not ready after {timeout:.0f} s: {last}")
