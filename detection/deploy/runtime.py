"""An exported graph run like a Detector in eval mode: images [N, 3, S, S] in 0..1 -> per-image detection dicts.

Fixed-batch graphs take the batch in chunks; proposals are made as the PyTorch model makes them (its method); a call's
score threshold is the graph's input, its max_detections a cut of the graph's rows (graphs.py).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import torch

from datasets.core.errors import UserError
from detection.config import PostprocessConfig
from detection.models.external_proposals import ProposalInput

from detection.deploy.formats import EXTRA_FILE, quiet_tracing, require
from detection.deploy.metadata import ExportMetadata
from detection.deploy.padded import unpadded

Runner = Callable[[list[torch.Tensor]], list[torch.Tensor]]  # the graph's inputs -> its outputs (boxes, scores, ...)


class ExportedDetector:
    """Calls a graph written by detection.export the way the contract calls a Detector (eval mode)."""

    resizes_itself = False  # a graph takes the letterboxed S x S input it was exported for, whatever the model

    def __init__(self, meta: ExportMetadata, run: Runner) -> None:
        self.meta = meta
        self.run = run
        cfg = meta.proposal_config()
        self.proposal_input = ProposalInput(cfg) if cfg is not None else None

    @property
    def postprocess_options(self) -> PostprocessConfig:
        """The checkpoint's post-processing: score threshold and max detections of a call that gives none."""
        return self.meta.postprocess_config()

    def __call__(self, images: torch.Tensor, targets=None, proposals: list[torch.Tensor] | None = None, *,
                 score_threshold: float | None = None, max_detections: int | None = None) -> list[dict]:
        """images [N, 3, S, S] in 0..1 -> N dicts {"boxes", "scores", "labels"}; `proposals` as Detector takes
        them (None: made by the model's proposal method); score_threshold and max_detections as Detector takes
        them (None: the checkpoint's)."""
        opts = self.postprocess_options.with_call(score_threshold, max_detections)
        boxes = self.proposal_input(images, proposals, False) if self.proposal_input is not None else None
        step = self.meta.batch or max(1, len(images))
        results = []
        for start in range(0, len(images), step):
            chunk = images[start:start + step].detach().cpu().float()
            results += self.run_chunk(chunk, None if boxes is None else boxes[start:start + step], opts.score_threshold)
        return [best(result, opts) for result in results]

    def run_chunk(self, images: torch.Tensor, boxes: list[torch.Tensor] | None, score_threshold: float) -> list[dict]:
        """One graph call; a chunk short of a fixed batch is filled with copies of its last image."""
        real = len(images)
        if self.meta.batch and real < self.meta.batch:
            images = torch.cat([images, images[-1:].expand(self.meta.batch - real, -1, -1, -1)])
            boxes = None if boxes is None else boxes + [boxes[-1]] * (self.meta.batch - real)
        given = {"images": images.contiguous(), "score_threshold": torch.tensor(score_threshold, dtype=torch.float32)}
        if boxes is not None:
            given["proposals"] = torch.cat([torch.cat([torch.full((len(b), 1), float(i)), b.cpu().float()], dim=1)
                                            for i, b in enumerate(boxes)])
        return unpadded(*self.run([given[name] for name in self.meta.inputs]))[:real]


def best(detections: dict, opts: PostprocessConfig) -> dict:
    """A graph's detections of one image (best first) at or above the call's threshold (a format 1 graph applied
    its own), at most its max_detections."""
    keep = detections["scores"] >= opts.score_threshold
    return {key: value[keep][:opts.max_detections] for key, value in detections.items()}


def load_onnx(path: str | Path, threads: int = 0, cuda: bool = False) -> ExportedDetector:
    """An .onnx file from detection.export under onnxruntime (CPU; CUDA first when `cuda` and onnxruntime has it),
    with `threads` intra-op threads (0: its own)."""
    props, run = onnx_runner(path, threads, cuda)
    return detector(ExportMetadata.from_props(props, str(path)), run, path)


def load_torchscript(path: str | Path) -> ExportedDetector:
    """A TorchScript file from detection.export, on CPU."""
    props, run = torchscript_runner(path)
    return detector(ExportMetadata.from_props(props, str(path)), run, path)


def detector(meta: ExportMetadata, run: Runner, path: str | Path) -> ExportedDetector:
    """The ExportedDetector of a file's graph; UserError when the file holds a SiamFC tracker's branch."""
    if meta.tracker is not None:
        raise UserError(f"{path}: the {meta.tracker['branch']} branch of a {meta.family} tracker, not a "
                        f"detector (run it with detection.deploy.siamfc.load_siamfc)")
    return ExportedDetector(meta, run)


def onnx_runner(path: str | Path, threads: int = 0, cuda: bool = False,
                spin: bool = True) -> tuple[dict[str, str], Runner]:
    """(the file's metadata_props, a call of its graph) under onnxruntime's CPU provider (or CUDA's, when `cuda`).

    `spin`: idle pool threads spin between calls (onnxruntime's default: the lowest latency for calls back to back);
    False lets them sleep, so that the caller's own work between calls gets the cores.
    """
    ort = require("onnxruntime", "running an ONNX model")
    if not Path(path).is_file():
        raise UserError(f"no ONNX file at {path}")
    options = ort.SessionOptions()
    if threads > 0:
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    try:
        providers = ["CUDAExecutionProvider"] * cuda + ["CPUExecutionProvider"]
        session = ort.InferenceSession(str(path), options, providers=providers)
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types for unreadable files
        raise UserError(f"{path}: onnxruntime cannot load it ({str(exc).splitlines()[0][:300]})") from None
    names = [i.name for i in session.get_inputs()]

    def run(inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        outputs = session.run(None, {name: t.numpy() for name, t in zip(names, inputs)})
        return [torch.from_numpy(out) for out in outputs]

    return session.get_modelmeta().custom_metadata_map, run


def torchscript_runner(path: str | Path) -> tuple[dict[str, str], Runner]:
    """(the file's metadata, from its extra file detpipe.json; a call of its module) on CPU."""
    if not Path(path).is_file():
        raise UserError(f"no TorchScript file at {path}")
    extra = {EXTRA_FILE: ""}
    try:
        with quiet_tracing():  # torch.jit.load warns that TorchScript is deprecated
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except RuntimeError as exc:
        raise UserError(f"{path}: not a TorchScript file ({str(exc).splitlines()[0][:300]})") from None

    def run(inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        with torch.no_grad():
            outputs = module(*inputs)
        return list(outputs) if isinstance(outputs, (tuple, list)) else [outputs]

    return json.loads(extra[EXTRA_FILE]) if extra[EXTRA_FILE] else {}, run


def load_exported(path: str | Path, fmt: str, threads: int = 0) -> ExportedDetector:
    return load_onnx(path, threads) if fmt == "onnx" else load_torchscript(path)
