"""The constant-velocity Kalman filter: learns a steady motion, predicts it, and trusts measurements."""
from __future__ import annotations

import numpy as np

from detection.tracking.kalman import KalmanBoxFilter, cxcywh_to_xyxy, xyxy_to_cxcywh


def box_at(frame: int) -> np.ndarray:
    """A box moving 3 px right and 1 px down per frame while it grows 0.5 px wider (xyxy)."""
    return cxcywh_to_xyxy(np.array([20 + 3 * frame, 40 + frame, 30 + 0.5 * frame, 20]))


def test_box_conversions_round_trip():
    box = np.array([10.0, 20.0, 50.0, 35.0])
    assert np.allclose(cxcywh_to_xyxy(xyxy_to_cxcywh(box)), box)


def test_predicts_constant_motion_after_a_few_frames():
    kalman = KalmanBoxFilter()
    mean, cov = kalman.initiate(box_at(0))
    for frame in range(1, 31):
        mean, cov = kalman.predict(mean, cov)
        mean, cov = kalman.update(mean, cov, box_at(frame))
    assert np.allclose(mean[4:], [3, 1, 0.5, 0], atol=0.05)  # velocities learnt
    for _ in range(5):  # five frames with no measurement: it coasts on
        mean, cov = kalman.predict(mean, cov)
    assert np.allclose(cxcywh_to_xyxy(mean), box_at(35), atol=0.3)


def test_new_track_has_no_velocity_and_an_update_shrinks_uncertainty():
    kalman = KalmanBoxFilter()
    mean, cov = kalman.initiate(box_at(0))
    assert np.allclose(cxcywh_to_xyxy(mean), box_at(0)) and np.allclose(mean[4:], 0)
    predicted_mean, predicted_cov = kalman.predict(mean, cov)
    assert np.trace(predicted_cov) > np.trace(cov)
    updated_mean, updated_cov = kalman.update(predicted_mean, predicted_cov, box_at(1))
    assert np.trace(updated_cov[:4, :4]) < np.trace(predicted_cov[:4, :4])
    moved = xyxy_to_cxcywh(box_at(1))[:2] - predicted_mean[:2]
    pulled = updated_mean[:2] - predicted_mean[:2]
    assert np.all((pulled > 0) & (pulled < moved))  # between prediction and measurement
