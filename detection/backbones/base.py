"""The backbone contract: a module returning named feature maps that declares their shapes and input normalisation.

Heads read `output_shape()` (channels and stride per map); they never guess.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from datasets.core.errors import UserError
from detection.utils.io import read_torch_file


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ShapeSpec:
    """One feature map: channels and stride (input pixels per feature pixel)."""

    channels: int
    stride: int


class Backbone(nn.Module):
    """Base class: forward(normalised images [N, 3, H, W]) -> OrderedDict name -> [N, C, H/stride, W/stride].

    `mean` and `std` declare the normalisation its input expects, for images in 0..1 (like timm's
    pretrained_cfg): the detector applies `(image - mean) / std` before the backbone.
    """

    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD

    def output_shape(self) -> dict[str, ShapeSpec]:
        raise NotImplementedError


class FeatureExtractor(Backbone):
    """A sequence of stages; the output of each named stage is one feature map."""

    def __init__(self, stages: "OrderedDict[str, nn.Module]", shapes: dict[str, ShapeSpec],
                 mean: tuple[float, ...] = IMAGENET_MEAN, std: tuple[float, ...] = IMAGENET_STD) -> None:
        super().__init__()
        self.stages = nn.ModuleDict(stages)
        self._shapes = shapes
        self.mean, self.std = tuple(mean), tuple(std)

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        out: OrderedDict[str, torch.Tensor] = OrderedDict()
        for name, stage in self.stages.items():
            x = stage(x)
            if name in self._shapes:
                out[name] = x
        return out

    def output_shape(self) -> dict[str, ShapeSpec]:
        return dict(self._shapes)


def load_pretrained(module: nn.Module, path: str, optional: tuple[str, ...] = ()) -> None:
    """Load weights from a local file (a state_dict or {'model'|'state_dict': ...}); clear errors.

    Parameters whose names start with one of `optional` (a classifier the backbone drops) may be absent.
    """
    file = Path(path)
    state = read_torch_file(file, "pretrained weights file")
    for key in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise UserError(f"{file}: expected a state_dict, got {type(state).__name__}")
    own = module.state_dict()
    matched = [k for k in state if k in own]
    if not matched:
        raise UserError(f"{file}: no weight names match this backbone (mismatched file?)")
    for key in matched:
        if not isinstance(state[key], torch.Tensor) or state[key].shape != own[key].shape:
            shape = tuple(getattr(state[key], "shape", ()))
            raise UserError(f"{file}: weight {key!r} has shape {shape}, backbone expects {tuple(own[key].shape)}")
    result = module.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith(optional)]
    if missing:
        raise UserError(f"{file}: missing {len(missing)} backbone weights, e.g. {missing[0]!r}")


def freeze_stages(backbone: FeatureExtractor, trainable: int) -> None:
    """Freeze all but the last `trainable` stages (-1 keeps everything trainable)."""
    if trainable < 0:
        return
    stages = list(backbone.stages.values())
    for stage in stages[: max(len(stages) - trainable, 0)]:
        for param in stage.parameters():
            param.requires_grad_(False)


def freeze_batchnorm(module: nn.Module, eps: float = 1e-5) -> None:
    """Replace every BatchNorm2d inside `module` by torchvision's FrozenBatchNorm2d with its statistics and affine
    (what torchvision's detectors put in a pretrained backbone): fixed in training, no parameters."""
    from torchvision.ops.misc import FrozenBatchNorm2d  # late: keeps this module light

    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=eps)
            with torch.no_grad():
                for key in ("weight", "bias", "running_mean", "running_var"):
                    getattr(frozen, key).copy_(getattr(child, key))
            setattr(module, name, frozen)
        else:
            freeze_batchnorm(child, eps)


def conv_bn_silu(cin: int, cout: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    """Ultralytics' Conv: conv (no bias, 'same' padding) -> BatchNorm (eps 1e-3, momentum 0.03) -> SiLU; the block of
    csp_tiny, the PAN neck and YOLO's free head."""
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
                         nn.BatchNorm2d(cout, eps=1e-3, momentum=0.03), nn.SiLU(inplace=True))
