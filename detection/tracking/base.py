"""What trackers answer and the interfaces they keep: multi-object (ByteTrack), single-object (SiamFC).

Boxes are absolute [x1, y1, x2, y2] float arrays in the frame's pixels; ids count from 1.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

import numpy as np


@dataclass
class TrackingStats:
    """What a tracking run did so far: frames seen, and seconds spent in the tracker (and embedder) alone."""

    frames: int = 0
    tracker_seconds: float = 0.0


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
    """The interface the SiamFC tracker implements: started on one box, then follows it frame by frame."""

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


@dataclass(frozen=True)
class TrackerFamily:
    """A trainable tracker in the TRACKERS registry, and a model family a config may name (`model.name`).

    `options`: its dataclass, read from `model.<name>`; `build_network(model_cfg)` makes its network from a
    ModelConfig; calling the family with (network, options, device) makes the SingleObjectTracker that runs it;
    `task` names what trains it (detection.tasks).
    """

    name: str
    options: type
    build_network: Callable[[Any], Any]
    make_tracker: Callable[[Any, Any, Any], SingleObjectTracker]
    task: str
    default_neck: str = "none"

    def __call__(self, network: Any, options: Any, device: Any = "cpu") -> SingleObjectTracker:
        return self.make_tracker(network, options, device)
