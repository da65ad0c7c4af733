"""Writing a traced graph with its metadata to a file: ONNX (TorchScript-based exporter, opset 17, metadata_props)
or TorchScript (torch.jit.trace, metadata as the extra file detpipe.json); optional packages checked first.
"""
from __future__ import annotations

import contextlib
import importlib
import json
import warnings
from pathlib import Path
from types import ModuleType
from typing import Iterator

import torch

from datasets.core.atomic import atomic_path
from datasets.core.errors import UserError

from detection.deploy.graphs import GraphSpec
from detection.deploy.metadata import ExportMetadata

FORMATS = ("onnx", "torchscript")
OPSET = 17  # RoIAlign with aligned=True (R-CNN's crops) needs 16
EXTRA_FILE = "detpipe.json"
INSTALL = "pip install 'detpipe[export]' (onnx>=1.15, onnxruntime>=1.17)"


def require(module: str, purpose: str) -> ModuleType:
    """Import an optional package; UserError saying how to install it when it is missing."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(f"{purpose} needs the Python package '{module}', which is not installed: {INSTALL}") from None


def check_format(name: str) -> None:
    if name not in FORMATS:
        raise UserError(f"--format {name!r} is not supported; choose one of {', '.join(FORMATS)}")


@contextlib.contextmanager
def quiet_tracing() -> Iterator[None]:
    """Tracing warns about every Python branch and size it fixes; the families are written so those hold
    (tests compare the exported graphs with PyTorch at other sizes), so the warnings are noise here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)  # the TorchScript-based ONNX exporter
        warnings.filterwarnings("ignore", category=UserWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)  # torch.jit.trace / save / load
        yield


def write_onnx(spec: GraphSpec, meta: ExportMetadata, out: str | Path, opset: int = OPSET) -> None:
    """torch.onnx.export (dynamo=False: torchvision's nms, roi_align and roi_pool have ONNX symbolics there),
    then the metadata as metadata_props; written to a temporary name and renamed."""
    onnx = require("onnx", "--format onnx")
    with atomic_path(out) as tmp:
        with quiet_tracing(), torch.no_grad():
            torch.onnx.export(spec.module, spec.example, str(tmp), dynamo=False, opset_version=opset,
                              input_names=spec.input_names, output_names=spec.output_names,
                              dynamic_axes=spec.dynamic_axes)
        model = onnx.load(str(tmp))
        for key, value in meta.to_props().items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(model, str(tmp))


def write_torchscript(spec: GraphSpec, meta: ExportMetadata, out: str | Path) -> None:
    """torch.jit.trace of the graph, saved with the metadata as the extra file detpipe.json."""
    with quiet_tracing(), torch.no_grad():
        traced = torch.jit.trace(spec.module, spec.example, check_trace=False)
    with atomic_path(out) as tmp, quiet_tracing():
        torch.jit.save(traced, str(tmp), _extra_files={EXTRA_FILE: json.dumps(meta.to_props())})


def write(fmt: str, spec: GraphSpec, meta: ExportMetadata, out: str | Path, opset: int = OPSET) -> None:
    check_format(fmt)
    if fmt == "onnx":
        write_onnx(spec, meta, out, opset)
    else:
        write_torchscript(spec, meta, out)
