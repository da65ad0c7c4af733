"""The feature maps a model's backbone and neck declare, with the receptive field each was measured to have.

Innermost first (the backbone's maps that the neck reads, then the neck's); the outermost body's are the head's.
"""
from __future__ import annotations

from torch import nn

from detection.backbones.base import Backbone
from detection.inspect.geometry import Geometry
from detection.inspect.receptive import GeometryTracker
from detection.inspect.report import FeatureMap


class MapWatcher:
    """Forward hooks on every Backbone inside a model (a backbone, a neck wrapping one, a detector's body)."""

    def __init__(self, model: nn.Module, tracker: GeometryTracker) -> None:
        self.tracker = tracker
        self.bodies = [m for m in model.modules() if isinstance(m, Backbone)]  # outermost first
        self.seen: dict[int, dict[str, Geometry | None]] = {}
        self._handles = [body.register_forward_hook(self.record) for body in self.bodies]

    def record(self, body: nn.Module, args: tuple, output) -> None:
        if isinstance(output, dict):
            self.seen[id(body)] = {name: self.tracker.get(t) for name, t in output.items()}

    def used_names(self, body: Backbone) -> list[str]:
        """The maps of `body` that the Backbone wrapping it reads (its `names`), else all it declares."""
        for outer in self.bodies:
            if getattr(outer, "body", None) is body and isinstance(getattr(outer, "names", None), list):
                return list(outer.names)
        return list(body.output_shape())

    def feature_maps(self) -> list[FeatureMap]:
        """Every used map, innermost body first, each name once; the outermost body's maps are the head's."""
        maps: dict[str, FeatureMap] = {}
        for body in reversed(self.bodies):
            shapes, measured = body.output_shape(), self.seen.get(id(body), {})
            for name in self.used_names(body):
                if name in shapes and name not in maps:
                    geometry = measured.get(name)
                    maps[name] = FeatureMap(name, shapes[name].stride, shapes[name].channels,
                                            geometry.size if geometry is not None else None)
        if self.bodies:
            for name in self.bodies[0].output_shape():
                if name in maps:
                    maps[name].head = True
        return list(maps.values())

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
