"""Carries receptive-field geometry along every tensor of a forward pass (a TorchFunctionMode), branches included.

Where tensors meet (add, cat, mul) the largest path wins; layers with windows are set by their module's hook.
"""
from __future__ import annotations

import weakref
from typing import Any, Iterator

import torch
from torch.overrides import TorchFunctionMode

from detection.inspect.geometry import Geometry, largest, resized, through_window

RESIZE_FUNCTIONS = {"interpolate", "upsample", "upsample_nearest", "upsample_bilinear"}
POOL_FUNCTIONS = {"max_pool2d": ("kernel_size", "stride", "padding", "dilation"),
                  "_max_pool2d": ("kernel_size", "stride", "padding", "dilation"),
                  "max_pool2d_with_indices": ("kernel_size", "stride", "padding", "dilation"),
                  "avg_pool2d": ("kernel_size", "stride", "padding")}


def tensors_in(value: Any) -> Iterator[torch.Tensor]:
    """Every tensor in a nested tuple / list / dict (and an ImageList's .tensors)."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from tensors_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from tensors_in(item)
    elif isinstance(getattr(value, "tensors", None), torch.Tensor):
        yield value.tensors


def width(tensor: torch.Tensor) -> int | None:
    """The width (last axis) of a map [..., H, W]; None for tensors without two spatial axes."""
    return int(tensor.shape[-1]) if tensor.dim() >= 3 else None


def pool_window(names: tuple[str, ...], args: tuple, kwargs: dict) -> tuple[int, int, int, int]:
    """(kernel, stride, padding, dilation) of a functional pool call, width axis."""
    given = dict(zip(names, args[1:]), **{k: v for k, v in kwargs.items() if k in names})
    pick = (lambda v: int(v[-1]) if isinstance(v, (tuple, list)) else int(v))
    kernel = pick(given["kernel_size"])
    stride = given.get("stride") or kernel
    return kernel, pick(stride), pick(given.get("padding", 0)), pick(given.get("dilation", 1))


class GeometryTracker(TorchFunctionMode):
    """Inside `with GeometryTracker() as tracker:`, every torch call's output tensors get the geometry of its
    inputs: the largest of those with the output's spatial size (a 1x1 channel gate does not widen a map),
    resized through interpolation and functional pools. `merges` counts calls where several maps of one
    size met cell by cell."""

    def __init__(self) -> None:
        super().__init__()
        self._known: dict[int, tuple[weakref.ref, Geometry]] = {}
        self.merges = 0

    def get(self, tensor: torch.Tensor) -> Geometry | None:
        entry = self._known.get(id(tensor))
        return entry[1] if entry is not None and entry[0]() is tensor else None

    def set(self, tensor: torch.Tensor, geometry: Geometry | None) -> None:
        if geometry is None:
            self._known.pop(id(tensor), None)
        else:
            self._known[id(tensor)] = (weakref.ref(tensor), geometry)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        sources = {id(t): t for t in tensors_in((args, kwargs)) if self.get(t) is not None}
        outputs = list(tensors_in(out))
        if sources and outputs:
            geometry = self.combine(getattr(func, "__name__", ""), list(sources.values()), outputs[0], args, kwargs)
            for tensor in outputs:
                self.set(tensor, geometry)
        return out

    def combine(self, name: str, sources: list[torch.Tensor], out: torch.Tensor, args: tuple,
                kwargs: dict) -> Geometry:
        """The output's geometry from its tagged inputs."""
        if name in POOL_FUNCTIONS and width(sources[0]) is not None:
            return through_window(self.get(sources[0]), *pool_window(POOL_FUNCTIONS[name], args, kwargs))
        if name in RESIZE_FUNCTIONS and width(sources[0]) and width(out):
            return resized(self.get(sources[0]), width(sources[0]), width(out))
        if name == "copy_" and len(args) > 1 and self.get(args[1]) is not None:  # pasted into a canvas
            return self.get(args[1])
        same = [t for t in sources if t.dim() == 4 and out.dim() == 4 and t.shape[-2:] == out.shape[-2:]]
        if len(same) > 1:  # maps meeting cell by cell: a residual add, a concatenation, a top-down add
            self.merges += 1
            return largest([self.get(t) for t in same])
        if same:
            return self.get(same[0])
        return max((self.get(t) for t in sources), key=lambda g: g.size)  # reshapes, gathers, flattening
