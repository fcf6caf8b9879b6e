"""A constant-velocity Kalman filter over boxes, for many tracks at once (pure functions on stacked arrays).

The state of a track is (cx, cy, w, h) and their velocities in pixels a frame; the noise is relative to the box
size, as in ByteTrack, and grows with the time step, so a gap of skipped frames widens the prediction as it
should instead of counting as a miss.
"""

from __future__ import annotations

import numpy as np

POSITION_NOISE = 1 / 20  # standard deviation of position, as a fraction of the box size
VELOCITY_NOISE = 1 / 160  # standard deviation of velocity (a frame), as a fraction of the box size


def boxes_to_measurements(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) [x1, y1, x2, y2] -> (N, 4) [cx, cy, w, h]."""
    boxes = np.asarray(boxes, np.float64)
    return np.concatenate([(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]], axis=1)


def states_to_boxes(states: np.ndarray) -> np.ndarray:
    """(N, 8) states -> (N, 4) [x1, y1, x2, y2]."""
    centre, size = states[:, :2], np.maximum(states[:, 2:4], 1.0)
    return np.concatenate([centre - size / 2, centre + size / 2], axis=1)


def _scale(measurements: np.ndarray) -> np.ndarray:
    """(N, 4) the size each coordinate's noise is relative to: w for x and w, h for y and h."""
    w, h = np.maximum(measurements[:, 2], 1.0), np.maximum(measurements[:, 3], 1.0)
    return np.stack([w, h, w, h], axis=1)


def initiate(measurements: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """States (N, 8) and covariances (N, 8, 8) of new tracks at `measurements` (N, 4), not moving."""
    scale = _scale(measurements)
    states = np.concatenate([measurements, np.zeros_like(measurements)], axis=1)
    std = np.concatenate([2 * POSITION_NOISE * scale, 10 * VELOCITY_NOISE * scale], axis=1)
    covariances = np.zeros((len(measurements), 8, 8))
    covariances[:, np.arange(8), np.arange(8)] = std**2
    return states, covariances


def predict(states: np.ndarray, covariances: np.ndarray, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """States and covariances `steps` (N,) frames later (a step may be more than one frame, or zero)."""
    steps = np.asarray(steps, np.float64)
    n = len(states)
    transition = np.tile(np.eye(8), (n, 1, 1))
    transition[:, np.arange(4), np.arange(4) + 4] = steps[:, None]
    scale = _scale(states[:, :4])
    variance = np.concatenate([(POSITION_NOISE * scale) ** 2, (VELOCITY_NOISE * scale) ** 2], axis=1)
    noise = np.zeros((n, 8, 8))
    noise[:, np.arange(8), np.arange(8)] = variance * steps[:, None]
    states = np.einsum("nij,nj->ni", transition, states)
    covariances = transition @ covariances @ transition.transpose(0, 2, 1) + noise
    return states, covariances


def update(states: np.ndarray, covariances: np.ndarray, measurements: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """States and covariances (N, ...) corrected by their measurements (N, 4)."""
    noise = (POSITION_NOISE * _scale(measurements)) ** 2
    innovation_cov = covariances[:, :4, :4].copy()
    innovation_cov[:, np.arange(4), np.arange(4)] += noise
    gain = np.linalg.solve(innovation_cov, covariances[:, :4, :]).transpose(0, 2, 1)  # (N, 8, 4)
    states = states + np.einsum("nij,nj->ni", gain, measurements - states[:, :4])
    covariances = covariances - gain @ covariances[:, :4, :]
    return states, covariances
