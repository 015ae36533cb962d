"""Per-glacier statistics: velocity series, the glacier trend table with significance classes,
summary shares (overall and by aspect sector), month-resolved trends and the seasonal cycle.

Units: velocities m/yr, trends m/yr per decade, areas km², angles degrees clockwise from north.

A glacier's series is the mean speed over its pixels in each band. Clouds and gaps hide different
parts of a glacier in different months, and its centre flows faster than its margins, so the
plain mean of the visible pixels jumps with the gap pattern. The series therefore uses a ratio
estimator: ``mean_all(m) * sum_visible(v) / sum_visible(m)`` with ``m`` each pixel's mean over
all bands, i.e. the visible pixels scaled to the whole glacier by their usual share of its flow.
A band covering less than ``min_coverage`` of the glacier's pixels is left out (NaN).
"""

import numpy as np

from ..errors import InputError
from ..io.products import StackFile
from ..progress import ensure
from ..io.raster import warp_to_grid
from .seasonal import MONTH_NAMES, monthly_trends, seasonal_cycle
from .terrain import aspect_sector, circular_mean, terrain
from .pixel import (DEFAULT_METHOD, DEFAULT_MIN_MONTHS, DEFAULT_MIN_YEARS, Calendar, annual_means,
                     bh_adjust, check_error_stack, nanmean_count, series_trends,
                     year_month_means)
from ..io.vector import rasterize_ids, rasterize_mask

CLASSES = ("significantly accelerating", "significantly decelerating", "no significant trend")
NOT_COMPUTABLE = "not computable"
ID_FIELDS = ("id", "rgiid", "glims_id", "glac_id", "glacier_id", "fid")
NAME_FIELDS = ("name", "glac_name", "glacier_name")
DEFAULT_MIN_COVERAGE = 0.3


def _field(attrs, candidates):
    lower = {k.lower(): k for k in attrs}
    for c in candidates:
        if c in lower and attrs[lower[c]] not in (None, ""):
            return attrs[lower[c]]
    return None


def glacier_labels(path, grid, min_area=0.0):
    """Rasterise glacier polygons on ``grid`` keeping those of at least ``min_area`` km².

    Returns ``(labels, glaciers)``: labels int32 1..n (0 elsewhere) and, per kept glacier, a dict
    with ``id`` (an id/RGIId-like field, else the feature id), ``name`` (a name field or ''),
    ``area_km2`` (polygon area), ``n_pixels`` and ``attributes`` (all fields).
    """
    labels, feats = rasterize_ids(path, grid)
    keep = [k for k, f in enumerate(feats) if f["area_km2"] >= min_area]
    if not keep:
        raise InputError(f"GLACIERS: no polygon of '{path}' has an area of at least {min_area:g} "
                         f"km² (largest {max(f['area_km2'] for f in feats):.3g} km²): lower "
                         "MIN_AREA.")
    lut = np.zeros(len(feats) + 1, np.int32)
    lut[np.array(keep) + 1] = np.arange(1, len(keep) + 1)
    labels = lut[labels]
    counts = np.bincount(labels.ravel(), minlength=len(keep) + 1)
    glaciers = []
    for new, k in enumerate(keep, start=1):
        f = feats[k]
        gid = _field(f, ID_FIELDS)
        glaciers.append({"id": gid if gid is not None else f["_fid"],
                         "name": str(_field(f, NAME_FIELDS) or ""), "area_km2": f["area_km2"],
                         "n_pixels": int(counts[new]), "attributes": f})
    return labels, glaciers


def region_series(path, labels, n_regions, min_coverage=DEFAULT_MIN_COVERAGE, progress=None):
    """Mean speed per region and band (ratio estimator, see the module doc).

    ``labels``: int raster on the stack's grid (1..n_regions, 0 outside). Returns
    ``(series, coverage)``, both ``(bands, n_regions)``: series m/yr (NaN where the band covers
    less than ``min_coverage`` of the region), coverage the share of the region's pixels valid.
    Windows without any region pixel are not read.
    """
    progress = ensure(progress)
    with StackFile(path) as stack:
        return _region_sums(stack, labels, int(n_regions), min_coverage, progress)


def _region_sums(stack, labels, n, min_coverage, progress, errors=None):
    """:func:`region_series` on an opened stack: sums per region and band, window by window.
    With ``errors`` (the opened error stack) also the series' 1σ ``(bands, n)`` (third item):
    the ratio estimator's, ``√(Σ σ²) / Σ m × m̄``, the pixels' errors taken as independent (NaN
    where a valid pixel has no σ)."""
    info = stack.info
    if labels.shape != info.grid.shape:
        raise InputError(f"The label raster {labels.shape} does not match the stack "
                         f"{info.grid.shape}.")
    n_t = info.count
    sum_v, sum_m, count, sum_e2, no_e = (np.zeros(n_t * n) for _ in range(5))
    tot_m, tot_n, n_pix = (np.zeros(n) for _ in range(3))
    windows = stack.windows()
    for k, (r0, c0, nr, nc) in enumerate(windows):
        lab = labels[r0:r0 + nr, c0:c0 + nc]
        sel = lab > 0
        if sel.any():
            block = stack.read((r0, c0, nr, nc))
            x = block[:, sel].astype(np.float64)  # (bands, pixels)
            idx = lab[sel] - 1
            m = nanmean_count(x, 0)[0]  # each pixel's mean over all bands
            has_m = np.isfinite(m)
            valid = np.isfinite(x) & has_m[None]
            cell = (np.arange(n_t)[:, None] * n + idx[None]).ravel()
            sum_v += np.bincount(cell, np.where(valid, x, 0).ravel(), n_t * n)
            sum_m += np.bincount(cell, np.where(valid, m[None], 0).ravel(), n_t * n)
            count += np.bincount(cell, valid.ravel().astype(float), n_t * n)
            if errors is not None:
                e = errors.read((r0, c0, nr, nc))[:, sel].astype(np.float64)
                has_e = valid & np.isfinite(e)
                sum_e2 += np.bincount(cell, np.where(has_e, e * e, 0).ravel(), n_t * n)
                no_e += np.bincount(cell, (valid & ~has_e).ravel().astype(float), n_t * n)
            tot_m += np.bincount(idx, np.where(has_m, m, 0), n)
            tot_n += np.bincount(idx, has_m.astype(float), n)
            n_pix += np.bincount(idx, minlength=n)
        progress.update((k + 1) / len(windows))
    sum_v, sum_m, count, sum_e2, no_e = (a.reshape(n_t, n)
                                         for a in (sum_v, sum_m, count, sum_e2, no_e))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_m = tot_m / tot_n
        series = np.where(sum_m > 0, sum_v / sum_m * mean_m[None], sum_v / count)
        sigma = np.where(sum_m > 0, np.sqrt(sum_e2) / sum_m * mean_m[None],
                         np.sqrt(sum_e2) / count)
        coverage = count / n_pix[None]
    keep = (coverage >= min_coverage) & (count > 0)
    series = np.where(keep, series, np.nan)
    if errors is None:
        return series, np.nan_to_num(coverage)
    return series, np.nan_to_num(coverage), np.where(keep & (no_e == 0), sigma, np.nan)


def _aspects(glaciers, labels, grid, dem_path):
    """Mean aspect (degrees) per glacier: circular mean of the DEM's aspect over its pixels, or
    an 'aspect' attribute of the polygons when no DEM is given (NaN when neither)."""
    if dem_path:
        dem = warp_to_grid(dem_path, grid, "bilinear")[0]
        _, aspect = terrain(dem, grid.dx, grid.dy)
        return circular_mean(aspect, labels, len(glaciers))
    out = []
    for g in glaciers:
        value = _field(g["attributes"], ("aspect", "aspect_deg", "mean_aspect"))
        out.append(float(value) if value is not None else np.nan)
    return np.array(out, np.float64)


def classify(trend, p, alpha=0.05):
    """'significantly accelerating' / 'significantly decelerating' / 'no significant trend' at
    ``alpha`` ('not computable' where p is NaN)."""
    if not np.isfinite(p):
        return NOT_COMPUTABLE
    if p < alpha and trend > 0:
        return CLASSES[0]
    if p < alpha and trend < 0:
        return CLASSES[1]
    return CLASSES[2]


TREND_COLUMNS = ("id", "name", "area_km2", "n_pixels", "aspect_deg", "aspect_sector", "v_mean",
                 "v_first", "v_last", "year_first", "year_last", "n_years", "coverage", "trend",
                 "ci_low", "ci_high", "p", "q_fdr", "trend_pct", "trend_ols", "trend_sen", "class",
                 "trend_sigma")
SUMMARY_COLUMNS = ("group", "n_glaciers", "n_accelerating", "n_decelerating", "n_no_trend",
                   "share_accelerating_pct", "share_decelerating_pct", "share_no_trend_pct")


def glacier_trends(path, glaciers_path, dem_path=None, min_area=1.0, method=DEFAULT_METHOD,
                   alpha=0.05, min_years=DEFAULT_MIN_YEARS, min_months=DEFAULT_MIN_MONTHS,
                   min_coverage=DEFAULT_MIN_COVERAGE, progress=None, error=None):
    """The glacier trend table and its summary.

    Returns ``(rows, summary, series)``: ``rows`` one dict per glacier of at least ``min_area``
    km² with :data:`TREND_COLUMNS` (v_* m/yr: series level and the first/last counting years'
    annual means; trend, ci_low, ci_high m/yr per decade with the 1 - alpha interval; p of the
    ``method``'s test; q_fdr its Benjamini-Hochberg adjustment over the glaciers; trend_pct the
    trend in % of v_mean per decade; class at ``alpha`` on p); ``summary`` rows of
    :data:`SUMMARY_COLUMNS` for 'all' and the aspect sectors N, E, S, W (shares in % of the
    computable glaciers of the group); ``series`` the ``(bands, glaciers)`` mean-speed series.
    ``error``: the stack's error stack (1σ per band, m/yr): each glacier's series gets its 1σ
    (:func:`_region_sums`), the trends are weighted by it (:mod:`core.trends.pixel`) and
    ``trend_sigma`` (m/yr per decade) is the trend's 1σ from it (NaN without).
    """
    progress = ensure(progress)
    series_error = None
    with StackFile(path) as stack:
        info = stack.info
        labels, glaciers = glacier_labels(glaciers_path, info.grid, min_area)
        part = progress.sub(0.0, 0.9, f"Reading the mean series of {len(glaciers)} glaciers")
        if error:
            check_error_stack(error, info)
            with StackFile(error, "error stack") as err:
                series, coverage, series_error = _region_sums(stack, labels, len(glaciers),
                                                              min_coverage, part, err)
        else:
            series, coverage = _region_sums(stack, labels, len(glaciers), min_coverage, part)
    cal = Calendar(info.intervals)
    res = series_trends(series, info.intervals, method, alpha, min_years, min_months, cal,
                        series_error)
    aspects = _aspects(glaciers, labels, info.grid, dem_path)
    z, _, _ = annual_means(year_month_means(series, cal), cal, min_months)
    q = bh_adjust(res["p"])
    rows = []
    for k, g in enumerate(glaciers):
        years = np.flatnonzero(np.isfinite(z[:, k]))
        first, last = (years[0], years[-1]) if years.size else (None, None)
        v_mean = float(res["mean"][k])
        trend = float(res["trend"][k])
        rows.append({
            "id": g["id"], "name": g["name"], "area_km2": float(g["area_km2"]),
            "n_pixels": g["n_pixels"], "aspect_deg": float(aspects[k]),
            "aspect_sector": aspect_sector(aspects[k]), "v_mean": v_mean,
            "v_first": float(z[first, k]) if first is not None else np.nan,
            "v_last": float(z[last, k]) if last is not None else np.nan,
            "year_first": int(cal.years[first]) if first is not None else None,
            "year_last": int(cal.years[last]) if last is not None else None,
            "n_years": int(res["n_years"][k]), "coverage": float(np.mean(coverage[:, k])),
            "trend": trend, "ci_low": float(res["ci_low"][k]), "ci_high": float(res["ci_high"][k]),
            "p": float(res["p"][k]), "q_fdr": float(q[k]),
            "trend_pct": 100.0 * trend / v_mean if v_mean > 0 else np.nan,
            "trend_ols": float(res["ols"][k]), "trend_sen": float(res["sen"][k]),
            "class": classify(trend, float(res["p"][k]), alpha),
            "trend_sigma": float(res["sigma"][k])})
    progress.update(1.0)
    return rows, class_summary(rows), series


def class_summary(rows):
    """Shares of the classes among computable glaciers: overall and per aspect sector."""
    out = []
    for group in ("all", "N", "E", "S", "W"):
        sel = [r for r in rows if r["class"] != NOT_COMPUTABLE
               and (group == "all" or r["aspect_sector"] == group)]
        counts = [sum(r["class"] == c for r in sel) for c in CLASSES]
        n = len(sel)
        out.append({"group": group, "n_glaciers": n, "n_accelerating": counts[0],
                    "n_decelerating": counts[1], "n_no_trend": counts[2],
                    **{f"share_{key}_pct": (100.0 * c / n if n else np.nan)
                       for key, c in zip(("accelerating", "decelerating", "no_trend"), counts)}})
    return out


def _regions(grid, glaciers_path=None, mask_path=None, min_area=0.0):
    """``(label_sets, regions)`` for per-glacier and/or masked-area tables: a list of
    ``(labels, n)`` rasters (the mask as one region, the glaciers) and the regions' descriptions
    in the same order; the whole raster is one region when no polygons are given."""
    label_sets, regions = [], []
    if mask_path:
        mask = rasterize_mask(mask_path, grid, what="mask polygons")
        if not mask.any():
            raise InputError(f"MASK: '{mask_path}' covers no pixel of the stack.")
        label_sets.append((mask.astype(np.int32), 1))
        regions.append({"id": "mask", "name": "mask"})
    if glaciers_path:
        labels, glaciers = glacier_labels(glaciers_path, grid, min_area)
        label_sets.append((labels, len(glaciers)))
        regions += [{"id": g["id"], "name": g["name"]} for g in glaciers]
    if not regions:
        label_sets.append((np.ones(grid.shape, np.int32), 1))
        regions.append({"id": "all", "name": "all pixels"})
    return label_sets, regions


def _region_series_all(path, grid_regions, progress):
    """``(info, series, regions)``: the stack's header and the series of all regions that
    ``grid_regions(grid)`` returns as ``(label_sets, regions)``, one pass per label raster over
    the stack opened once, columns concatenated."""
    with StackFile(path) as stack:
        label_sets, regions = grid_regions(stack.info.grid)
        parts = []
        for k, (labels, n) in enumerate(label_sets):
            sub = progress.sub(k / len(label_sets), (k + 1) / len(label_sets),
                               f"Reading region set {k + 1} of {len(label_sets)}")
            parts.append(_region_sums(stack, labels, n, DEFAULT_MIN_COVERAGE, sub)[0])
        return stack.info, np.concatenate(parts, axis=1), regions


MONTHLY_COLUMNS = ("id", "name", "month", "month_name", "n_years", "v_mean", "trend", "ci_low",
                   "ci_high", "p", "trend_pct")


def monthly_trend_table(path, glaciers_path=None, mask_path=None, method="ols", alpha=0.05,
                        min_years=DEFAULT_MIN_YEARS, min_area=0.0, progress=None):
    """Month-resolved trends of the mean speed of a masked area and/or of each glacier.

    Without polygons the whole raster is one region. Rows (:data:`MONTHLY_COLUMNS`): one per
    region and calendar month; v_mean m/yr, trend/CI m/yr per decade, trend_pct % of the month's
    mean per decade.
    """
    progress = ensure(progress)
    info, series, regions = _region_series_all(
        path, lambda grid: _regions(grid, glaciers_path, mask_path, min_area), progress)
    res = monthly_trends(series, info.intervals, method, alpha, min_years)
    rows = []
    for k, reg in enumerate(regions):
        for m in range(12):
            mean, trend = float(res["mean"][m, k]), float(res["trend"][m, k])
            rows.append({"id": reg["id"], "name": reg["name"], "month": m + 1,
                         "month_name": MONTH_NAMES[m], "n_years": int(res["n_years"][m, k]),
                         "v_mean": mean, "trend": trend, "ci_low": float(res["ci_low"][m, k]),
                         "ci_high": float(res["ci_high"][m, k]), "p": float(res["p"][m, k]),
                         "trend_pct": 100.0 * trend / mean if mean > 0 else np.nan})
    return rows


SEASONAL_COLUMNS = ("id", "name", "month", "month_name", "n_years", "v_mean", "v_std", "anomaly",
                    "anomaly_pct")


def seasonal_cycle_table(path, glaciers_path=None, mask_path=None, min_area=0.0, progress=None):
    """Seasonal cycle of the mean speed of a masked area and/or of each glacier.

    Rows (:data:`SEASONAL_COLUMNS`): per region and calendar month the mean over the years
    (v_mean, m/yr), its interannual standard deviation (v_std), and the anomaly from the mean
    of the twelve monthly means (m/yr and % of it). Also returns the anomaly series
    ``(bands, regions)`` (m/yr) and the regions: ``(rows, anomalies, regions)``.
    """
    progress = ensure(progress)
    info, series, regions = _region_series_all(
        path, lambda grid: _regions(grid, glaciers_path, mask_path, min_area), progress)
    mean, std, n, anomalies = seasonal_cycle(series, info.intervals)
    level = nanmean_count(mean, 0)[0]
    rows = []
    for k, reg in enumerate(regions):
        for m in range(12):
            anomaly = float(mean[m, k] - level[k])
            rows.append({"id": reg["id"], "name": reg["name"], "month": m + 1,
                         "month_name": MONTH_NAMES[m], "n_years": int(n[m, k]),
                         "v_mean": float(mean[m, k]), "v_std": float(std[m, k]),
                         "anomaly": anomaly,
                         "anomaly_pct": 100.0 * anomaly / level[k] if level[k] > 0 else np.nan})
    return rows, anomalies, regions
