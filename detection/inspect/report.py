"""What an inspection found: one row per layer call, the feature maps, totals; as JSON-ready dicts.

Built by detection.inspect.layers; printed by detection.inspect.table or as JSON by the CLI.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


def plain(value: Any) -> Any:
    """7.0 -> 7 (receptive fields are whole pixels unless upsampling split a jump); anything else as it is."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


@dataclass
class LayerRow:
    """One call of a leaf module, in execution order. Window fields are None for layers without a window;
    receptive field, jump and start (input pixels) are None for outputs that are not [N, C, H, W] maps."""

    name: str
    type: str
    output_shape: list  # [N, C, H, W]; a list of shapes when the layer puts out several tensors
    params: int  # the module's own parameters, counted at its first call only
    macs: int  # multiply-adds of its convolutions and matrix products (torch.utils.flop_counter)
    kernel: int | None = None
    stride: int | None = None
    padding: int | None = None
    dilation: int | None = None
    receptive_field: float | None = None
    jump: float | None = None
    start: float | None = None
    largest_path: bool = False  # a branch merge lies upstream: the receptive field is the largest path's


@dataclass
class FeatureMap:
    """A named map a backbone or neck declares (output_shape()) with the receptive field it was measured to have."""

    name: str
    stride: int
    channels: int
    receptive_field: float | None
    head: bool = False  # among the maps the detector's head reads (the outermost body's maps)


@dataclass
class Inspection:
    input: list[int]  # [C, H, W]
    layers: list[LayerRow]
    feature_maps: list[FeatureMap]
    total_params: int  # sum(p.numel()) over every parameter of the model
    total_macs: int  # over the whole forward pass, layers or not
    merges: int  # calls where several maps met (add, cat): receptive fields follow the largest path
    coverage: dict[str, Any] | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        """The --json object: input, layers, feature_maps, total_params, total_macs (+ branching, coverage)."""
        layers = [{k: plain(v) for k, v in dataclasses.asdict(row).items() if k != "largest_path"}
                  for row in self.layers]
        maps = [{k: plain(v) for k, v in dataclasses.asdict(m).items() if k != "head"} for m in self.feature_maps]
        out = {"input": list(self.input), "layers": layers, "feature_maps": maps,
               "total_params": self.total_params, "total_macs": self.total_macs, "branching": self.merges > 0}
        if self.coverage is not None:
            out["coverage"] = self.coverage
        return out
