"""Predictor: a detector checkpoint turned into a callable on RGB images, used by predict, track, serve and tests.

Images of any size are letterboxed, run as one batch, and answered in COCO [x, y, w, h] original pixels; a call's
score threshold and max detections are the model's post-processing for that call (the checkpoint's: the defaults).
A model that resizes images itself (Detector.resizes_itself: torchvision's imports) gets each at its own size.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from detection.config import PostprocessConfig
from detection.data.transforms import build_transform, letterbox_scale
from detection.engine.checkpoint import LoadedModel, load_model
from detection.inference.detections import to_detections
from detection.utils.fuse import prepare_for_inference
from detection.utils.device import resolve_device


class Predictor:
    """Wraps a model rebuilt from a checkpoint; `predict(images)` -> detections per image."""

    def __init__(self, model: torch.nn.Module, categories: list[dict], input_size: int,
                 device: torch.device, name: str = "model", version: str = "0", metrics: dict | None = None) -> None:
        self.model = model
        self.categories = categories
        self.input_size = input_size
        self.device = device
        self.name = name
        self.version = version
        self.metrics = metrics or {}
        self.transform = build_transform(input_size, train=False, letterbox=not model.resizes_itself)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto", optimize: bool = True) -> "Predictor":
        """Rebuild the model from the checkpoint alone; UserError on a bad or missing file. optimize: run it as
        `prepare_for_inference` leaves it (BatchNorm folded, channels-last); False keeps the checkpoint's layers."""
        return cls.from_loaded(load_model(path, resolve_device(device), expect="detector"), optimize)

    @classmethod
    def from_loaded(cls, loaded: LoadedModel, optimize: bool = True) -> "Predictor":
        """The Predictor of a detector checkpoint already loaded (load_model(path, expect="detector")); optimize
        changes loaded.model in place (see from_checkpoint)."""
        cfg, state = loaded.config, loaded.state
        name = Path(cfg.output_dir).name or Path(loaded.path).stem
        model = prepare_for_inference(loaded.model) if optimize else loaded.model.eval()
        return cls(model, loaded.categories, cfg.data.input_size, loaded.device, name=name,
                   version=f"epoch-{state.get('epoch', 0)}", metrics=state.get("metrics", {}))

    def preprocess(self, image: np.ndarray) -> torch.Tensor:
        """RGB uint8 [H, W, 3] -> letterboxed float [3, S, S] in 0..1 (a model that resizes itself: [3, H, W])."""
        out = self.transform(image=image, bboxes=np.zeros((0, 4), np.float32), labels=[])["image"]
        return torch.from_numpy(np.ascontiguousarray(out)).permute(2, 0, 1).float().div_(255)

    def scale(self, height: int, width: int) -> float:
        """The factor `preprocess` applies to an image of height x width: the letterbox's, or 1."""
        return 1.0 if self.model.resizes_itself else letterbox_scale(height, width, self.input_size)

    @property
    def postprocess_options(self) -> PostprocessConfig:
        """The model's own post-processing (its checkpoint's model.postprocess): what a call that gives no
        score_threshold or max_detections gets."""
        return self.model.postprocess_options

    @torch.no_grad()
    def predict(self, images: list[np.ndarray], score_threshold: float | None = None,
                max_detections: int | None = None) -> list[list[dict]]:
        """Detections per image, by score: {"bbox" [x, y, w, h], "score", "category_id", "category"}.

        score_threshold and max_detections are the model's post-processing for this call, higher or lower than
        the checkpoint's own (model.postprocess), which applies where they are None."""
        if not images:
            return []
        call = {"score_threshold": score_threshold, "max_detections": max_detections}
        if self.model.resizes_itself:
            outputs = self.model.detect_by_size([self.preprocess(image).to(self.device) for image in images], **call)
        else:
            outputs = self.model(torch.stack([self.preprocess(image) for image in images]).to(self.device), **call)
        answers = []
        for image, output in zip(images, outputs):
            height, width = image.shape[:2]
            answers.append(to_detections(output, self.scale(height, width), (height, width), self.categories))
        return answers
