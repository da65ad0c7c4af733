"""Drawn answers of POST /v1/detect (?draw=true or Accept: image/jpeg): the image as a JPEG of its own size
with boxes and labels drawn as `detection.predict` draws them, and the JSON answer in a response header."""
from __future__ import annotations

import json

import cv2
import numpy as np

from detection.viz.detections import draw_detections

JPEG_QUALITY = 90
HEADER_LIMIT = 8192  # bytes of JSON carried in X-Detect-Answer; proxies often refuse bigger headers
ANSWER_HEADER, COUNT_HEADER, OMITTED_HEADER = "X-Detect-Answer", "X-Detections-Count", "X-Detect-Answer-Omitted"


def accept_weights(accept: str) -> dict[str, float]:
    """{media type: q} of an Accept header (q 1 when not given, 0 when unreadable)."""
    weights = {}
    for part in accept.split(","):
        kind, *params = [p.strip().lower() for p in part.split(";")]
        q = next((p[2:] for p in params if p.startswith("q=")), "1")
        try:
            weights[kind] = float(q)
        except ValueError:
            weights[kind] = 0.0
    return weights


def wants_jpeg(draw: bool, accept: str) -> bool:
    """A drawn answer for ?draw=true, or when Accept prefers image/jpeg to application/json."""
    weights = accept_weights(accept)
    return draw or weights.get("image/jpeg", 0.0) > weights.get("application/json", 0.0)


def drawn_jpeg(image_rgb: np.ndarray, detections: list[dict]) -> bytes:
    """The RGB image, at its own width and height, with the detections (COCO [x, y, w, h]) drawn, as JPEG."""
    canvas = draw_detections(cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR), detections, enlarge=False)
    ok, data = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError("OpenCV could not encode the drawn image as JPEG")
    return data.tobytes()


def answer_headers(answer: dict) -> dict[str, str]:
    """The JSON answer (ASCII, compact) in X-Detect-Answer when it fits HEADER_LIMIT, and the count always."""
    text = json.dumps(answer, ensure_ascii=True, separators=(",", ":"))
    headers = {COUNT_HEADER: str(len(answer["detections"]))}
    if len(text) <= HEADER_LIMIT:
        headers[ANSWER_HEADER] = text
    else:
        headers[OMITTED_HEADER] = (f"the JSON answer has {len(text)} bytes, over the {HEADER_LIMIT}-byte "
                                   "header limit; POST without draw for it, or raise score_threshold")
    return headers
