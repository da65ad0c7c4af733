"""Why the model found one detection: the gradient of its score with respect to the input pixels, and Grad-CAM
(Selvaraju et al.: a map's channels weighted by their mean gradient, ReLU) on the head's map it came from."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from datasets.core.errors import UserError

GRADIENT_QUANTILE = 0.99  # the gradient picture's full scale: its 99th percentile
from detection.backbones.base import Backbone


@dataclass
class Explanation:
    """For detection `rank` (1 = best) of `count`: its box xyxy, score and label in the S x S input frame;
    `gradient` and `cam` are [S, S] in 0..1 (the gradient scaled by its 99th percentile, `gradient_scale`,
    so a few extreme pixels do not hide the rest); `cam_map` names the map Grad-CAM used."""

    rank: int
    count: int
    box: list[float]
    score: float
    label: int
    gradient: torch.Tensor
    gradient_scale: float
    cam: torch.Tensor
    cam_map: str


def scaled(values: torch.Tensor, quantile: float = 1.0) -> torch.Tensor:
    """Into 0..1 by the value at `quantile` (1: the maximum), clipped above (all zeros stay zeros)."""
    top = torch.quantile(values.flatten().float(), quantile) if quantile < 1 else values.max()
    if top <= 0:
        top = values.max()
    return (values / top).clamp(max=1) if top > 0 else values


def outermost_body(model: nn.Module) -> Backbone:
    """The backbone-plus-neck whose maps the head reads."""
    return next(m for m in model.modules() if isinstance(m, Backbone))


def grad_cam(fmap: torch.Tensor, grad: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """fmap, grad [C, h, w] -> ReLU(sum_c mean(grad_c) * fmap_c), bilinearly resized to `size`, in 0..1."""
    cam = F.relu((grad.mean(dim=(1, 2))[:, None, None] * fmap).sum(0))
    return scaled(F.interpolate(cam[None, None], size=size, mode="bilinear", align_corners=False)[0, 0])


def explain(model: nn.Module, image: torch.Tensor, rank: int = 1) -> Explanation:
    """Run the detector (eval mode, gradients on) on one letterboxed image [3, S, S] in 0..1 and back-propagate
    the score of its `rank`-th best detection; UserError when it has fewer detections than that. Grad-CAM uses
    the head's map that the score's gradient flows through most (the level the detection was read from)."""
    kept: dict[str, torch.Tensor] = {}

    def keep(module, args, out) -> None:
        for name, fmap in out.items():
            if fmap.requires_grad:
                fmap.retain_grad()
                kept[name] = fmap

    model.eval()
    pixels = image[None].detach().clone().requires_grad_(True)
    hook = outermost_body(model).register_forward_hook(keep)
    try:
        with torch.enable_grad():
            output = model(pixels)[0]
            count = len(output["scores"])
            if not 1 <= rank <= count:
                raise UserError(f"--detection {rank}: the model made {count} detection(s) on this image "
                                f"(at its score threshold)")
            output["scores"][rank - 1].backward()
    finally:
        hook.remove()
    gradient = pixels.grad[0].abs().amax(0)
    used = {name: fmap for name, fmap in kept.items() if fmap.grad is not None}
    name = max(used, key=lambda n: float(used[n].grad.abs().sum()))
    cam = grad_cam(used[name][0].detach(), used[name].grad[0], tuple(image.shape[-2:]))
    return Explanation(rank, count, output["boxes"][rank - 1].tolist(), float(output["scores"][rank - 1].detach()),
                       int(output["labels"][rank - 1]), scaled(gradient, GRADIENT_QUANTILE).cpu(),
                       float(torch.quantile(gradient.flatten(), GRADIENT_QUANTILE)),
                       cam.cpu(), name)
