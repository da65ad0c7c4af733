"""Receptive-field geometry of a feature map along one axis: size r, jump j (effective stride) and start.

The standard recurrence through a window of kernel k, stride s, padding p, dilation d, in input pixels.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Geometry:
    """One map's view of the input: each cell sees `size` pixels, neighbours are `jump` pixels apart, and the
    first cell is centred at `start` (the input's first pixel is centred at 0.5). `merged`: a branch merge
    (residual add, concatenation, top-down FPN add) lies upstream, so the values follow the largest path."""

    size: float
    jump: float
    start: float
    merged: bool = False


IMAGE = Geometry(size=1.0, jump=1.0, start=0.5)


def through_window(g: Geometry, kernel: int, stride: int, padding: int, dilation: int = 1) -> Geometry:
    """r_out = r_in + (k - 1) d j_in;  j_out = j_in s;  start_out = start_in + ((k - 1) / 2 d - p) j_in."""
    return Geometry(size=g.size + (kernel - 1) * dilation * g.jump, jump=g.jump * stride,
                    start=g.start + ((kernel - 1) / 2 * dilation - padding) * g.jump, merged=g.merged)


def resized(g: Geometry, in_size: int, out_size: int) -> Geometry:
    """Through a resize with no window: upsampling by n divides the jump by n (cells n times closer; the first
    one still repeats the first input cell, as nearest-neighbour upsampling does, so the start stays);
    subsampling by n (a 1x1 window, stride n) multiplies it. The receptive field itself does not grow."""
    if out_size == in_size or in_size <= 0 or out_size <= 0:
        return g
    if out_size > in_size:
        return replace(g, jump=g.jump / max(1, round(out_size / in_size)))
    return replace(g, jump=g.jump * math.ceil(in_size / out_size))


def largest(geometries: list[Geometry]) -> Geometry:
    """Where several maps meet (add, cat, mul): the one that sees the most, marked merged when they are several."""
    best = max(geometries, key=lambda g: (g.size, g.jump))
    merged = len(geometries) > 1 or any(g.merged for g in geometries)
    return replace(best, merged=merged)
