"""Quality metrics of velocity stacks: coverage, smoothness, and agreement with a reference.

- **Coverage** (:func:`coverage`): inside a mask (glacier polygons), the share of valid pixels of
  each band, and per pixel the number of valid bands (months) — the before/after-fusion figures.
- **Smoothness** (:func:`smoothness`): per band, the spatial variance inside the mask (m²/yr², the
  paper's measure; it mixes the real velocity gradient with noise) and a noise measure far less
  sensitive to the real gradient: the variance of the difference to the local NaN-aware median
  (3×3 or 5×5), also given as ``noise_std``, the standard deviation of white noise that would give
  that residual variance, and ``noise_nmad``, its robust counterpart (outliers hardly count).
- **Agreement** (:func:`reference_agreement`): products against a reference stack (e.g. UAV) in
  its footprint, each reference band matched with a product band by date interval
  (:func:`core.io.dates.match_intervals`); products are brought onto the reference grid with
  nearest-neighbour resampling. Per band and pooled: n, bias, RMSE, std, NMAD, E (m/yr); with a
  product's per-pixel 1σ (:class:`core.uncertainty.stable_ground.VelocitySource` finds it), its
  mean and the share of the reference values within ±1.96σ of the product (the calibration
  check: 95 % for a calibrated error when the reference's own error is small).

Inputs are stacks, pair products or plain velocity rasters (:func:`core.uncertainty.stable_ground.as_source`);
the speed is used when present, else the component the file holds. Everything is read band by band
in windows, so memory stays bounded.
"""

import numpy as np

from ..io.dates import match_intervals
from ..errors import InputError
from ..arrays.nanstats import nanmedian0, neighbours
from ..progress import ensure
from ..io.raster import RasterWriter, all_or_none, iter_tiles
from .stable_ground import (ERROR_COLUMNS, STRIP_PIXELS, as_source, band_means, describe,
                           error_check)
from ..io.vector import rasterize_mask

TILE = 512  # tile side for neighbourhood filters (a 5×5 window stack of a tile is ~26 MB)
# For white Gaussian noise of std σ and full windows (Monte Carlo over 4·10⁶ pixels, ±0.002):
# variance of x − local median = c·σ², and NMAD of x − local median = c'·σ.
MEDIAN_RESIDUAL_FACTOR = {3: 0.943, 5: 0.980}
MEDIAN_RESIDUAL_NMAD_FACTOR = {3: 0.863, 5: 0.954}
COVERAGE_COLUMNS = ("product", "band", "interval", "valid_pixels", "mask_pixels", "valid_ratio")
SMOOTHNESS_COLUMNS = ("product", "band", "interval", "n", "mean", "spatial_var", "residual_var",
                      "noise_std", "noise_nmad")
AGREEMENT_COLUMNS = ("product", "ref_band", "ref_interval", "band", "interval", "overlap_days",
                     "n", "bias", "rmse", "std", "nmad", "e") + ERROR_COLUMNS


class _Moments:
    """Count, mean and sum of squared deviations, merged chunk by chunk (Chan et al.)."""

    def __init__(self):
        self.n, self.mean, self.m2 = 0, 0.0, 0.0

    def add(self, x):
        x = np.asarray(x, dtype=np.float64)
        if x.size == 0:
            return
        n, mean = x.size, float(x.mean())
        m2 = float(((x - mean) ** 2).sum())
        delta = mean - self.mean
        total = self.n + n
        self.mean += delta * n / total
        self.m2 += m2 + delta ** 2 * self.n * n / total
        self.n = total

    @property
    def var(self):
        """Population variance (ddof=0), NaN when empty."""
        return self.m2 / self.n if self.n else float("nan")


def _mask(grid, polygons, what="glacier polygons"):
    """Mask of ``grid`` inside ``polygons`` (all True without polygons); error when empty."""
    if polygons is None:
        return np.ones(grid.shape, bool)
    mask = rasterize_mask(polygons, grid, what=what)
    if not mask.any():
        raise InputError(f"The {what} '{polygons}' cover no pixel of the grid.")
    return mask


def _row_strips(grid):
    """Full-width row windows ``(row_off, 0, rows, cols)`` covering ``grid``."""
    height = max(1, STRIP_PIXELS // grid.cols)
    return [(r, 0, min(height, grid.rows - r), grid.cols) for r in range(0, grid.rows, height)]


# ---------------------------------------------------------------------------- coverage

def coverage(sources, glaciers=None, output=None, progress=None):
    """Valid-pixel ratio per band inside ``glaciers`` and valid bands per pixel.

    All sources are assessed on the grid of the first (others resampled, nearest). Rows per source:
    one per band (``valid_pixels`` of ``mask_pixels``, ``valid_ratio`` 0–1) then band 0 for the
    whole stack (valid pixel-bands over mask pixels × bands). With ``output`` a raster is written on
    that grid, one band per source: the number of valid bands of each pixel inside the mask (NaN
    outside). Returns the rows.
    """
    progress = ensure(progress)
    sources = [as_source(s) for s in sources]
    if not sources:
        raise InputError("No velocity stack given.")
    grid = sources[0].grid
    mask = _mask(grid, glaciers)
    mask_pixels = int(mask.sum())
    writer = None
    if output:
        inputs = [p for s in sources for p, _ in s.layers.values()]
        writer = RasterWriter(output, grid, len(sources), [s.name for s in sources],
                              {"QUANTITY": "valid_bands", "UNITS": "count"}, inputs=inputs)
    rows = []
    with all_or_none([writer]):
        strips = _row_strips(grid)
        for k, src in enumerate(sources):
            q = src.main_quantity
            valid = np.zeros(src.steps, np.int64)
            for s, window in enumerate(strips):
                r0, c0, nr, nc = window
                m = mask[r0:r0 + nr, c0:c0 + nc]
                count = np.zeros((nr, nc), np.int32)
                for step in range(src.steps):
                    ok = np.isfinite(src.read(q, step, window, grid))
                    count += ok
                    valid[step] += np.count_nonzero(ok & m)
                if writer is not None:
                    out = count.astype(np.float32)
                    out[~m] = np.nan
                    writer.write(k + 1, out, r0, c0)
                progress.update((k + (s + 1) / len(strips)) / len(sources))
            for step in range(src.steps):
                rows.append(dict(product=src.name, band=step + 1, interval=src.labels[step],
                                 valid_pixels=int(valid[step]), mask_pixels=mask_pixels,
                                 valid_ratio=valid[step] / mask_pixels))
            rows.append(dict(product=src.name, band=0, interval=f"all {src.steps} bands",
                             valid_pixels=int(valid.sum()), mask_pixels=mask_pixels * src.steps,
                             valid_ratio=valid.sum() / (mask_pixels * src.steps)))
    return rows


# ---------------------------------------------------------------------------- smoothness

def nan_median_filter(values, size=3):
    """Local ``size``×``size`` median ignoring NaN, NaN where fewer than half the window is valid
    (so the edge of a gap does not get the median of one or two neighbours)."""
    if size not in MEDIAN_RESIDUAL_FACTOR:
        raise InputError(f"The median window must be 3 or 5 pixels (got {size}).")
    med, n = nanmedian0(neighbours(values, size))
    med[n < (size * size + 1) // 2] = np.nan
    return med


def smoothness(sources, glaciers=None, window=3, progress=None):
    """Spatial variance and median-residual noise of each band inside ``glaciers``.

    Per band: ``n`` valid pixels inside the mask, their ``mean`` (m/yr) and population variance
    ``spatial_var`` (m²/yr²); ``residual_var`` (m²/yr²), the variance of value − local median over
    mask pixels only (pixels outside the mask do not enter the median, so glacier margins do not
    count as noise); ``noise_std`` (m/yr) = √(residual_var / c) and ``noise_nmad`` (m/yr) = NMAD of
    the residuals / c', with c and c' the factors of white noise for that window
    (:data:`MEDIAN_RESIDUAL_FACTOR`, :data:`MEDIAN_RESIDUAL_NMAD_FACTOR`): both equal σ for white
    Gaussian noise; outliers inflate noise_std but hardly noise_nmad; spatially correlated noise
    reads lower in both. Band 0 rows give the mean over bands. Memory: the residuals of one band.
    """
    progress = ensure(progress)
    sources = [as_source(s) for s in sources]
    if not sources:
        raise InputError("No velocity stack given.")
    if window not in MEDIAN_RESIDUAL_FACTOR:
        raise InputError(f"The median window must be 3 or 5 pixels (got {window}).")
    rows = []
    for k, src in enumerate(sources):
        q = src.main_quantity
        mask = _mask(src.grid, glaciers)
        tiles = list(iter_tiles(src.grid.shape, TILE, halo=window // 2))
        part = []
        for step in range(src.steps):
            values, residual, parts = _Moments(), _Moments(), []
            for (r0, c0, nr, nc), _, inner in tiles:
                if not mask[r0:r0 + nr, c0:c0 + nc].any():
                    continue
                arr = src.to_m_per_yr(q, src.read(q, step, (r0, c0, nr, nc))).astype(np.float32)
                arr[~mask[r0:r0 + nr, c0:c0 + nc]] = np.nan
                core = arr[inner]
                values.add(core[np.isfinite(core)])
                res = core - nan_median_filter(arr, window)[inner]
                res = res[np.isfinite(res)]
                residual.add(res)
                parts.append(res)
            part.append(dict(product=src.name, band=step + 1, interval=src.labels[step],
                             n=values.n, mean=values.mean if values.n else float("nan"),
                             spatial_var=values.var, residual_var=residual.var,
                             noise_std=float(np.sqrt(residual.var / MEDIAN_RESIDUAL_FACTOR[window])),
                             noise_nmad=describe(np.concatenate(parts) if parts else np.empty(0))[
                                 "nmad"] / MEDIAN_RESIDUAL_NMAD_FACTOR[window]))
            progress.update((k + (step + 1) / src.steps) / len(sources))
        rows += part + band_means(part, ("product",), ("n",), SMOOTHNESS_COLUMNS[4:])
    return rows


# ---------------------------------------------------------------------------- agreement

def _difference_stats(diff, sigma=None):
    """n, bias (mean), rmse, std, nmad, e of differences product − reference (m/yr), and the
    :func:`error_check` of the product's 1σ ``sigma`` (one per difference, or None)."""
    d = describe(diff)
    rmse = float(np.sqrt(np.mean(np.square(diff)))) if d["n"] else float("nan")
    return dict(n=d["n"], bias=d["mean"], rmse=rmse, std=d["std"], nmad=d["nmad"], e=d["e"],
                **error_check(diff, sigma))


def reference_agreement(sources, reference, min_fraction=0.5, progress=None):
    """Agreement of each source with a ``reference`` stack in its footprint, band by band.

    Each reference band is matched with the source band sharing most days with it (at least
    ``min_fraction`` of the reference interval; :func:`core.io.dates.match_intervals`). The source is
    resampled onto the reference grid (nearest) on the reference's valid pixels; the difference
    source − reference gives ``n, bias, rmse, std, nmad, e`` (m/yr). Unmatched reference bands get
    a row with n = 0; band 0 rows pool every matched band of a source.
    """
    progress = ensure(progress)
    ref = as_source(reference)
    sources = [as_source(s) for s in sources]
    if not sources:
        raise InputError("No velocity product given.")
    if ref.intervals is None:
        raise InputError(f"The reference '{ref.name}' has no date intervals (band descriptions "
                         "START/END or pair START_DATE/END_DATE): bands cannot be matched.")
    q = ref.main_quantity
    tiles = list(iter_tiles(ref.grid.shape, 1024))
    rows = []
    for k, src in enumerate(sources):
        if src.intervals is None:
            raise InputError(f"'{src.name}' has no date intervals: it cannot be matched with the "
                             "reference bands.")
        if q not in src.layers:
            raise InputError(f"The reference holds {q} but '{src.name}' holds "
                             f"{', '.join(src.quantities)}.")
        matches = match_intervals(ref.intervals, src.intervals, min_fraction)
        with_error = src.has_error(q)
        pooled, pooled_sigma = [], []
        for j, i in enumerate(matches):
            row = dict(product=src.name, ref_band=j + 1, ref_interval=ref.labels[j])
            if i < 0:
                rows.append(dict(row, band=0, interval="", overlap_days=0,
                                 **_difference_stats(np.empty(0))))
                continue
            parts, sigmas = [], []
            for window, _, _ in tiles:
                r = ref.read(q, j, window)
                ok = np.isfinite(r)
                if not ok.any():
                    continue
                p = src.read(q, i, window, grid=ref.grid)[ok]
                d = (src.to_m_per_yr(q, p.astype(np.float64))
                     - ref.to_m_per_yr(q, r[ok].astype(np.float64)))
                parts.append(d[np.isfinite(d)])
                if with_error:
                    sigmas.append(src.read_error(q, i, window, ref.grid)[ok][np.isfinite(d)])
            diff = np.concatenate(parts) if parts else np.empty(0)
            sigma = (np.concatenate(sigmas) if sigmas else np.empty(0)) if with_error else None
            pooled.append(diff)
            pooled_sigma.append(sigma)
            rows.append(dict(row, band=i + 1, interval=src.labels[i],
                             overlap_days=ref.intervals[j].overlap_days(src.intervals[i]),
                             **_difference_stats(diff, sigma)))
            progress.update((k + (j + 1) / len(matches)) / len(sources))
        rows.append(dict(product=src.name, ref_band=0, ref_interval="all matched bands", band=0,
                         interval="", overlap_days=0,
                         **_difference_stats(np.concatenate(pooled) if pooled else np.empty(0),
                                             np.concatenate(pooled_sigma)
                                             if with_error and pooled else None)))
    return rows
