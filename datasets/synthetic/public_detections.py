"""Public detections for synthetic sequences, made from the ground truth like a fair detector's output.

Boxes are jittered, some dropped, weak where an object is half hidden, absent where it is hidden, plus false alarms.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datasets.core.errors import UserError


@dataclass
class DetectionNoise:
    """How far the detections stray from the ground truth."""

    jitter: float = 0.04  # std of box position (fraction of its size) and of log size
    drop: float = 0.1  # share of visible objects not detected
    false_alarms: float = 0.3  # false boxes per frame (Poisson mean)
    min_visibility: float = 0.2  # objects less visible than this are never detected
    half_hidden: float = 0.6  # objects less visible than this get low scores (0.15..0.5)

    def check(self) -> None:
        """UserError naming the option that is out of range."""
        if self.jitter < 0 or self.false_alarms < 0 or not 0 <= self.drop <= 1:
            raise UserError(f"need --det-jitter >= 0, 0 <= --det-drop <= 1 and --det-false-alarms >= 0, got "
                            f"{self.jitter}, {self.drop} and {self.false_alarms}")


def frame_detections(rng: np.random.Generator, boxes: np.ndarray, visibility: np.ndarray, size: int,
                     noise: DetectionNoise) -> tuple[np.ndarray, np.ndarray]:
    """One frame's detections from its ground truth (boxes [N, 4] xywh, visibility [N]): boxes, scores."""
    seen = (visibility >= noise.min_visibility) & (rng.random(len(boxes)) >= noise.drop)
    found, shown = np.asarray(boxes, np.float64)[seen], visibility[seen]
    found[:, :2] += rng.normal(0, noise.jitter, (len(found), 2)) * found[:, 2:]
    found[:, 2:] *= np.exp(rng.normal(0, noise.jitter, (len(found), 2)))
    scores = np.where(shown < noise.half_hidden, rng.uniform(0.15, 0.5, len(found)),
                      rng.uniform(0.55, 0.95, len(found)))
    count = int(rng.poisson(noise.false_alarms))
    wh = rng.uniform(0.08, 0.2, (count, 2)) * size
    alarms = np.concatenate([rng.uniform(0, size, (count, 2)) - wh / 2, wh], axis=1)
    return np.concatenate([found, alarms]), np.concatenate([scores, rng.uniform(0.1, 0.6, count)])


def detection_lines(frame: int, boxes: np.ndarray, scores: np.ndarray) -> list[str]:
    """MOTChallenge detection lines: frame,-1,x,y,w,h,score,-1,-1,-1."""
    return [f"{frame},-1,{x:.2f},{y:.2f},{w:.2f},{h:.2f},{s:.3f},-1,-1,-1"
            for (x, y, w, h), s in zip(boxes, scores)]
