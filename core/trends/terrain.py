"""Slope and aspect from a DEM, circular means and aspect sectors.

Slope is in degrees from horizontal; aspect is the compass bearing of the downhill direction,
degrees clockwise from north (a glacier flowing east has aspect 90°). Aspect is circular: 359°
and 1° are neighbours, so means are circular means of unit vectors.
"""

import numpy as np

from ..errors import InputError

SECTORS = ("N", "E", "S", "W")


def terrain(dem, dx, dy):
    """``(slope_deg, aspect_deg)`` of a DEM (m) on a north-up grid of pixel size ``dx``, ``dy`` (m).

    Central differences (``np.gradient``); rows run south, so the northward gradient is minus the
    row gradient. Aspect is the downhill bearing, clockwise from north; NaN on flat pixels.
    """
    z = np.asarray(dem, np.float64)
    if z.ndim != 2 or min(z.shape) < 2:
        raise InputError("DEM: a 2-D elevation raster of at least 2 x 2 pixels is needed.")
    d_row, d_east = np.gradient(z, abs(dy), abs(dx))
    d_north = -d_row
    grad = np.hypot(d_east, d_north)
    slope = np.degrees(np.arctan(grad))
    aspect = np.degrees(np.arctan2(-d_east, -d_north)) % 360.0
    return slope, np.where(grad > 0, aspect, np.nan)


def circular_mean(angles_deg, labels, n):
    """Circular mean (degrees, 0-360) of ``angles_deg`` over the pixels of each label 1..n.

    NaN angles are skipped; NaN for labels without angles or whose unit vectors cancel.
    """
    ok = np.isfinite(angles_deg) & (labels > 0)
    idx = labels[ok] - 1
    rad = np.radians(angles_deg[ok])
    s = np.bincount(idx, np.sin(rad), n)
    c = np.bincount(idx, np.cos(rad), n)
    mean = np.degrees(np.arctan2(s, c)) % 360.0
    return np.where(np.hypot(s, c) > 1e-9 * np.maximum(np.bincount(idx, minlength=n), 1),
                    mean, np.nan)


def aspect_sector(deg):
    """'N' (315-45°), 'E' (45-135°), 'S' (135-225°), 'W' (225-315°); '' for NaN."""
    if deg is None or not np.isfinite(deg):
        return ""
    return SECTORS[int(((deg + 45.0) % 360.0) // 90.0)]
