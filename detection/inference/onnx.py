"""OnnxPredictor: the Predictor of an exported ONNX model, the same letterbox and answers, run by onnxruntime.

The service loads every model through `from_checkpoint(path, device)`; here the path is the .onnx file alone.
"""
from __future__ import annotations

from pathlib import Path

import torch

from datasets.core.errors import UserError
from detection.deploy.runtime import load_onnx
from detection.inference.predictor import Predictor


class OnnxPredictor(Predictor):
    """A Predictor whose model is an ONNX graph from detection.export (CPU; as many threads as torch uses)."""

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto") -> "OnnxPredictor":
        """Load the .onnx file and its metadata (categories, input size, name, version); no checkpoint needed."""
        if str(device) not in ("auto", "cpu"):
            raise UserError(f"{path}: ONNX models run on the CPU (onnxruntime's CPU provider), not on {device}")
        model = load_onnx(path, threads=torch.get_num_threads())
        meta = model.meta
        return cls(model, meta.categories, meta.input_size, torch.device("cpu"), name=meta.name,
                   version=f"{meta.version}+onnx", metrics=meta.metrics)
