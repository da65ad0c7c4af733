"""The learning-rate schedule every run shares: a linear warmup, then cosine (to 1%) or steps over the rest.

Warmup is counted in epochs and capped at WARMUP_CAP of the run, so a short run still spends most of its
steps at the configured lr (results.png draws the lr, to check).
"""
from __future__ import annotations

import math
from typing import Sequence

WARMUP_CAP = 0.1  # the warmup never takes more than this fraction of the planned steps
WARMUP_START = 0.001  # the multiplier at step 0


def warmup_steps(warmup_epochs: float, iters_per_epoch: int, total_steps: int) -> int:
    """Steps of linear warmup: `warmup_epochs` epochs, at most WARMUP_CAP of `total_steps`."""
    return min(round(warmup_epochs * iters_per_epoch), int(WARMUP_CAP * total_steps))


def lr_multiplier(step: int, total_steps: int, warmup: int, scheduler: str = "cosine", gamma: float = 0.1,
                  milestones: Sequence[float] = ()) -> float:
    """Multiplier of the configured lr at iteration `step` of `total_steps`: linear from WARMUP_START to 1 over
    `warmup` steps; then cosine from 1 to 0.01 over the remaining steps, or `gamma` per milestone passed
    (milestones are fractions of `total_steps`)."""
    if step < warmup:
        return WARMUP_START + (1 - WARMUP_START) * step / warmup
    total = max(1, total_steps)
    if scheduler == "step":
        return gamma ** sum(step >= m * total for m in milestones)
    progress = min(step - warmup, total - warmup) / max(1, total - warmup)
    return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress))
