"""What trackers answer and the interfaces they keep: multi-object (ByteTrack), single-object (SiamFC, to come).

Boxes are absolute [x1, y1, x2, y2] float arrays in the frame's pixels; ids count from 1.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass
class Track:
    """One active track in one frame: its id (from 1), box [4] xyxy, last detection's score and class."""

    track_id: int
    box: np.ndarray
    score: float
    category_id: int


class MultiObjectTracker(Protocol):
    """Associates each frame's detections with tracks; `update` once per frame, in order."""

    def update(self, boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray | None = None,
               embeddings: np.ndarray | None = None) -> list[Track]:
        """boxes [N, 4] xyxy, scores [N], classes [N] (int), embeddings [N, D] or None -> active tracks."""
        ...


class SingleObjectTracker(Protocol):
    """The interface the SiamFC tracker will implement: started on one box, then follows it frame by frame."""

    def init(self, image: np.ndarray, box: np.ndarray) -> None:
        """Start on `box` [4] xyxy in `image` (RGB uint8 [H, W, 3])."""
        ...

    def update(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """The target's box [4] xyxy in the next frame and the tracker's confidence."""
        ...


class Embedder(Protocol):
    """Appearance features for association (an embedding network, to come): one row per box."""

    def __call__(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """RGB uint8 [H, W, 3] and boxes [N, 4] xyxy -> embeddings [N, D] (any scale; cosine is used)."""
        ...
