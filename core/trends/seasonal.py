"""Intra-annual analysis: month-resolved trends and the seasonal cycle (per pixel or per series).

Units: velocities m/yr, trends m/yr per decade. Calendar months are those of each band's middle
date (see :class:`core.trends.pixel.Calendar`); several bands in one month are averaged first.

Month-resolved trend: the series of one calendar month (one value per year, e.g. every July) and
its trend over the years, by OLS with a Student t test or by Theil-Sen with the Mann-Kendall
test. Values of the same month a year apart are nearly independent (AR(1) phi = 0.6 monthly noise
correlates by 0.6^12 = 0.002 after a year), so both tests hold their level without the annual
averaging that :mod:`core.trends.pixel` needs.

Seasonal cycle: the mean of each calendar month over the years (its climatology), the
interannual spread of that month, and anomalies = value - climatology of the band's month.
"""

import numpy as np

from ..cluster import parse_scheduler, run_tasks
from ..errors import InputError
from ..io.products import QUANTITIES, StackFile, StackWriter
from ..progress import ensure
from ..io.raster import RasterWriter, all_or_none
from .pixel import (DECADE, DEFAULT_MIN_YEARS, Calendar, nanmean_count, ols_trend, sen_trend,
                     year_month_means)

MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August",
               "September", "October", "November", "December")
MONTHLY_METHODS = {"ols": "OLS with a Student t test", "sen": "Theil-Sen with the Mann-Kendall test"}


def _check_monthly_options(method, min_years):
    if method not in MONTHLY_METHODS:
        raise InputError(f"METHOD: unknown month-resolved trend method '{method}'; use "
                         f"{' or '.join(MONTHLY_METHODS)}.")
    if int(min_years) < 3:
        raise InputError(f"MIN_YEARS: a trend test needs at least 3 years, not {min_years}.")


def monthly_trends(values, intervals, method="ols", alpha=0.05, min_years=DEFAULT_MIN_YEARS,
                   cal=None):
    """Trend of each calendar month's series over the years, for many series at once.

    ``values``: ``(bands, n)`` m/yr (NaN NoData). Returns a dict of ``(12, n)`` arrays: ``trend``,
    ``ci_low``, ``ci_high`` (m/yr per decade, 1 - alpha interval), ``p`` (two-sided), ``n_years``
    (years with a value that month) and ``mean`` (the month's mean, m/yr); NaN where fewer than
    ``min_years`` years.
    """
    _check_monthly_options(method, min_years)
    values = np.asarray(values)
    cal = cal or Calendar(intervals)
    ym = year_month_means(values.reshape(values.shape[0], -1), cal)
    cell_t = cal.cell_times.reshape(cal.n_years, 12)
    estimator = ols_trend if method == "ols" else sen_trend
    keys = ("trend", "ci_low", "ci_high", "p")
    out = {k: np.full((12, ym.shape[2]), np.nan) for k in keys + ("n_years", "mean")}
    for m in range(12):
        z = ym[:, m, :]
        t = np.where(np.isfinite(z), cell_t[:, m:m + 1], np.nan)
        res = estimator(z, t, alpha)
        ok = res[4] >= int(min_years)
        for k, arr, scale in zip(keys, res[:4], (DECADE, DECADE, DECADE, 1.0)):
            out[k][m] = np.where(ok, arr * scale, np.nan)
        out["n_years"][m] = res[4]
        out["mean"][m] = nanmean_count(z, 0)[0]
    return out


def seasonal_cycle(values, intervals, cal=None):
    """Climatology and anomalies of many series.

    ``values``: ``(bands, n)`` m/yr. Returns ``(mean, std, n_years, anomalies)``: ``mean`` (12, n)
    each calendar month's mean over the years (m/yr), ``std`` (12, n) its interannual standard
    deviation (ddof 1), ``n_years`` (12, n), and ``anomalies`` (bands, n) = value - the mean of
    the band's calendar month (m/yr, NaN where either is missing).
    """
    values = np.asarray(values)
    flat = values.reshape(values.shape[0], -1)
    cal = cal or Calendar(intervals)
    ym = year_month_means(flat, cal)
    mean, n = nanmean_count(ym, 0)
    dev = np.where(np.isfinite(ym), ym - mean[None], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        std = np.where(n > 1, np.sqrt((dev ** 2).sum(0) / np.maximum(n - 1, 1)), np.nan)
    anomalies = flat - mean[cal.month]
    return mean, std, n, anomalies.reshape(values.shape)


def monthly_trend_raster(path, output, method="ols", alpha=0.05, min_years=DEFAULT_MIN_YEARS,
                         p_output=None, progress=None, scheduler=None):
    """12-band rasters of each calendar month's trend (m/yr per decade) and optionally its p-value.

    Band k is month k (January first). Read window by window with all bands (bounded memory).
    ``scheduler``: where the windows are computed (:mod:`core.cluster`; empty = here), one window
    per task; the stack must then be on storage the workers see, the rasters are written here.
    """
    _check_monthly_options(method, min_years)  # before any output file is created
    progress = ensure(progress)
    stack = StackFile(path)
    info = stack.info
    cal = Calendar(info.intervals)
    meta = {"METHOD": method, "ALPHA": alpha, "MIN_YEARS": min_years, "SOURCE": path}
    writers = {"trend": RasterWriter(output, info.grid, 12, [f"{m} trend (m/yr per decade)"
                                                             for m in MONTH_NAMES],
                                     dict(meta, UNITS="m/yr per decade"), inputs=[path])}
    if p_output:
        writers["p"] = RasterWriter(p_output, info.grid, 12, [f"{m} p-value" for m in MONTH_NAMES],
                                    meta, inputs=[path])
    windows = stack.windows()

    def store(k, res):
        r0, c0, nr, nc = windows[k]
        for key, w in writers.items():
            for m in range(12):
                w.write(m + 1, res[key][m].reshape(nr, nc), r0, c0)

    with stack, all_or_none(writers.values()):  # no output of a failed run
        _per_window(stack, path, windows, month_trend_block,
                    (method, alpha, min_years, cal, sorted(writers)), store, scheduler, progress,
                    "monthly-trends")


def month_trend_block(values, method, alpha, min_years, cal, keys):
    """The float32 ``keys`` ('trend', 'p'; 12 x pixels) of :func:`monthly_trends` of a block."""
    res = monthly_trends(values, None, method, alpha, min_years, cal)
    return {k: np.asarray(res[k], np.float32) for k in keys}


def seasonal_cycle_rasters(path, mean_output=None, anomalies_output=None, progress=None,
                           scheduler=None):
    """Per-pixel seasonal cycle: a 12-band raster of monthly means (m/yr, January first) and/or an
    anomaly stack (same bands and intervals as the input, value - its month's mean, m/yr).
    ``scheduler``: as for :func:`monthly_trend_raster`."""
    if not mean_output and not anomalies_output:
        raise InputError("Give at least one output: the monthly means or the anomaly stack.")
    progress = ensure(progress)
    stack = StackFile(path)
    info = stack.info
    cal = Calendar(info.intervals)
    mean_w = anom_w = None
    if mean_output:
        mean_w = RasterWriter(mean_output, info.grid, 12, [f"{m} mean (m/yr)" for m in MONTH_NAMES],
                              {"UNITS": "m/yr", "SOURCE": path}, inputs=[path])
    if anomalies_output:
        anom_w = StackWriter(anomalies_output, info.grid, info.intervals, info.sensor,
                             info.quantity if info.quantity in QUANTITIES else "v",
                             {"ANOMALY": "value minus the mean of its calendar month",
                              "SOURCE": path}, inputs=[path])
    windows = stack.windows()

    def store(k, res):
        r0, c0, nr, nc = windows[k]
        if mean_w is not None:
            for m in range(12):
                mean_w.write(m + 1, res["mean"][m].reshape(nr, nc), r0, c0)
        if anom_w is not None:
            for b in range(info.count):
                anom_w.write(b, res["anomalies"][b].reshape(nr, nc), r0, c0)

    keys = [k for k, w in (("mean", mean_w), ("anomalies", anom_w)) if w is not None]
    with stack, all_or_none((mean_w, anom_w)):  # no output of a failed run
        _per_window(stack, path, windows, seasonal_block, (cal, keys), store, scheduler,
                    progress, "seasonal-cycle")


def seasonal_block(values, cal, keys):
    """The float32 ``keys`` ('mean': 12 x pixels, 'anomalies': bands x pixels) of
    :func:`seasonal_cycle` of a block."""
    mean, _, _, anomalies = seasonal_cycle(values, None, cal)
    res = {"mean": mean, "anomalies": anomalies}
    return {k: np.asarray(res[k], np.float32) for k in keys}


def _per_window(stack, path, windows, fn, args, store, scheduler, progress, key):
    """``store(k, fn(values of window k (bands x pixels), *args))`` for every window, here (the
    open ``stack``) or on a cluster (workers open ``path``), one window per task."""
    source = stack if parse_scheduler(scheduler) is None else path
    run_tasks(stack_block, [(source, win, fn, args) for win in windows], scheduler, progress,
              visible=[path], key=key, on_result=store)


def stack_block(task, progress=None):
    """One window of a per-pixel stack computation: ``task = (stack (an open StackFile or its
    path), window, fn, args)``; returns ``fn(values (bands x pixels), *args)``."""
    source, win, fn, args = task
    stack = source if isinstance(source, StackFile) else StackFile(source)
    values = stack.read(win)
    if progress is not None:
        progress.check()
    return fn(values.reshape(values.shape[0], -1), *args)
