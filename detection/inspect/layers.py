"""The layer table: one forward pass with hooks on every leaf module, FLOPs counted and receptive fields carried.

`inspect_model(model, (C, H, W))` -> Inspection (rows in execution order, feature maps, totals).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from detection.inspect.geometry import IMAGE, Geometry, largest, through_window
from detection.inspect.maps import MapWatcher
from detection.inspect.receptive import GeometryTracker, tensors_in, width
from detection.inspect.report import Inspection, LayerRow
from detection.inspect.window import layer_window

# Leaves whose outputs are not maps over the image: pooled regions of interest, flattened vectors.
NOT_MAPS = {"MultiScaleRoIAlign", "RoIAlign", "RoIPool", "PSRoIAlign", "PSRoIPool", "Linear", "Flatten"}


def shape_of(tensors: list[torch.Tensor]) -> list:
    """[N, C, H, W] of a single output; a list of shapes for several."""
    shapes = [list(t.shape) for t in tensors]
    return shapes[0] if len(shapes) == 1 else shapes


class LayerRecorder:
    """Forward hooks on every leaf module: each call appends a LayerRow and sets its output's geometry."""

    def __init__(self, model: nn.Module, tracker: GeometryTracker, counter: FlopCounterMode) -> None:
        self.tracker, self.counter = tracker, counter
        self.rows: list[LayerRow] = []
        self._seen: set[int] = set()
        self._flops: list[int] = []
        self._handles = []
        for name, module in model.named_modules():
            if next(module.children(), None) is None:
                self._handles.append(module.register_forward_pre_hook(self.before))
                self._handles.append(module.register_forward_hook(self.after_hook(name or type(module).__name__)))

    def before(self, module: nn.Module, args: tuple) -> None:
        self._flops.append(self.counter.get_total_flops())

    def after_hook(self, name: str):
        def after(module: nn.Module, args: tuple, output) -> None:
            macs = (self.counter.get_total_flops() - self._flops.pop()) // 2
            self.rows.append(self.row(name, module, list(tensors_in(args)), list(tensors_in(output)), macs))
        return after

    def row(self, name: str, module: nn.Module, inputs: list, outputs: list, macs: int) -> LayerRow:
        params = 0 if id(module) in self._seen else sum(p.numel() for p in module.parameters(recurse=False))
        self._seen.add(id(module))
        row = LayerRow(name, type(module).__name__, shape_of(outputs), params, macs)
        window = None
        if inputs and outputs and width(inputs[0]) and width(outputs[0]):
            window = layer_window(module, width(inputs[0]), width(outputs[0]))
        if window is not None:
            row.kernel, row.stride, row.padding, row.dilation = (window.kernel, window.stride, window.padding,
                                                                 window.dilation)
        geometry = self.output_geometry(module, inputs, outputs, window)
        if geometry is not None and outputs and outputs[0].dim() == 4:
            row.receptive_field, row.jump, row.start = geometry.size, geometry.jump, geometry.start
            row.largest_path = geometry.merged
        return row

    def output_geometry(self, module: nn.Module, inputs: list, outputs: list, window) -> Geometry | None:
        """Through the layer's window when it has one; none for non-maps; else what the tracker carried."""
        known = [g for g in (self.tracker.get(t) for t in inputs) if g is not None]
        if type(module).__name__ in NOT_MAPS:
            geometry = None
        elif window is not None and known:
            geometry = through_window(largest(known), window.kernel, window.stride, window.padding,
                                      window.dilation)
        else:
            return self.tracker.get(outputs[0]) if outputs else None
        for tensor in outputs:
            self.tracker.set(tensor, geometry)
        return geometry

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


def inspect_model(model: nn.Module, input_shape: tuple[int, int, int], seed: int = 0) -> Inspection:
    """Run one random image [1, C, H, W] through `model` in eval mode and record every leaf layer's call."""
    model.eval()
    image = torch.rand(1, *input_shape, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad(), FlopCounterMode(display=False) as counter, GeometryTracker() as tracker:
        recorder, watcher = LayerRecorder(model, tracker, counter), MapWatcher(model, tracker)
        tracker.set(image, IMAGE)
        try:
            model(image)
        finally:
            recorder.remove()
            watcher.remove()
    return Inspection(input=list(input_shape), layers=recorder.rows, feature_maps=watcher.feature_maps(),
                      total_params=sum(p.numel() for p in model.parameters()),
                      total_macs=counter.get_total_flops() // 2, merges=tracker.merges)
