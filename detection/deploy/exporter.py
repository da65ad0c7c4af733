"""A detector (or a checkpoint) to an exported file: its graph (graphs.py), its metadata, the chosen format.

`export_detector` works on a built model, so tests and benchmarks export models they build themselves.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from detection.config import Config
from detection.engine.checkpoint import LoadedModel
from detection.models.base import Detector

from detection.deploy.formats import OPSET, write
from detection.deploy.graphs import GraphSpec, graph_spec
from detection.deploy.metadata import ExportMetadata


def metadata_for(model: Detector, family: str, categories: list[dict], spec: GraphSpec, name: str = "model",
                 version: str = "0", metrics: dict | None = None) -> ExportMetadata:
    """What the exported file carries, from the model and its checkpoint's categories and identity."""
    cfg = model.proposal_input.cfg if model.takes_proposals else None  # the contract's ProposalInput
    axes = {key: {str(axis): label for axis, label in value.items()} for key, value in spec.dynamic_axes.items()}
    return ExportMetadata(
        family=family, input_size=model.input_size, categories=[dict(c) for c in categories],
        postprocess=dataclasses.asdict(model.postprocess_options), inputs=list(spec.input_names),
        dynamic_axes=axes, batch=spec.batch, proposals=None if cfg is None else dataclasses.asdict(cfg),
        name=name, version=version, metrics={k: v for k, v in (metrics or {}).items() if is_number(v)})


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def export_detector(model: Detector, family: str, categories: list[dict], fmt: str, out: str | Path,
                    batch: int = 1, opset: int = OPSET, **identity) -> ExportMetadata:
    """Write `model` (any family) with its post-processing to `out` as `fmt`; `batch` is the fixed batch of
    families that score images one by one. Returns the metadata written with it."""
    model.eval()
    spec = graph_spec(family, model, batch)
    meta = metadata_for(model, family, categories, spec, **identity)
    write(fmt, spec, meta, out, opset)
    return meta


def export_checkpoint(loaded: LoadedModel, fmt: str, out: str | Path, batch: int = 1,
                      opset: int = OPSET) -> ExportMetadata:
    """Export a detector checkpoint's model (load_model(path, expect="detector")); its metadata."""
    return export_detector(loaded.model, loaded.config.model.name, loaded.categories, fmt, out, batch, opset,
                           **checkpoint_identity(loaded.config, loaded.state, loaded.path))


def checkpoint_identity(cfg: Config, state: dict, checkpoint: str | Path) -> dict:
    """name, version and metrics as the service shows them for the checkpoint itself (detection.inference.predictor)."""
    return {"name": Path(cfg.output_dir).name or Path(checkpoint).stem, "version": f"epoch-{state.get('epoch', 0)}",
            "metrics": state.get("metrics", {})}
