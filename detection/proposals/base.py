"""Region proposals: the settings every method reads, the interface every method keeps, and its registry.

A proposer maps one RGB uint8 image [H, W, 3] to boxes [P, 4] float32 xyxy in that image's pixels, best first.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Callable

import numpy as np

from detection.errors import UserError
from detection.registry import Registry

PROPOSERS: Registry = Registry("proposal method", "detection.proposals")

NOT_IN_KEY = ("top_n_train", "top_n_test")  # how many are used, not how they are made: the cache keeps all


@dataclass
class ProposalConfig:
    """`model.<family>.proposals`: which method, its settings, and how many proposals a model uses."""

    method: str = "selective_search"  # PROPOSERS entry: selective_search | sliding_window | rpn
    mode: str = "fast"  # selective_search: single | fast | quality (Uijlings et al.'s strategies)
    max_side: int = 500  # larger images are shrunk to this longest side before proposing; boxes scaled back
    min_size: int = 4  # proposals narrower or lower than this many pixels (of the image given) are dropped
    top_n_train: int = 2000  # proposals per image a model trains on (best first)
    top_n_test: int = 1000  # proposals per image a model scores at inference
    checkpoint: str = ""  # rpn: the Faster R-CNN checkpoint whose RPN proposes

    def key(self) -> str:
        """A short hash of the settings that change the boxes: the proposal cache's folder name."""
        settings = {k: v for k, v in dataclasses.asdict(self).items() if k not in NOT_IN_KEY}
        digest = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
        return f"{self.method}-{digest}"


Proposer = Callable[[np.ndarray], np.ndarray]


def build_proposer(cfg: ProposalConfig) -> Proposer:
    """The registered method `cfg.method`, set up from `cfg`; UserError with close matches when unknown."""
    try:
        factory = PROPOSERS.get(cfg.method)
    except KeyError as exc:
        raise UserError(f"proposals.method: {exc.args[0]}") from None
    return factory(cfg)
