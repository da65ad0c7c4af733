"""Constant-velocity Kalman filter on a box's centre and size, as SORT and ByteTrack track boxes.

State [cx, cy, w, h, vcx, vcy, vw, vh]; noise scales with the box's size (ByteTrack's weights, on w and h).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STATE, MEASURED = 8, 4


def xyxy_to_cxcywh(box: np.ndarray) -> np.ndarray:
    """[4] x1, y1, x2, y2 -> [4] cx, cy, w, h."""
    x1, y1, x2, y2 = np.asarray(box, dtype=np.float64)
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1])


def cxcywh_to_xyxy(state: np.ndarray) -> np.ndarray:
    """The box [4] x1, y1, x2, y2 of a state (or measurement) starting cx, cy, w, h."""
    cx, cy, w, h = np.asarray(state, dtype=np.float64)[:4]
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


@dataclass
class KalmanBoxFilter:
    """The motion model; a track keeps its own (mean [8], covariance [8, 8]) and passes them in.

    std_position and std_velocity are noise standard deviations as fractions of the box's w and h.
    """

    std_position: float = 1.0 / 20
    std_velocity: float = 1.0 / 160

    def __post_init__(self) -> None:
        self.motion = np.eye(STATE)
        self.motion[:MEASURED, MEASURED:] = np.eye(MEASURED)  # one frame: position += velocity
        self.observe = np.eye(MEASURED, STATE)

    def _scaled(self, weight: float, size: np.ndarray) -> np.ndarray:
        w, h = max(size[0], 1.0), max(size[1], 1.0)
        return weight * np.array([w, h, w, h])

    def initiate(self, box_xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A new track's state at a box (zero velocity) and its wide uncertainty."""
        measured = xyxy_to_cxcywh(box_xyxy)
        mean = np.concatenate([measured, np.zeros(MEASURED)])
        std = np.concatenate([2 * self._scaled(self.std_position, measured[2:]),
                              10 * self._scaled(self.std_velocity, measured[2:])])
        return mean, np.diag(std ** 2)

    def predict(self, mean: np.ndarray, covariance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The state one frame later under constant velocity, with process noise added."""
        std = np.concatenate([self._scaled(self.std_position, mean[2:4]), self._scaled(self.std_velocity, mean[2:4])])
        mean = self.motion @ mean
        covariance = self.motion @ covariance @ self.motion.T + np.diag(std ** 2)
        return mean, covariance

    def update(self, mean: np.ndarray, covariance: np.ndarray, box_xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The state corrected by a measured box (the Kalman gain weighs prediction against measurement)."""
        measured = xyxy_to_cxcywh(box_xyxy)
        noise = np.diag(self._scaled(self.std_position, mean[2:4]) ** 2)
        projected = self.observe @ covariance @ self.observe.T + noise
        gain = np.linalg.solve(projected, self.observe @ covariance).T  # P H^T S^-1 (S symmetric)
        mean = mean + gain @ (measured - self.observe @ mean)
        covariance = covariance - gain @ projected @ gain.T
        return mean, covariance
