"""The sliding window of a layer (kernel, stride, padding, dilation along the width axis), read from its module.

Convolutions and pools declare theirs; adaptive pools get the window that turns their input size into their output.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class Window:
    kernel: int
    stride: int
    padding: int
    dilation: int = 1


def last(value) -> int:
    """The width-axis entry of an int-or-tuple module attribute."""
    return int(value[-1]) if isinstance(value, (tuple, list)) else int(value)


def conv_padding(conv: nn.modules.conv._ConvNd) -> int:
    """A conv's padding; 'same' pads (k - 1) d / 2 on the left (what matters for the start), 'valid' none."""
    if conv.padding == "same":
        return (last(conv.kernel_size) - 1) * last(conv.dilation) // 2
    if conv.padding == "valid":
        return 0
    return last(conv.padding)


def adaptive_window(in_size: int, out_size: int) -> Window:
    """An adaptive pool's widest window: cells of ceil(in / out) inputs, about in // out apart."""
    if out_size >= in_size:
        return Window(1, 1, 0)
    return Window(math.ceil(in_size / out_size), in_size // out_size, 0)


def layer_window(module: nn.Module, in_size: int, out_size: int) -> Window | None:
    """The window `module` slides over its input (`in_size` -> `out_size` wide), or None for layers that
    work cell by cell (normalisation, activation) or are not sliding windows (linear, transposed conv)."""
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        return None
    if isinstance(module, nn.modules.conv._ConvNd):
        return Window(last(module.kernel_size), last(module.stride), conv_padding(module), last(module.dilation))
    if isinstance(module, (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)):
        stride = module.stride if module.stride is not None else module.kernel_size
        return Window(last(module.kernel_size), last(stride), last(module.padding), last(module.dilation))
    if isinstance(module, (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)):
        stride = module.stride if module.stride is not None else module.kernel_size
        return Window(last(module.kernel_size), last(stride), last(module.padding))
    if isinstance(module, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
                           nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)):
        return adaptive_window(in_size, out_size)
    return None
