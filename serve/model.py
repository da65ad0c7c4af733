"""The per-model Ray Serve deployment: one checkpoint, loaded once, run on dynamic batches.

Images arrive encoded (the hop carries the compact bytes); the replica decodes them, batches what queued while
the model was busy (serve.batching) and answers each with its detections as JSON text, built once. A sliced
request's windows join that queue one by one, batched with other requests, then are moved and merged.
"""
from __future__ import annotations

import asyncio
import collections
import importlib
import json
import os
from typing import Any

import numpy as np
import torch
from ray import serve

from detection.inference.slice_options import SliceOptions
from detection.inference.slicing import combine, cut, wants_full
from serve.batching import GreedyBatcher
from serve.decode import DecodeLimits, ImageError, decode_image
from serve.options import DEFAULT_PREDICTOR
from serve.track import track_objects
from serve.track_request import TrackPlan


def load_class(path: str) -> Any:
    """Import 'package.module:Name' and return the named attribute."""
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def filter_detections(detections: list[dict], score_threshold: float, max_detections: int) -> list[dict]:
    """Keep detections (sorted by score, best first) at or above the threshold, at most max_detections."""
    kept = [d for d in detections if d["score"] >= score_threshold]
    return [_plain(d) for d in kept[:max_detections]]


def _plain(det: dict) -> dict:
    """A detection with plain Python numbers, ready for JSON."""
    return {"bbox": [float(v) for v in det["bbox"]], "score": float(det["score"]),
            "category_id": int(det["category_id"]), "category": str(det["category"])}


@serve.deployment(max_ongoing_requests=64, health_check_period_s=5.0, ray_actor_options={"num_cpus": 1})
class ModelServer:
    """Serves one checkpoint; concurrent `detect` calls are grouped into one model batch."""

    def __init__(self, name: str, checkpoint: str, device: str = "auto", torch_threads: int = 0,
                 max_batch_size: int = 8, batch_wait_timeout_s: float = 0.0,
                 predictor: str = DEFAULT_PREDICTOR, limits: dict | None = None) -> None:
        if torch_threads > 0:
            torch.set_num_threads(torch_threads)
        self.name = name
        self.limits = DecodeLimits(**(limits or {}))
        self.predictor = load_class(predictor).from_checkpoint(checkpoint, device=device)
        self.batch_sizes: collections.Counter = collections.Counter()
        self.batcher = GreedyBatcher(self.run_batch)
        self.reconfigure({"max_batch_size": max_batch_size, "batch_wait_timeout_s": batch_wait_timeout_s})

    def reconfigure(self, config: dict) -> None:
        """Serve's `user_config` hook: set max_batch_size and batch_wait_timeout_s without a restart."""
        unknown = set(config) - {"max_batch_size", "batch_wait_timeout_s"}
        if unknown:
            raise ValueError(f"unknown user_config keys {sorted(unknown)}; "
                             "known: max_batch_size, batch_wait_timeout_s")
        if "max_batch_size" in config:
            self.max_batch_size = self.batcher.max_batch_size = int(config["max_batch_size"])
        if "batch_wait_timeout_s" in config:
            self.batch_wait_timeout_s = self.batcher.wait_s = float(config["batch_wait_timeout_s"])

    async def detect(self, data: bytes, score_threshold: float | None, max_detections: int | None,
                     slicing: SliceOptions | None = None) -> dict:
        """Detections on one encoded image, the model's post-processing run at the request's score_threshold and
        max_detections (None: the checkpoint's), sliced with `slicing`: {version, batch_size, width, height,
        detections (JSON text)}, or {"error": {status, error, detail}} for an image that cannot be decoded.
        Decoding runs in a thread, beside the batch the model may be running."""
        try:
            image = await asyncio.to_thread(decode_image, data, self.limits)
        except ImageError as exc:
            return {"error": {"status": exc.status, "error": exc.error, "detail": exc.detail}}
        out = await self.infer(image, score_threshold, max_detections, slicing)
        return {**out, "width": image.shape[1], "height": image.shape[0],
                "detections": json.dumps(out["detections"], separators=(",", ":"))}

    async def infer(self, image: np.ndarray, score_threshold: float | None, max_detections: int | None,
                    slicing: SliceOptions | None = None) -> dict:
        """Detections on one RGB uint8 image, run with whatever queued while the model was busy:
        {detections (list of dicts), batch_size, version}. With `slicing` (size > 0), see infer_sliced."""
        wanted = self.predictor.postprocess_options.with_call(score_threshold, max_detections)
        if slicing is not None and slicing.size:
            return await self.infer_sliced(image, wanted.score_threshold, wanted.max_detections, slicing,
                                           max_detections)
        detections, size = await self.batcher.submit((image, wanted.score_threshold, wanted.max_detections))
        return {"detections": detections, "batch_size": size, "version": str(self.predictor.version)}

    async def infer_sliced(self, image: np.ndarray, score_threshold: float, max_detections: int,
                           slicing: SliceOptions, asked: int | None) -> dict:
        """Each window of the image (and the whole image with slicing.full) submitted to the batch queue as an item
        of its own, so windows share batches with other requests; their answers moved into image pixels and merged
        (detection.inference.slicing.combine, in a thread). batch_size: the largest batch one of them ran in.
        `max_detections` holds per window; the merged answer is cut only to what the request `asked` (as
        `predict_sliced` does: a large image may hold more objects than the checkpoint's max_detections)."""
        boxes, crops = cut(image, slicing)
        items = crops + ([image] if wants_full(boxes, slicing) else [])
        answers = await asyncio.gather(*[self.batcher.submit((item, score_threshold, max_detections))
                                         for item in items])
        found = [detections for detections, _ in answers]
        full = found[len(boxes)] if len(found) > len(boxes) else None
        merged = await asyncio.to_thread(combine, boxes, found[:len(boxes)], slicing, asked, full)
        return {"detections": merged, "batch_size": max(size for _, size in answers),
                "version": str(self.predictor.version)}

    def run_batch(self, items: list[tuple[np.ndarray, float, int]]) -> list[list[dict]]:
        """Run the model once on a batch of images (in the batcher's thread), its post-processing at the lowest
        threshold and the most detections any of them asked for; then each keeps its own. Exact: NMS keeps a box
        whatever scores below it, and the best k of the best K > k are the best k."""
        images = [image for image, _, _ in items]
        threshold = min(t for _, t, _ in items)
        top_k = max(k for _, _, k in items)
        results = self.predictor.predict(images, score_threshold=threshold, max_detections=top_k)
        self.batch_sizes[len(items)] += 1
        return [filter_detections(dets, t, k) for dets, (_, t, k) in zip(results, items)]

    async def track(self, data: bytes, plan: TrackPlan) -> dict:
        """POST /v1/track with this detector: its detections on every frame of the video, through the batch
        queue above, linked by ByteTrack (serve.track)."""
        return await track_objects(data, plan, self.infer)

    def info(self) -> dict:
        """Name, version, categories, input size, checkpoint metrics, default post-processing and batching."""
        p, defaults = self.predictor, self.predictor.postprocess_options
        return {"name": self.name, "version": str(p.version),
                "categories": [{"id": int(c["id"]), "name": str(c["name"])} for c in p.categories],
                "input_size": int(p.input_size), "metrics": dict(p.metrics or {}),
                "score_threshold": float(defaults.score_threshold), "max_detections": int(defaults.max_detections),
                "device": str(p.device),
                "max_batch_size": self.max_batch_size, "batch_wait_timeout_s": self.batch_wait_timeout_s,
                "torch_threads": torch.get_num_threads()}

    def ready(self) -> bool:
        """True once the constructor has loaded the model (Serve routes nothing here before)."""
        return self.predictor is not None

    def stats(self) -> dict:
        """This replica's batch-size histogram {size: count}, its actor name and process id."""
        context = serve.get_replica_context()
        return {"batch_sizes": dict(self.batch_sizes), "replica": context.replica_id.to_full_id_str(),
                "pid": os.getpid()}

    def check_health(self) -> None:
        """Serve's periodic health check: a replica without a model is restarted."""
        if self.predictor is None:
            raise RuntimeError(f"model {self.name!r} is not loaded")
