"""Synthetic pair products of three sensors with irregular, overlapping baselines over a glacier
whose velocity is known every day: the test and benchmark case of the temporal inversion.

Truth: on a grid in UTM 45N, a glacier tongue whose speed (m/yr) is ``base(x, y) · f(t)``, flowing
along a fixed bearing per pixel; ``f`` is a seasonal cycle (±30 %, peak in July) plus a two-week
spring speed-up (+60 %, 10-24 May). A pair from day ``s`` to day ``e`` measures exactly the mean
velocity over the days ``s .. e - 1`` (its displacement over its baseline), plus white noise of
``noise_px`` sensor pixels of displacement divided by the baseline, a share of gross outliers
(uniform ±``OUTLIER_SPEED`` m/yr) and, for the optical sensors, cloud gaps.

Sensors (acquisitions every revisit, some lost to clouds; baselines drawn from the allowed
ones): Landsat 16-96 days (15 m pixel), Sentinel-2 10-60 days (10 m), Sentinel-1 12-48 days
(10 m, no clouds, noisier). Every pair is written on the same 30 m grid.
"""

import datetime as dt
import os
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..io.dates import DAYS_PER_YEAR
from ..io.grid import Grid
from ..io.products import write_pair_product

EPSG = 32645
ORIGIN = (420000.0, 3330000.0)
PIXEL = 30.0
OUTLIER_SPEED = 600.0


@dataclass(frozen=True)
class SensorPlan:
    """How one sensor acquires: revisit (days), allowed baselines (days), displacement noise
    (sensor pixels, 1σ per component), pixel (m), share of lost acquisitions and cloud cover."""

    revisit: int
    baselines: tuple
    noise_px: float
    pixel: float
    lost: float
    cloud: float
    outliers: float

    def displacement_error(self):
        """1σ displacement noise per component (m)."""
        return self.noise_px * self.pixel


PLANS = {
    "landsat": SensorPlan(16, (16, 32, 48, 64, 80, 96), 0.1, 15.0, 0.3, 0.2, 0.02),
    "sentinel2": SensorPlan(5, (10, 20, 30, 40, 50, 60), 0.1, 10.0, 0.4, 0.2, 0.02),
    "sentinel1": SensorPlan(12, (12, 24, 36, 48), 0.2, 10.0, 0.0, 0.0, 0.01),
}


def speed_factor(days):
    """``f(t)`` of the truth for date ordinals ``days``: 1 + seasonal cycle + spring speed-up."""
    days = np.asarray(days)
    dates = [dt.date.fromordinal(int(d)) for d in np.atleast_1d(days)]
    doy = np.array([d.timetuple().tm_yday for d in dates], np.float64)
    seasonal = 0.3 * np.sin(2 * np.pi * (doy - 196 + 91.3) / DAYS_PER_YEAR)
    spring = np.array([0.6 if dt.date(d.year, 5, 10) <= d <= dt.date(d.year, 5, 23) else 0.0
                       for d in dates])
    return (1.0 + seasonal + spring).reshape(days.shape)


@dataclass
class PairSeries:
    """The synthetic case: grid, truth fields and the list of pairs (sensor, start, end)."""

    grid: Grid
    base: np.ndarray  # mean speed (m/yr)
    east: np.ndarray  # unit flow vector: vx = v east, vy = v north
    north: np.ndarray
    pairs: list  # (sensor, start date, end date)
    seed: int = 0

    def truth(self, start, end):
        """True mean ``(vx, vy)`` (m/yr) over the days ``start .. end - 1`` (dates)."""
        f = float(np.mean(speed_factor(np.arange(start.toordinal(), end.toordinal()))))
        return self.base * f * self.east, self.base * f * self.north

    def interval_truth(self, interval):
        """True mean ``(vx, vy)`` over a band :class:`Interval` (inclusive last day)."""
        return self.truth(interval.start, interval.end + dt.timedelta(days=1))

    def displacement_errors(self):
        """``{sensor: 1σ displacement noise (m)}``, what a stable-ground analysis would find."""
        return {s: p.displacement_error() for s, p in PLANS.items()}

    def write(self, folder, bad_pixel=None):
        """Write every pair product into ``folder``; return their paths. ``bad_pixel`` (row,
        col) gets gross outliers in every pair."""
        os.makedirs(folder, exist_ok=True)
        rng = np.random.default_rng(self.seed + 1)
        shape = self.grid.shape
        paths = []
        for k, (sensor, start, end) in enumerate(self.pairs):
            plan = PLANS[sensor]
            vx, vy = self.truth(start, end)
            sigma = plan.displacement_error() / ((end - start).days / DAYS_PER_YEAR)
            vx = vx + rng.normal(0.0, sigma, shape)
            vy = vy + rng.normal(0.0, sigma, shape)
            bad = rng.random(shape) < plan.outliers
            if bad_pixel is not None:
                bad[bad_pixel] = True
            vx[bad] = rng.uniform(-OUTLIER_SPEED, OUTLIER_SPEED, int(bad.sum()))
            vy[bad] = rng.uniform(-OUTLIER_SPEED, OUTLIER_SPEED, int(bad.sum()))
            if plan.cloud:
                field = ndimage.gaussian_filter(rng.standard_normal(shape), 3.0, mode="wrap")
                cloudy = field > np.quantile(field, 1.0 - rng.uniform(0, 2 * plan.cloud))
                vx[cloudy] = np.nan
                vy[cloudy] = np.nan
            name = f"{sensor}_{start:%Y%m%d}_{end:%Y%m%d}_{k:04d}.tif"
            path = os.path.join(folder, name)
            write_pair_product(path, self.grid, vx, vy, np.ones(shape, np.float32), start, end,
                               sensor)
            paths.append(path)
        return paths


def pair_series(size=24, first=dt.date(2019, 1, 1), years=2, n_pairs=240, seed=0):
    """A :class:`PairSeries` of ``size`` × ``size`` pixels and about ``n_pairs`` pairs split
    evenly among the three sensors over ``years`` years from ``first``."""
    rng = np.random.default_rng(seed)
    grid = Grid.from_bounds(ORIGIN[0], ORIGIN[1], PIXEL, size, size, EPSG)
    yy, xx = (np.mgrid[0:size, 0:size] + 0.5) / size
    base = 40.0 + 260.0 * np.exp(-((xx - 0.5) ** 2 / 0.15 + (yy - 0.5) ** 2 / 0.03))
    bearing = np.deg2rad(200.0 + 40.0 * (xx - 0.5))  # clockwise from north
    last = dt.date(first.year + years, first.month, first.day)
    span = (last - first).days
    pairs = []
    for sensor, plan in PLANS.items():
        offset = int(rng.integers(0, plan.revisit))
        acq = [d for d in range(offset, span, plan.revisit) if rng.random() >= plan.lost]
        acq_set = set(acq)
        candidates = [(a, a + b) for a in acq for b in plan.baselines
                      if a + b in acq_set and a + b < span]
        take = min(len(candidates), n_pairs // 3)
        for i in sorted(rng.choice(len(candidates), take, replace=False)):
            a, e = candidates[i]
            pairs.append((sensor, first + dt.timedelta(days=a), first + dt.timedelta(days=e)))
    pairs.sort(key=lambda p: (p[1], p[2], p[0]))
    return PairSeries(grid, base.astype(np.float32), np.sin(bearing).astype(np.float32),
                      np.cos(bearing).astype(np.float32), pairs, seed)
