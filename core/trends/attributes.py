"""Glacier attributes (area, slope and aspect from a DEM, velocity) and their correlations.

Conventions (see :mod:`core.trends.terrain`): slope degrees, aspect the downhill bearing in degrees
clockwise from north, northness = cos(aspect), eastness = sin(aspect) (aspect is circular, so it
enters correlations through these two components). Velocities m/yr, areas km².

Correlations over glaciers: Pearson r with its two-sided p (null: no correlation; t test with
n - 2 degrees of freedom) and Spearman's rank correlation as a companion robust to outliers and
to monotonic non-linear relations. The partial correlation of velocity with aspect controlling for
log area and slope correlates the residuals of both after a least-squares fit on the controls;
its p uses n - 2 - (number of controls) degrees of freedom. The within-glacier relation of
velocity and slope is computed over the pixels of one glacier: neighbouring pixels are not
independent, so its p-value is optimistic (a note says so in the table).
"""

import itertools

import numpy as np
from scipy import stats

from ..errors import InputError
from .glaciers import glacier_labels
from ..io.products import to_m_per_yr
from ..progress import ensure
from ..io.raster import iter_tiles, open_raster, raster_grid, read_bands, warp_to_grid
from .terrain import aspect_sector, circular_mean, terrain
from .pixel import nanmean_count


def mean_velocity(path, grid=None, progress=None):
    """A velocity raster (m/yr) on its grid: one band as is, several bands (a stack) averaged per
    pixel over its valid bands, tile by tile. Converted from the file's UNITS metadata."""
    progress = ensure(progress)
    ds = open_raster(path, "velocity raster")
    grid = grid or raster_grid(path, "velocity raster")
    units = (ds.GetMetadata() or {}).get("UNITS", "m/yr")
    out = np.full(grid.shape, np.nan, np.float32)
    tiles = list(iter_tiles(grid.shape, 512))
    for k, (_, (r0, c0, nr, nc), _) in enumerate(tiles):
        out[r0:r0 + nr, c0:c0 + nc] = nanmean_count(read_bands(ds, None, (r0, c0, nr, nc)), 0)[0]
        progress.update((k + 1) / len(tiles))
    return to_m_per_yr(out, units).astype(np.float32, copy=False)


ATTRIBUTE_COLUMNS = ("id", "name", "area_km2", "log10_area", "n_pixels", "elevation_mean",
                     "slope_mean", "aspect_deg", "aspect_sector", "northness", "eastness",
                     "v_mean", "v_max")


def glacier_attributes(velocity_path, dem_path, glaciers_path, min_area=1.0, progress=None):
    """Per-glacier terrain and velocity attributes on the velocity raster's grid.

    Returns ``(rows, pixels)``: ``rows`` dicts of :data:`ATTRIBUTE_COLUMNS` (elevation m, slope
    and aspect degrees, v m/yr: mean and maximum over the glacier's valid pixels); ``pixels`` a
    dict of the grid arrays ``labels``, ``velocity``, ``slope``, ``aspect`` for pixel-level
    analyses. The DEM is resampled (bilinear) onto the velocity grid first.
    """
    progress = ensure(progress)
    grid = raster_grid(velocity_path, "velocity raster")
    velocity = mean_velocity(velocity_path, grid,
                             progress.sub(0.0, 0.7, "Reading the velocity stack (mean per pixel)"))
    dem = warp_to_grid(dem_path, grid, "bilinear")[0]
    if not np.isfinite(dem).any():
        raise InputError(f"DEM: '{dem_path}' does not cover the velocity raster.")
    slope, aspect = terrain(dem, grid.dx, grid.dy)
    labels, glaciers = glacier_labels(glaciers_path, grid, min_area)
    n = len(glaciers)

    def per_glacier(values, reducer="mean"):
        ok = np.isfinite(values) & (labels > 0)
        idx = labels[ok] - 1
        cnt = np.bincount(idx, minlength=n)
        if reducer == "max":
            out = np.full(n, -np.inf)
            np.maximum.at(out, idx, values[ok])
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                out = np.bincount(idx, values[ok], n) / cnt
        return np.where(cnt > 0, out, np.nan)

    v_mean, v_max = per_glacier(velocity), per_glacier(velocity, "max")
    z_mean, s_mean = per_glacier(dem), per_glacier(slope)
    a_mean = circular_mean(aspect, labels, n)
    rows = []
    for k, g in enumerate(glaciers):
        rad = np.radians(a_mean[k])
        rows.append({"id": g["id"], "name": g["name"], "area_km2": float(g["area_km2"]),
                     "log10_area": float(np.log10(g["area_km2"])) if g["area_km2"] > 0 else np.nan,
                     "n_pixels": g["n_pixels"], "elevation_mean": float(z_mean[k]),
                     "slope_mean": float(s_mean[k]), "aspect_deg": float(a_mean[k]),
                     "aspect_sector": aspect_sector(a_mean[k]), "northness": float(np.cos(rad)),
                     "eastness": float(np.sin(rad)), "v_mean": float(v_mean[k]),
                     "v_max": float(v_max[k])})
    progress.update(1.0)
    return rows, {"labels": labels, "velocity": velocity, "slope": slope, "aspect": aspect}


# ---------------------------------------------------------------------------- correlations

def _finite_pairs(*columns):
    arr = np.column_stack([np.asarray(c, np.float64) for c in columns])
    return arr[np.all(np.isfinite(arr), axis=1)]


def _r_p(x, y, df):
    """Pearson r of two vectors and its two-sided p with ``df`` degrees of freedom."""
    if df < 1 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return np.nan, np.nan
    r = float(np.clip(np.corrcoef(x, y)[0, 1], -1.0, 1.0))
    if abs(r) == 1.0:
        return r, 0.0
    t = r * np.sqrt(df / (1.0 - r * r))
    return r, float(2.0 * stats.t.sf(abs(t), df))


def _exact_rank_p(x, y):
    """Two-sided permutation p of the correlation of ranks ``x``, ``y`` over all n! orders."""
    perms = np.array(list(itertools.permutations(range(len(y)))))
    yp = y[perms] - y.mean()
    xc = x - x.mean()
    r = yp @ xc / np.sqrt((yp ** 2).sum(1) * (xc ** 2).sum())
    r_obs = xc @ (y - y.mean()) / np.sqrt(((y - y.mean()) ** 2).sum() * (xc ** 2).sum())
    return float(np.mean(np.abs(r) >= abs(r_obs) - 1e-12))


def _residuals(v, controls):
    design = np.column_stack([np.ones(len(v))] + list(controls))
    coef, *_ = np.linalg.lstsq(design, v, rcond=None)
    return v - design @ coef


def correlation(y, x, controls=()):
    """Pearson r, p and Spearman rho, p of ``y`` with ``x`` (partial on ``controls`` if any).

    Spearman's p is exact (all permutations) up to :data:`EXACT_MAX_N` rows without controls.
    Returns a dict with n, pearson_r, pearson_p, spearman_rho, spearman_p; NaN when there are too
    few finite rows (n - 2 - len(controls) < 1) or a variable is constant.
    """
    data = _finite_pairs(y, x, *controls)
    n, k = len(data), len(controls)
    out = {"n": n, "pearson_r": np.nan, "pearson_p": np.nan, "spearman_rho": np.nan,
           "spearman_p": np.nan}
    df = n - 2 - k
    if df < 1:
        return out
    for prefix, d in (("pearson", data), ("spearman", np.apply_along_axis(stats.rankdata, 0, data))):
        yy, xx = d[:, 0], d[:, 1]
        if k:
            ctrl = [d[:, 2 + j] for j in range(k)]
            yy, xx = _residuals(yy, ctrl), _residuals(xx, ctrl)
        r, p = _r_p(xx, yy, df)
        if prefix == "spearman" and not k and n <= EXACT_MAX_N and np.isfinite(r):
            p = _exact_rank_p(xx, yy)  # the t approximation is poor for a handful of ranks
        out[f"{prefix}_{'r' if prefix == 'pearson' else 'rho'}"] = r
        out[f"{prefix}_p"] = p
    return out


EXACT_MAX_N = 8
CORRELATION_COLUMNS = ("scope", "y", "x", "controls", "n", "pearson_r", "pearson_p",
                       "spearman_rho", "spearman_p", "note")
PREDICTORS = ("log10_area", "slope_mean", "northness", "eastness")


def attribute_correlations(rows, responses=("v_mean", "v_max")):
    """Correlation table over glaciers (rows of :func:`glacier_attributes`).

    For each response: Pearson/Spearman against log10 area, mean slope, northness and eastness,
    then the partial correlations with northness and eastness controlling for log10 area and
    slope. Rows of :data:`CORRELATION_COLUMNS`.
    """
    table = []
    col = {key: np.array([r[key] for r in rows], np.float64)
           for key in responses + PREDICTORS}
    for yk in responses:
        for xk in PREDICTORS:
            table.append(dict(scope="glaciers", y=yk, x=xk, controls="", note="",
                              **correlation(col[yk], col[xk])))
        for xk in ("northness", "eastness"):
            res = correlation(col[yk], col[xk], (col["log10_area"], col["slope_mean"]))
            table.append(dict(scope="glaciers", y=yk, x=xk, controls="log10_area, slope_mean",
                              note="" if res["n"] > 4 else "needs at least 5 glaciers", **res))
    return table


def within_glacier(pixels, label, name=""):
    """Velocity against slope over the pixels of glacier ``label`` (1-based): a correlation row,
    plus the least-squares slope ``v_per_degree`` (m/yr per degree of slope)."""
    sel = pixels["labels"] == label
    if not sel.any():
        raise InputError(f"GLACIER_ID: glacier {label} has no pixel on the velocity grid.")
    v, s = pixels["velocity"][sel], pixels["slope"][sel]
    res = correlation(v, s)
    data = _finite_pairs(v, s)
    fit = np.nan
    if len(data) > 2 and np.ptp(data[:, 1]) > 0:
        fit = float(np.polyfit(data[:, 1], data[:, 0], 1)[0])
    note = ("pixels are spatially correlated: p is optimistic" if np.isfinite(res["pearson_r"])
            else "slope or velocity constant over the glacier")
    row = dict(scope=f"pixels of {name or label}", y="v", x="slope", controls="", note=note, **res)
    return row, fit
