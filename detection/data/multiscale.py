"""Multi-scale training (data.multi_scale): each batch resized to a random size, a multiple of 32, around S.

The size is drawn from (seed, step) alone, so a resumed run sees the same sizes as an uninterrupted one.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

MULTIPLE = 32


def batch_size_for(step: int, seed: int, input_size: int, low: float, high: float) -> int:
    """A side in [low * S, high * S] rounded to a multiple of 32 (at least 32), the same for the same step."""
    lo, hi = max(MULTIPLE, round(low * input_size / MULTIPLE) * MULTIPLE), round(high * input_size / MULTIPLE)
    choices = list(range(lo, max(lo, hi * MULTIPLE) + 1, MULTIPLE))
    g = torch.Generator().manual_seed(seed * 1_000_003 + step)
    return choices[int(torch.randint(len(choices), (1,), generator=g))]


def rescale_batch(images: torch.Tensor, targets: list[dict], size: int) -> tuple[torch.Tensor, list[dict]]:
    """Images [N, 3, S, S] -> [N, 3, size, size] (bilinear) with their boxes (and proposals) scaled alike."""
    if size == images.shape[-1]:
        return images, targets
    factor = size / images.shape[-1]
    images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    scaled = ("boxes", "proposals")
    return images, [{**t, **{k: t[k] * factor for k in scaled if k in t}} for t in targets]
