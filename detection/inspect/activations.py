"""What a model's layers put out on one image, by module path, and its first layer's filters.

Default layers: the maps its backbone declares (the innermost Backbone's output_shape()).
"""
from __future__ import annotations

import difflib

import torch
from torch import nn

from datasets.core.errors import UserError
from detection.backbones.base import Backbone


def innermost_backbone(model: nn.Module) -> Backbone:
    """The registry backbone inside a detector (or the model itself when it is one)."""
    bodies = [m for m in model.modules() if isinstance(m, Backbone)]
    if not bodies:
        raise UserError(f"{type(model).__name__} has no registry backbone to take feature maps from")
    return bodies[-1]


def find_module(model: nn.Module, path: str) -> nn.Module:
    """The submodule at `path` (e.g. body.body.stages.c3); UserError naming close paths when there is none."""
    modules = dict(model.named_modules())
    if path not in modules:
        close = difflib.get_close_matches(path, [name for name in modules if name], n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UserError(f"--layers: the model has no module {path!r}{hint}")
    return modules[path]


def first_tensor(output) -> torch.Tensor | None:
    if isinstance(output, torch.Tensor):
        return output
    values = output.values() if isinstance(output, dict) else output if isinstance(output, (tuple, list)) else []
    return next((t for t in values if isinstance(t, torch.Tensor)), None)


@torch.no_grad()
def capture_maps(model: nn.Module, images: torch.Tensor, layers: list[str]) -> dict[str, torch.Tensor]:
    """Name -> [C, H, W] of the first image: the named modules' outputs, or (no `layers`) the backbone's maps.
    A named layer that does not run, or whose output is not a [N, C, H, W] map, is a UserError."""
    found: dict[str, torch.Tensor] = {}
    if layers:
        targets = [(path, find_module(model, path)) for path in layers]
        hooks = [module.register_forward_hook(lambda m, a, out, p=path: found.setdefault(p, first_tensor(out)))
                 for path, module in targets]
    else:
        hooks = [innermost_backbone(model).register_forward_hook(lambda m, a, out: found.update(out))]
    try:
        model.eval()
        model(images)
    finally:
        for hook in hooks:
            hook.remove()
    silent = [path for path in layers if path not in found]
    if silent:
        raise UserError(f"--layers: {silent[0]} did not run in the forward pass (a container? name one of its "
                        f"layers, e.g. {silent[0]}.0)")
    for name, tensor in found.items():
        if tensor is None or tensor.dim() != 4:
            shape = None if tensor is None else list(tensor.shape)
            raise UserError(f"--layers: {name} puts out {shape}, not a feature map [N, C, H, W]")
    return {name: tensor[0].float().cpu() for name, tensor in found.items()}


def first_conv(model: nn.Module) -> tuple[str, nn.Conv2d]:
    """The first convolution that takes the 3-channel image, by module order."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d) and module.in_channels == 3:
            return name, module
    raise UserError(f"{type(model).__name__} has no convolution over the RGB image")
