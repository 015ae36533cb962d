"""A raw pair product with known errors, built from the sample scene's truth, to measure the
post-processing chain (tests, demo, benchmark).

Error model, in units of the pixel speed ``P`` (one pixel of displacement over the baseline):
spatially correlated noise (``noise`` P per component, like overlapping correlation windows
give), a plane added to vx and to vy (``1.4 × ramp`` P from corner to corner, plus an offset
of a few hundredths of P), and mismatches on about
``outliers`` of the pixels: half isolated random vectors (uniform within ±4 P), half coherent
patches (discs of 1-4 px radius, one wrong vector each, as overlapping templates mismatch
together). SNR: 0.92-1 for good vectors, 0.5-1 for isolated mismatches, 0.8-1 for patches.
"""

import datetime as dt
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..io.dates import Interval, baseline_years


@dataclass
class RawPair:
    """Arrays (m/yr) of a synthetic raw pair and its truth on ``grid``."""

    grid: object
    interval: Interval
    vx: np.ndarray
    vy: np.ndarray
    snr: np.ndarray
    true_vx: np.ndarray
    true_vy: np.ndarray
    ramp_vx: np.ndarray
    ramp_vy: np.ndarray
    pixel_speed: float
    glacier: np.ndarray  # bool, on a glacier
    stable: np.ndarray  # bool, stable ground

    def wrong(self, vx, vy):
        """Pixels where (vx, vy) is valid and more than one pixel speed from the truth."""
        with np.errstate(invalid="ignore"):
            return np.hypot(vx - self.true_vx, vy - self.true_vy) > self.pixel_speed


def make_raw_pair(model, pixel=15.0, interval=None, noise=0.05, ramp=1.0, outliers=0.10, seed=1):
    """A :class:`RawPair` of ``model`` (a SceneModel) at ``pixel`` m over ``interval`` (default a
    32-day July pair in the middle year), errors as described in the module help."""
    rng = np.random.default_rng(seed)
    if interval is None:
        y = model.first_year + model.years // 2
        interval = Interval(dt.date(y, 7, 3), dt.date(y, 8, 4))
    grid = model.grid(pixel)
    p = pixel / baseline_years(interval.start, interval.end)
    tx, ty = model.velocity(grid, interval)
    shape = grid.shape

    def correlated(sigma):
        f = ndimage.gaussian_filter(rng.standard_normal(shape), 1.5)
        return sigma * f / f.std()

    xs, ys = grid.centres()
    xn = (xs[None, :] - xs.mean()) / np.ptp(xs)
    yn = (ys[:, None] - ys.mean()) / np.ptp(ys)
    rx = (ramp * p * (0.8 * xn - 0.6 * yn) + 0.05 * p).astype(np.float32)
    ry = (ramp * p * (0.5 * xn + 0.9 * yn) - 0.03 * p).astype(np.float32)
    vx = tx + rx + correlated(noise * p)
    vy = ty + ry + correlated(noise * p)
    snr = rng.uniform(0.92, 1.0, shape)

    isolated = rng.random(shape) < outliers / 2
    vx[isolated] = tx[isolated] + rng.uniform(-4, 4, isolated.sum()) * p
    vy[isolated] = ty[isolated] + rng.uniform(-4, 4, isolated.sum()) * p
    snr[isolated] = rng.uniform(0.5, 1.0, isolated.sum())

    patches = np.zeros(shape, np.int32)
    target = outliers / 2 * patches.size
    rr, cc = np.mgrid[0:shape[0], 0:shape[1]]
    k = 0
    while np.count_nonzero(patches) < target:
        r0, c0 = rng.integers(0, shape[0]), rng.integers(0, shape[1])
        rad = rng.uniform(1.0, 4.0)
        r_lo, r_hi = max(int(r0 - rad), 0), min(int(r0 + rad) + 1, shape[0])
        c_lo, c_hi = max(int(c0 - rad), 0), min(int(c0 + rad) + 1, shape[1])
        sub = (slice(r_lo, r_hi), slice(c_lo, c_hi))
        disc = (rr[sub] - r0) ** 2 + (cc[sub] - c0) ** 2 <= rad ** 2
        k += 1
        patches[sub][disc] = k
    blob = patches > 0
    wrong_x = rng.uniform(-4, 4, k + 1) * p
    wrong_y = rng.uniform(-4, 4, k + 1) * p
    vx[blob] = tx[blob] + wrong_x[patches[blob]] + correlated(noise * p)[blob]
    vy[blob] = ty[blob] + wrong_y[patches[blob]] + correlated(noise * p)[blob]
    snr[blob] = rng.uniform(0.8, 1.0, blob.sum())
    return RawPair(grid, interval, vx.astype(np.float32), vy.astype(np.float32),
                   snr.astype(np.float32), tx, ty, rx, ry, float(p), model.labels(grid) > 0,
                   model.stable_mask(grid))
