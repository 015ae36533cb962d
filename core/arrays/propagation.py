"""Propagation of independent 1σ errors through the plugin's derived quantities."""

import numpy as np


def speed_error(vx, vy, ex, ey):
    """1σ of the speed ``hypot(vx, vy)`` from the components' 1σ ``ex``, ``ey`` (m/yr): their
    projection on the flow direction, ``√((vx ex)² + (vy ey)²) / v``; ``√((ex² + ey²) / 2)`` where
    the speed is 0."""
    v = np.hypot(vx, vy)
    with np.errstate(invalid="ignore", divide="ignore"):
        along = np.sqrt((vx * ex) ** 2 + (vy * ey) ** 2) / v
    return np.where(v > 0, along, np.sqrt(0.5 * (ex ** 2 + ey ** 2))).astype(np.float32)
