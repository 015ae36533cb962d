"""Destriping: remove stripe artefacts (along-track or cross-track, e.g. from detector or
attitude jitter) using stable ground.

Stripes run along a direction ``angle`` (degrees clockwise from north: 90 = along rows, the
east-west stripes of push-broom jitter; 0 = along columns; anything else for a satellite's
ground track). Pixels are binned by their position across the stripes (one pixel wide bins);
the median of vx and of vy over the stable pixels of each bin is that bin's stripe value, and
is subtracted from every pixel of the bin. Bins with fewer than ``min_pixels`` stable pixels
take the value interpolated between their neighbours; when fewer than ``min_coverage`` of the
bins can be measured there is too little stable ground and :class:`InputError` says so.
Remove ramps first: the profile would otherwise also hold the ramp's component across the
stripes (which is harmless, but mixes the two corrections).
"""

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..progress import ensure
from .ramp import StableSampler, write_corrected
from ..io.raster import iter_tiles

DEFAULT_MIN_PIXELS = 30
DEFAULT_MIN_COVERAGE = 0.5


def _across(grid, angle, x, y):
    """Position across stripes of ``angle`` in pixels, for map coordinates of pixel centres."""
    x0, dx, _, y0, _, dy = grid.transform
    col = (np.asarray(x) - x0) / dx - 0.5
    row = (np.asarray(y) - y0) / dy - 0.5  # dy < 0: rows grow southwards
    a = np.deg2rad(angle)
    return col * np.cos(a) + row * np.sin(a)


def _bin_range(grid, angle):
    """Lowest bin and number of bins covering ``grid`` for stripes of ``angle``."""
    rows, cols = grid.shape
    a = np.deg2rad(angle)
    corners = [c * np.cos(a) + r * np.sin(a) for r in (0, rows - 1) for c in (0, cols - 1)]
    lo, hi = int(np.round(min(corners))), int(np.round(max(corners)))
    return lo, hi - lo + 1


def group_medians(groups, values, n_groups):
    """Median of ``values`` per integer group ``0..n_groups-1`` and the group counts (NaN for
    empty groups), by one sort."""
    order = np.lexsort((values, groups))
    g, v = groups[order], values[order]
    counts = np.bincount(g, minlength=n_groups)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    med = np.full(n_groups, np.nan)
    has = counts > 0
    lo = starts[has] + (counts[has] - 1) // 2
    hi = starts[has] + counts[has] // 2
    med[has] = 0.5 * (v[lo] + v[hi])
    return med, counts


@dataclass
class StripeProfile:
    """Stripe values (m/yr) of one component per bin across stripes of ``angle``."""

    grid: object
    angle: float
    first_bin: int
    values: np.ndarray
    measured: int  # bins measured on stable ground (the rest interpolated)

    def on_grid(self, grid, window=None):
        """The stripe value at every pixel of ``grid`` (or a window of it), float32."""
        g = grid if window is None else grid.subgrid(*window)
        xs, ys = g.centres()
        b = np.round(_across(self.grid, self.angle, xs[None, :], ys[:, None])).astype(np.int64)
        b = np.clip(b - self.first_bin, 0, self.values.size - 1)
        return self.values[b].astype(np.float32)

    def describe(self):
        return (f"stripes along {self.angle:g} deg, {self.values.size} bins ({self.measured} "
                f"measured), amplitude {np.nanstd(self.values):.3f} m/yr (std)")


def fit_stripes(grid, x, y, vx, vy, angle=90.0, min_pixels=DEFAULT_MIN_PIXELS,
                min_coverage=DEFAULT_MIN_COVERAGE):
    """Stripe profiles ``(px, py)`` of vx and vy from stable pixels at map coordinates ``(x, y)``."""
    first, n_bins = _bin_range(grid, angle)
    ok = np.isfinite(vx) & np.isfinite(vy)
    bins = np.round(_across(grid, angle, x[ok], y[ok])).astype(np.int64) - first
    inside = (bins >= 0) & (bins < n_bins)
    bins = bins[inside]
    out = []
    for v in (vx[ok][inside], vy[ok][inside]):
        med, counts = group_medians(bins, np.asarray(v, np.float64), n_bins)
        good = counts >= min_pixels
        if good.sum() < max(min_coverage * n_bins, 2):
            raise InputError(
                f"Too little stable ground to destripe: only {good.sum()} of {n_bins} "
                f"{'rows' if angle % 180 == 90 else 'columns' if angle % 180 == 0 else 'stripes'} "
                f"have at least {min_pixels} valid stable pixels, {100 * min_coverage:.0f} % are "
                "needed. Give larger stable-ground areas, or lower the minimum pixels per stripe.")
        idx = np.arange(n_bins)
        values = np.interp(idx, idx[good], med[good])
        out.append(StripeProfile(grid, float(angle), first, values, int(good.sum())))
    return tuple(out)


def destripe(grid, vx, vy, stable, angle=90.0, min_pixels=DEFAULT_MIN_PIXELS,
             min_coverage=DEFAULT_MIN_COVERAGE):
    """Destripe arrays on ``grid`` with the ``stable`` mask; returns ``(vx, vy, px, py)``."""
    rr, cc = np.nonzero(stable)
    xs, ys = grid.centres()
    px, py = fit_stripes(grid, xs[cc], ys[rr], vx[rr, cc], vy[rr, cc], angle, min_pixels,
                         min_coverage)
    return vx - px.on_grid(grid), vy - py.on_grid(grid), px, py


def destripe_file(source, output, stable, angle=90.0, min_pixels=DEFAULT_MIN_PIXELS,
                  min_coverage=DEFAULT_MIN_COVERAGE, tile=1024, max_samples=8_000_000,
                  progress=None):
    """Destripe a pair (``source``: a PairSource) with the ``stable`` mask (bool, on its grid)
    and write the result as a pair product; returns the profiles ``(px, py)``."""
    progress = ensure(progress)
    sampler = StableSampler(source.grid, stable, max_samples)
    tiles = list(iter_tiles(source.grid.shape, tile))
    for i, (window, _, _) in enumerate(tiles):
        vx, vy, _ = source.read(window)
        sampler.add(vx, vy, window)
        progress.update(0.4 * (i + 1) / len(tiles))
    x, y, vx, vy = sampler.arrays()
    profiles = fit_stripes(source.grid, x, y, vx, vy, angle, max(1, min_pixels // sampler.step),
                           min_coverage)
    write_corrected(source, output, profiles, ("STRIPES_VX", "STRIPES_VY"), tile,
                    progress.sub(0.4, 1.0, "Writing the destriped pair"))
    return profiles
