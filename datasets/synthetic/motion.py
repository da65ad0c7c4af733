"""Smooth object motion for synthetic sequences: a centre and a size per frame, inside the frame.

Random paths (a gently curved line, a steady change of scale) and pairs that cross at a chosen frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Motion:
    """Where an object is: centres [T, 2] (x, y) and longer-side lengths [T] in pixels, per frame."""

    centers: np.ndarray
    extents: np.ndarray


def scale_ramp(rng: np.random.Generator, base: float, frames: int) -> np.ndarray:
    """Extents growing or shrinking steadily by up to a factor 1.8 end to end, centred on `base`."""
    rate = rng.uniform(-0.6, 0.6)
    t = np.linspace(-0.5, 0.5, frames) if frames > 1 else np.zeros(1)
    return base * np.exp(rate * t)


def inside(points: np.ndarray, margin: np.ndarray, size: int) -> np.ndarray:
    """Points [T, 2] moved into [margin, size - margin] (margin [T] or a number)."""
    margin = np.broadcast_to(np.asarray(margin, float).reshape(-1, 1), points.shape)
    return np.clip(points, margin, size - margin)


def random_motion(rng: np.random.Generator, size: int, frames: int, base: float, speed: float) -> Motion:
    """A path from a random start in a random direction at about `speed` px/frame, bowed sideways."""
    extents = scale_ramp(rng, base, frames)
    margin = extents.max() / 2 + 1
    start = rng.uniform(margin, size - margin, 2)
    angle = rng.uniform(0, 2 * np.pi)
    direction = np.array([np.cos(angle), np.sin(angle)])
    end = inside((start + direction * rng.uniform(0.5, 1.5) * speed * (frames - 1))[None], margin, size)[0]
    t = np.linspace(0.0, 1.0, frames)[:, None]
    normal = np.array([-direction[1], direction[0]])
    bow = rng.uniform(-0.15, 0.15) * size * np.sin(np.pi * t) * normal
    return Motion(inside(start + (end - start) * t + bow, extents / 2 + 1, size), extents)


def crossing_pair(rng: np.random.Generator, size: int, frames: int, bases: tuple[float, float],
                  speed: float) -> tuple[Motion, Motion]:
    """Two straight paths through one point near the frame's centre, both there at the middle frame.

    The directions differ by 90 to 180 degrees (from crossing at right angles to meeting head on).
    """
    extents = [scale_ramp(rng, base, frames) for base in bases]
    margin = max(e.max() for e in extents) / 2 + 1
    meet = size / 2 + rng.uniform(-0.08, 0.08, 2) * size
    room = float(min(meet.min(), (size - meet).min()) - margin)
    half = (frames - 1) / 2
    step = min(speed, room / max(half, 1.0))
    first = rng.uniform(0, 2 * np.pi)
    angles = (first, first + rng.uniform(np.pi / 2, np.pi))
    t = (np.arange(frames) - half)[:, None]
    motions = []
    for angle, extent in zip(angles, extents):
        direction = np.array([np.cos(angle), np.sin(angle)])
        motions.append(Motion(inside(meet + direction * step * t, extent / 2 + 1, size), extent))
    return motions[0], motions[1]
