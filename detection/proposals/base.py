"""Region proposals: the settings every method reads, the interface every method keeps, and its registry.

A proposer maps one RGB uint8 image [H, W, 3] to boxes [P, 4] float32 xyxy in that image's pixels, best first.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Callable

import numpy as np

from datasets.core.errors import UserError
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
        """A short hash of the settings that change the boxes: the proposal cache's folder name.

        The checkpoint counts by its content, not its path: a retrained best.pt gets a new key, a copy the same.
        """
        settings = {k: v for k, v in dataclasses.asdict(self).items() if k not in NOT_IN_KEY}
        settings["checkpoint"] = checkpoint_digest(self.checkpoint)
        digest = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
        return f"{self.method}-{digest}"


def checkpoint_digest(path: str) -> str:
    """SHA-1 of a checkpoint file's bytes (hashed once per path, size and modification time); the path itself
    when there is no such file (the method then reports it), "" for none."""
    if not path or not os.path.isfile(path):
        return path
    stat = os.stat(path)
    return _file_digest(os.path.abspath(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    return file_sha1(path)


def file_sha1(path: str | os.PathLike) -> str:
    """The hex SHA-1 of a file's bytes (read in 1 MiB chunks)."""
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


Proposer = Callable[[np.ndarray], np.ndarray]


def build_proposer(cfg: ProposalConfig) -> Proposer:
    """The registered method `cfg.method`, set up from `cfg`; UserError with close matches when unknown."""
    try:
        factory = PROPOSERS.get(cfg.method)
    except KeyError as exc:
        raise UserError(f"proposals.method: {exc.args[0]}") from None
    return factory(cfg)
