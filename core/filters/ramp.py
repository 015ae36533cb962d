"""Ramp removal: a plane (or quadratic surface) fitted robustly to vx and vy on stable ground.

On stable ground the true velocity is zero, so what is measured there is error: a constant
offset (co-registration), a tilt (orbit or attitude errors) and noise and mismatches. The fit
is an M-estimate by iteratively reweighted least squares: Huber weights first (a convex problem,
so the start does not matter), then Tukey's biweight, which gives gross outliers zero weight so
they cannot tilt the surface. The scale is the NMAD of the residuals. Coordinates are centred
and scaled on the grid so the normal equations stay well conditioned.

Large rasters: :func:`remove_ramp_file` reads stable pixels tile by tile (an evenly spread
subsample when there are more than 250,000: plenty for a surface of at most six coefficients),
fits, then subtracts tile by tile.
"""

from dataclasses import dataclass

import numpy as np

from ..arrays.nanstats import nmad
from ..errors import InputError
from .quality import speed_filter
from ..io.products import PairWriter, error_bands, write_errors
from ..progress import ensure
from ..io.raster import iter_tiles

ORDERS = {"plane": 1, "quadratic": 2}
MIN_STABLE = 50  # fewer stable pixels than this cannot constrain a surface


def design(x, y, order):
    """Columns 1, x, y (order 1) and x², xy, y² (order 2) of normalised coordinates."""
    cols = [np.ones_like(x), x, y]
    if order == 2:
        cols += [x * x, x * y, y * y]
    elif order != 1:
        raise InputError(f"The ramp order must be 1 (plane) or 2 (quadratic); {order} given.")
    return np.column_stack(cols)


@dataclass
class Ramp:
    """A fitted surface ``f(x, y)`` in m/yr of one velocity component.

    ``coeffs`` apply to coordinates normalised as ``((x - cx) / scale, (y - cy) / scale)`` in the
    grid's CRS units; ``n`` stable pixels were used; ``sigma`` is the NMAD of their residuals.
    """

    coeffs: np.ndarray
    order: int
    cx: float
    cy: float
    scale: float
    n: int
    sigma: float

    def evaluate(self, x, y):
        xn, yn = np.broadcast_arrays((np.asarray(x, np.float64) - self.cx) / self.scale,
                                     (np.asarray(y, np.float64) - self.cy) / self.scale)
        cols = design(xn.ravel(), yn.ravel(), self.order)
        return (cols @ self.coeffs).reshape(np.shape(xn))

    def on_grid(self, grid, window=None):
        """The surface at the pixel centres of ``grid`` (or of a window of it), float32."""
        g = grid if window is None else grid.subgrid(*window)
        xs, ys = g.centres()
        return self.evaluate(xs[None, :], ys[:, None]).astype(np.float32)

    def to_text(self):
        """The surface as text (order, cx, cy, scale, coefficients) for metadata; see
        :meth:`from_text`."""
        return " ".join(f"{v:.12g}" for v in (self.order, self.cx, self.cy, self.scale,
                                               *self.coeffs))

    @classmethod
    def from_text(cls, text):
        """The surface written by :meth:`to_text` (e.g. a product's RAMP_VX_SURFACE item)."""
        try:
            v = [float(t) for t in str(text).split()]
            order = int(v[0])
            coeffs = np.array(v[4:])
            if coeffs.size != (3 if order == 1 else 6):
                raise ValueError
        except (ValueError, IndexError):
            raise InputError(f"'{text}' is not a ramp surface (order cx cy scale coefficients)."
                             ) from None
        return cls(coeffs, order, v[1], v[2], v[3], 0, float("nan"))

    def describe(self):
        """Offset and gradient (m/yr per km) at the grid centre."""
        km = 1000.0 / self.scale
        return (f"offset {self.coeffs[0]:.3f} m/yr, gradient east {self.coeffs[1] * km:.4f} and "
                f"north {self.coeffs[2] * km:.4f} m/yr per km, residual NMAD {self.sigma:.3f} m/yr, "
                f"{self.n} stable pixels")


def _irls(a, b, weight_fn, coeffs, iterations, tol):
    for _ in range(iterations):
        r = b - a @ coeffs
        s = nmad(r)
        if s <= 0:  # more than half of the residuals are exactly zero: the fit is exact
            s = float(np.mean(np.abs(r))) or 1.0
        w = weight_fn(r / s)
        aw = a * w[:, None]
        new = np.linalg.lstsq(aw.T @ a, aw.T @ b, rcond=None)[0]
        done = np.max(np.abs(new - coeffs)) <= tol * (s + np.max(np.abs(new)))
        coeffs = new
        if done:
            break
    return coeffs


def _huber(u, k=1.345):
    au = np.abs(u)
    return np.where(au <= k, 1.0, k / np.maximum(au, 1e-12))


def _bisquare(u, c=4.685):
    return np.where(np.abs(u) < c, (1.0 - (u / c) ** 2) ** 2, 0.0)


def fit_ramp(x, y, values, order=1, centre=None, scale=None, iterations=50, tol=1e-7):
    """Robustly fit a surface of ``order`` (1 plane, 2 quadratic) to ``values`` at ``(x, y)``.

    ``centre``/``scale`` normalise the coordinates (default: the samples' mid-range and half
    range). NaN values are ignored. Raises :class:`InputError` when fewer than
    :data:`MIN_STABLE` finite values remain.
    """
    x, y, v = (np.asarray(a, np.float64).ravel() for a in (x, y, values))
    ok = np.isfinite(v)
    x, y, v = x[ok], y[ok], v[ok]
    if v.size < MIN_STABLE:
        raise InputError(f"Only {v.size} valid stable-ground pixels: at least {MIN_STABLE} are "
                         "needed to fit a ramp. Give more or larger stable-ground areas.")
    if centre is None:
        centre = (0.5 * (x.min() + x.max()), 0.5 * (y.min() + y.max()))
    if scale is None:
        scale = max(0.5 * (x.max() - x.min()), 0.5 * (y.max() - y.min()), 1.0)
    a = design((x - centre[0]) / scale, (y - centre[1]) / scale, order)
    if np.linalg.matrix_rank(a) < a.shape[1]:
        raise InputError("The stable-ground pixels lie on a line or a point: they cannot "
                         f"constrain a {'plane' if order == 1 else 'quadratic surface'}.")
    start = np.zeros(a.shape[1])
    start[0] = np.median(v)
    coeffs = _irls(a, v, _huber, start, iterations, tol)
    coeffs = _irls(a, v, _bisquare, coeffs, iterations, tol)
    sigma = nmad(v - a @ coeffs)
    return Ramp(coeffs, order, float(centre[0]), float(centre[1]), float(scale), int(v.size),
                sigma)


def grid_frame(grid):
    """Centre and half-size of a grid (the coordinate normalisation of its ramps)."""
    x0, y0, x1, y1 = grid.bounds
    return (0.5 * (x0 + x1), 0.5 * (y0 + y1)), max(0.5 * (x1 - x0), 0.5 * (y1 - y0))


def fit_components(grid, vx, vy, stable, order=1):
    """Ramps of vx and vy (2-D arrays on ``grid``, m/yr) fitted on the ``stable`` mask."""
    if stable.shape != grid.shape:
        raise InputError(f"The stable-ground mask {stable.shape} and the grid {grid.shape} differ.")
    xs, ys = grid.centres()
    rr, cc = np.nonzero(stable)
    centre, scale = grid_frame(grid)
    return tuple(fit_ramp(xs[cc], ys[rr], a[rr, cc], order, centre, scale) for a in (vx, vy))


class StableSampler:
    """Collects ``(x, y, vx, vy)`` of valid stable pixels tile by tile, for one fit.

    With more than ``max_samples`` stable pixels, one in ``step`` is kept, chosen by a hash of
    (row, col): deterministic, independent of the tiling, and without the aliasing of a regular
    lattice (which would leave whole rows or diagonals unsampled for the stripe profiles).
    """

    def __init__(self, grid, stable, max_samples=250_000):
        if stable.shape != grid.shape:
            raise InputError(f"The stable-ground mask {stable.shape} is not on the pair's grid "
                             f"{grid.shape}.")
        self.grid, self.stable = grid, stable
        n = int(np.count_nonzero(stable))
        self.step = max(1, int(np.ceil(n / max_samples))) if n else 1
        self.parts = []

    def add(self, vx, vy, window):
        r0, c0, nr, nc = window
        take = self.stable[r0:r0 + nr, c0:c0 + nc] & np.isfinite(vx) & np.isfinite(vy)
        if self.step > 1:
            r = np.arange(r0, r0 + nr, dtype=np.int64)[:, None]
            c = np.arange(c0, c0 + nc, dtype=np.int64)[None, :]
            take &= ((r * 73856093) ^ (c * 19349663)) % self.step == 0
        rr, cc = np.nonzero(take)
        xs, ys = self.grid.subgrid(*window).centres()
        self.parts.append((xs[cc], ys[rr], vx[rr, cc], vy[rr, cc]))

    def arrays(self):
        """The collected ``(x, y, vx, vy)`` as 1-D arrays."""
        if not self.parts:
            raise InputError("No stable-ground pixels were collected: the stable ground does not "
                             "overlap the velocity field.")
        return tuple(np.concatenate(p) for p in zip(*self.parts))

    def fit(self, order=1):
        """The ramps ``(rx, ry)`` of the collected samples."""
        x, y, vx, vy = self.arrays()
        centre, scale = grid_frame(self.grid)
        return (fit_ramp(x, y, vx, order, centre, scale), fit_ramp(x, y, vy, order, centre, scale))


def write_corrected(source, output, corrections, keys=("RAMP_VX", "RAMP_VY"), tile=1024,
                    progress=None):
    """Write ``source`` (a PairSource) minus ``corrections`` ``(cx, cy)`` as a pair product.

    Each correction has ``on_grid(grid, window)`` (m/yr) and ``describe()``, written into the
    metadata items ``keys``; the input's other metadata is kept.
    """
    progress = ensure(progress)
    meta = source.carried_metadata()
    for key, c in zip(keys, corrections):
        meta[key] = c.describe()
        if isinstance(c, Ramp):
            meta[key + "_SURFACE"] = c.to_text()
    cx, cy = corrections
    tiles = list(iter_tiles(source.grid.shape, tile))
    extra = error_bands(source)
    with PairWriter(output, source.grid, source.start, source.end, source.sensor, meta,
                    inputs=source.inputs(), extra_bands=extra) as w:
        for i, (window, _, _) in enumerate(tiles):
            vx, vy, snr = source.read(window)
            w.write(vx - cx.on_grid(source.grid, window), vy - cy.on_grid(source.grid, window), snr,
                    window[0], window[1])
            # a correction is a smooth surface fitted on many pixels: the vectors keep their errors
            write_errors(w, source.read_errors(window) if extra else None, window[0], window[1])
            progress.update((i + 1) / len(tiles))


def fit_file_ramps(source, stable, order=1, max_speed=None, tile=1024, progress=None):
    """Robust ramps ``(rx, ry)`` of a pair (a :class:`core.io.pairsource.PairSource`) fitted on the
    ``stable`` mask (bool, on the pair's grid), tile by tile; vectors faster than ``max_speed``
    (m/yr, optional) are left out before the fit."""
    progress = ensure(progress)
    sampler = StableSampler(source.grid, stable)
    tiles = list(iter_tiles(source.grid.shape, tile))
    for i, (window, _, _) in enumerate(tiles):
        vx, vy, _ = source.read(window, snr=False)
        if max_speed is not None:
            vx, vy, _ = speed_filter(vx, vy, max_speed)
        sampler.add(vx, vy, window)
        progress.update((i + 1) / len(tiles))
    return sampler.fit(order)


def remove_ramp_file(source, output, stable, order=1, tile=1024, progress=None):
    """Fit ramps of a pair (a :class:`core.io.pairsource.PairSource`) on the ``stable`` mask (bool,
    on the pair's grid) and write the corrected pair product to ``output``; returns the ramps."""
    progress = ensure(progress)
    ramps = fit_file_ramps(source, stable, order, tile=tile,
                           progress=progress.sub(0.0, 0.4, "Reading stable ground, fitting the ramps"))
    write_corrected(source, output, ramps, tile=tile,
                    progress=progress.sub(0.4, 1.0, "Writing the corrected pair"))
    return ramps
