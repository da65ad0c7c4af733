"""Exponential moving average of the weights (train.ema) on torch's AveragedModel, with YOLOv5's ramp.

decay_t = decay * (1 - exp(-t / warmup)): early averages follow the model, later ones smooth it.
"""
from __future__ import annotations

import math

import torch
from torch.optim.swa_utils import AveragedModel


def ramped_ema(decay: float, warmup: int):
    """AveragedModel's multi_avg_fn: averaged <- lerp(averaged, current, 1 - decay_t), buffers included."""

    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], num_averaged) -> None:
        rate = decay * (1 - math.exp(-(int(num_averaged) + 1) / max(1, warmup)))
        floats = [(a, c) for a, c in zip(averaged, current) if a.is_floating_point()]
        if floats:
            torch._foreach_lerp_([a for a, _ in floats], [c for _, c in floats], 1 - rate)
        for a, c in zip(averaged, current):
            if not a.is_floating_point():
                a.copy_(c)  # counters such as BatchNorm's num_batches_tracked

    return update


def build_ema(model: torch.nn.Module, decay: float, warmup: int) -> AveragedModel:
    """The averaged copy of `model` (parameters and buffers), in eval mode; update with update_parameters."""
    ema = AveragedModel(model, multi_avg_fn=ramped_ema(decay, warmup), use_buffers=True)
    return ema.eval().requires_grad_(False)
