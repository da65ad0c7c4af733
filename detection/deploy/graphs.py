"""What gets traced: a detector wrapped so its outputs are fixed-size tensors (padded.py), with example inputs,
names and the axes left free. GRAPHS is the extension point for what is not a Detector (the SiamFC branches).

A detector's graph takes the score threshold as an input (a 0-dim float32), so a call's threshold, higher or lower
than the checkpoint's, is applied where PyTorch applies it (before NMS), and holds MAX_DETECTIONS_LIMIT detections
per image (or the checkpoint's max_detections when higher): a runtime keeps a call's best max_detections of them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from detection.config import MAX_DETECTIONS_LIMIT
from detection.models.base import Detector
from detection.registry import Registry

from detection.deploy.padded import OUTPUT_NAMES, dense_padded, packed


@dataclass
class GraphSpec:
    """A module to trace and what the exporters need to know about it."""

    module: nn.Module  # inputs -> outputs, every one a tensor; in eval mode (exporters put a module back as it was)
    example: tuple[torch.Tensor, ...]  # inputs to trace with
    input_names: list[str]
    output_names: list[str]
    dynamic_axes: dict[str, dict[int, str]]  # name -> {axis: label} of axes of any size
    batch: int | None  # the fixed batch size, None when the batch axis is free


ExportGraph = Callable[[nn.Module, int], GraphSpec]  # (model in eval mode, batch size) -> its graph
# name (a DETECTORS family, or another kind of model) -> ExportGraph. A registered entry replaces the contract's
# graph below; a new kind of model (the SiamFC tracker's branches) registers its own here.
GRAPHS: Registry[ExportGraph] = Registry("export graph")


def graph_detections(model: Detector) -> int:
    """D, the detections per image an exported graph holds: MAX_DETECTIONS_LIMIT, or the model's own when higher."""
    return max(MAX_DETECTIONS_LIMIT, model.postprocess_options.max_detections)


class DenseGraph(nn.Module):
    """Single-shot families: images [N, 3, H, W] in 0..1 and the score threshold [] -> padded detections, for any
    N, H, W."""

    def __init__(self, model: Detector) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor, score_threshold: torch.Tensor) -> tuple[torch.Tensor, ...]:
        opts = self.model.call_options(score_threshold, graph_detections(self.model))
        return dense_padded(self.model.dense_outputs(images), opts)


class ContractGraph(nn.Module):
    """Any family through the contract's forward: images [B, 3, H, W] in 0..1, the score threshold [] (and, for
    families that take them, proposals [R, 5] rows (image index, x1, y1, x2, y2) in the S x S frame) -> padded
    detections.

    The families loop over images in Python, so B is fixed when traced; H, W and R stay free.
    """

    def __init__(self, model: Detector) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor, score_threshold: torch.Tensor,
                proposals: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        given = None if proposals is None else split_rois(proposals, len(images))
        rows = graph_detections(self.model)
        outputs = self.model(images, None, given, score_threshold=score_threshold, max_detections=rows)
        return packed(outputs, images[:, 0, 0, 0], rows)


def split_rois(rois: torch.Tensor, batch: int) -> list[torch.Tensor]:
    """Rows (image index, x1, y1, x2, y2) [R, 5] -> one [P_i, 4] tensor per image."""
    return [rois[rois[:, 0] == i][:, 1:] for i in range(batch)]


def grid_rois(batch: int, size: int, cells: int = 4) -> torch.Tensor:
    """Example proposals [R, 5]: squares of side 2 * size / cells at (cells - 1)^2 grid positions, every image."""
    step = size / cells
    boxes = [[x * step, y * step, x * step + 2 * step, y * step + 2 * step]
             for y in range(cells - 1) for x in range(cells - 1)]
    return torch.tensor([[i, *box] for i in range(batch) for box in boxes], dtype=torch.float32)


def detector_graph(model: Detector, batch: int) -> GraphSpec:
    """The graph of a detector: dense (any batch) when the family has `dense_outputs`, else the contract's."""
    size, names = model.input_size, list(OUTPUT_NAMES)
    with torch.no_grad():
        dense = model.dense_outputs(torch.zeros(1, 3, size, size)) is not None
    threshold = torch.tensor(0.0)  # traced at 0, so every stage has candidates; the input is free
    if dense:
        axes = {"images": {0: "batch", 2: "height", 3: "width"}, **{name: {0: "batch"} for name in names}}
        example = (example_images(2, size), threshold)  # two images, so no axis of size 1 gets special-cased
        return GraphSpec(DenseGraph(model).eval(), example, ["images", "score_threshold"], names, axes, None)
    axes = {"images": {2: "height", 3: "width"}, **{name: {} for name in names}}
    if not model.takes_proposals:
        return GraphSpec(ContractGraph(model).eval(), (example_images(batch, size), threshold),
                         ["images", "score_threshold"], names, axes, batch)
    axes["proposals"] = {0: "rois"}
    example = (example_images(batch, size), threshold, grid_rois(batch, size))
    return GraphSpec(ContractGraph(model).eval(), example, ["images", "score_threshold", "proposals"], names, axes,
                     batch)


def example_images(batch: int, size: int) -> torch.Tensor:
    """Inputs to trace with: bright squares on grey, so every stage has boxes to work on (a trace keeps the
    Python branches its example takes; tests run the graphs on other inputs, some with no detection at all)."""
    images = torch.full((batch, 3, size, size), 0.45)
    for i in range(batch):
        a = size // 8 + 2 * i
        images[i, :, a:a + size // 3, a:a + size // 3] = 0.9
        images[i, 0, size // 2:size - 4, size // 2:size - 4] = 0.1
    return images


def graph_spec(name: str, model: nn.Module, batch: int) -> GraphSpec:
    """The registered graph for `name`, else the detector contract's."""
    if name in GRAPHS:
        return GRAPHS.get(name)(model, batch)
    if not isinstance(model, Detector):
        raise TypeError(f"{name}: {type(model).__name__} is no Detector and has no entry in GRAPHS")
    return detector_graph(model, batch)
