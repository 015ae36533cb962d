"""Monthly velocity stacks (v, vx, vy) from many pair products of one sensor, on a reference grid.

Assignment: each pair goes to the calendar month that shares the most of its days (inclusive
ends), provided that is at least ``min_fraction`` of the pair's days; ties go to the month whose
middle is nearest the pair's (:func:`core.io.dates.match_intervals`). Pairs that fit no month
(long baselines across months) are left out and reported.

Combination per pixel, over the pairs of a month (resampled by nearest neighbour onto the grid):
``median`` of vx and of vy (robust to a mismatched pair), or ``weighted`` mean with weights
``baseline_days² × snr`` (a velocity's error shrinks with the baseline; pixels without SNR weigh
by the baseline alone). The speed is the magnitude of the combined vx and vy (averaging speeds
would be biased upwards by noise). Every month from the first to the last assigned one is a band
(all NaN when empty); band metadata ``PAIRS`` lists the file names that went in, ``N_PAIRS``
their number.

Errors: when the pairs state per-vector errors (bands ``vx_error``/``vy_error``, see
:class:`core.io.pairsource.PairSource`), the weighted mean weighs each component by ``1/σ²``
instead (where every pair of the pixel has its σ), and each monthly value gets its 1σ, propagated
from the pairs' σ as independent errors: ``√(Σ w² σ²) / Σ w`` for the weighted mean (``1/√(Σ
1/σ²)`` with inverse-variance weights); for the median of ``n ≥ 3`` pairs, its large-sample
error ``√(π n / 2) / Σ (1/σ)`` (1 / (2 √n f(median)), ``f`` the density of the pairs' values
at the median; √(π/2) σ/√n for equal σ), and for one or two pairs (the median is their mean)
``√(Σ σ²) / n``. The speed's σ is the components' projected on the flow direction,
``√((vx σx)² + (vy σy)²) / v`` (``√((σx² + σy²) / 2)`` where v = 0). A pixel where a contributing
pair has no σ has none. Error stacks (outputs ``error``, ``vx_error``, ``vy_error``) have the bands
of their velocity stack, metadata ``ERROR_OF`` (the velocity stack) and ``ERROR`` = 1 sigma, m/yr;
each velocity stack names its error stack in ``ERROR_STACK`` (the convention of the inversion,
which the dock follows).

Masks: ``mask(source, grid)`` (optional) gives each pair's pixels to drop on the grid (bool, True
= drop; e.g. the SAR layover/shadow its correlation windows saw, :mod:`core.filters.terrain`),
applied before the combination.
"""

import os
from contextlib import ExitStack

import numpy as np

from ..io.dates import match_intervals, monthly_intervals
from ..errors import InputError
from ..arrays.nanstats import nanmedian0
from ..arrays.propagation import speed_error
from ..io.pairsource import PairSource
from ..io.pixel_series import error_links
from ..io.products import StackWriter
from ..progress import ensure
from ..io.raster import iter_tiles

COMBINE = ("median", "weighted")


def assign_pairs(sources, min_fraction=0.5):
    """``(months, members, left_out)``: the calendar months spanned by the assigned pairs, for
    each month the indices of its pairs, and the indices of pairs that fit no month."""
    if not sources:
        raise InputError("No pair products given.")
    intervals = [s_.interval for s_ in sources]
    first = min(iv.start for iv in intervals)
    last = max(iv.end for iv in intervals)
    candidates = monthly_intervals(first, last)
    best = match_intervals(intervals, candidates, min_fraction)
    used = [b for b in best if b >= 0]
    if not used:
        raise InputError(f"No pair covers at least {100 * min_fraction:.0f} % of its days in one "
                         "calendar month: lower the minimum share, or use shorter pairs.")
    months = candidates[min(used):max(used) + 1]
    members = [[] for _ in months]
    for i, b in enumerate(best):
        if b >= 0:
            members[b - min(used)].append(i)
    return months, members, [i for i, b in enumerate(best) if b < 0]


def combine(vxs, vys, weights=None, method="median", errors=None):
    """Combine per-pair arrays ``(k, rows, cols)`` of vx and vy into one vx, vy (NaN-aware).

    ``weights`` ``(k, rows, cols)`` (NaN = no weight) is used by ``method='weighted'``; with
    ``errors`` ``(exs, eys)`` (1σ arrays like vxs, NaN = unknown) the weighted mean weighs each
    component by 1/σ² where every valid pair of the pixel has its σ. Returns ``(vx, vy, (ex,
    ey))``, the combined components' 1σ (module doc), or ``(vx, vy, None)`` without ``errors``.
    """
    if method not in COMBINE:
        raise InputError(f"Unknown combination '{method}': use one of {', '.join(COMBINE)}.")
    ok = np.isfinite(vxs) & np.isfinite(vys)
    n = ok.sum(axis=0)
    known = None
    if errors is not None:
        known = (ok <= (np.isfinite(errors[0]) & np.isfinite(errors[1]))).all(axis=0) & (n > 0)
    if method == "median":
        vx, vy = nanmedian0(vxs)[0], nanmedian0(vys)[0]
        if errors is None:
            return vx, vy, None
        out = []
        with np.errstate(invalid="ignore", divide="ignore"):
            for e in errors:
                e = np.where(ok, e, np.nan)
                mean = np.sqrt(np.nansum(e ** 2, axis=0)) / n  # of one or two values
                median = np.sqrt(np.pi * n / 2) / np.nansum(1.0 / e, axis=0)
                out.append(np.where(known, np.where(n >= 3, median, mean),
                                    np.nan).astype(np.float32))
        return vx, vy, tuple(out)
    means, out = [], []
    for k, values in enumerate((vxs, vys)):
        w = weights
        if errors is not None:
            with np.errstate(divide="ignore"):
                inverse = 1.0 / np.where(ok, errors[k], np.nan) ** 2
            w = np.where(known[None], inverse, weights)
        use = ok & np.isfinite(w)
        w = np.where(use, w, 0.0)
        total = w.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            means.append(np.where(total > 0, (w * np.where(use, values, 0.0)).sum(axis=0) / total,
                                  np.nan).astype(np.float32))
            if errors is not None:
                var = (w ** 2 * np.where(use, errors[k], 0.0) ** 2).sum(axis=0)
                out.append(np.where(known & (total > 0), np.sqrt(var) / total,
                                    np.nan).astype(np.float32))
    return means[0], means[1], (tuple(out) if errors is not None else None)


ERROR_OUTPUTS = {"v": "error", "vx": "vx_error", "vy": "vy_error"}  # velocity -> error output


def monthly_stacks(paths, grid, outputs, method="median", min_fraction=0.5, sensor=None,
                   tile=512, progress=None, log=None, mask=None):
    """Build monthly stacks of v, vx and vy on ``grid`` from pair products ``paths``.

    ``outputs`` maps 'v', 'vx', 'vy' to output paths (any subset), and 'error', 'vx_error',
    'vy_error' to the 1σ stacks of v, vx, vy (module doc); error stacks are written only when
    some pair states errors (else ``log(message)`` says so). Pairs of different sensors are
    refused unless ``sensor`` names the stacks' sensor. Returns ``(rows, left_out)``: one dict
    per month (``month``, ``interval``, ``n_pairs``, ``pairs``, ``n_with_errors``) and the
    left-out file names. ``mask``: see the module doc.
    """
    progress = ensure(progress)
    log = log or (lambda message: None)
    if method not in COMBINE:
        raise InputError(f"Unknown combination '{method}': use one of {', '.join(COMBINE)}.")
    if not any(q in outputs for q in ERROR_OUTPUTS):
        raise InputError("No output stack requested.")
    sources = [PairSource(p) for p in paths]
    sensors = sorted({s.sensor for s in sources if s.sensor})
    if sensor is None:
        if len(sensors) > 1:
            raise InputError(f"The pair products come from several sensors ({', '.join(sensors)}): "
                             "build one stack per sensor, or name the sensor explicitly.")
        sensor = sensors[0] if sensors else ""
    months, members, left_out = assign_pairs(sources, min_fraction)
    names = [os.path.basename(s.path) for s in sources]
    with_errors = [s.has_errors for s in sources]
    any_errors = any(with_errors[i] for m in members for i in m)
    outputs = dict(outputs)
    wanted = [e for q, e in ERROR_OUTPUTS.items() if e in outputs and q in outputs]
    if wanted and not any_errors:
        log("No pair states per-vector errors (bands vx_error, vy_error): no error stack "
            "written.")
    if not any_errors or not wanted:
        for e in ERROR_OUTPUTS.values():
            outputs.pop(e, None)
    errors_on = any(e in outputs for e in ERROR_OUTPUTS.values())
    band_meta = [{"PAIRS": ",".join(names[i] for i in m), "N_PAIRS": len(m)} for m in members]
    meta = {"COMBINATION": method, "MIN_FRACTION": min_fraction}
    with ExitStack() as opened:  # closes the writers made so far when one of them fails
        writers = {}
        for q, path in outputs.items():
            m = dict(meta)
            if q in ERROR_OUTPUTS and ERROR_OUTPUTS[q] in outputs:
                m.update(error_links(path, outputs[ERROR_OUTPUTS[q]])[0])
            of = next((v for v, e in ERROR_OUTPUTS.items() if e == q), None)
            if of is not None:
                m.update(error_links(outputs[of], path)[1])
            writers[q] = opened.enter_context(StackWriter(
                path, grid, months, "error" if of else sensor, of or q, m, band_meta,
                inputs=paths))
        tiles = list(iter_tiles(grid.shape, tile))
        for t, (window, _, _) in enumerate(tiles):
            for b, idx in enumerate(members):
                arr = {q: np.full(window[2:], np.nan, np.float32)
                       for q in ("vx", "vy", "v") + tuple(ERROR_OUTPUTS.values())}
                if idx:
                    data = [sources[i].warp(grid, window) for i in idx]
                    vxs = np.stack([d[0] for d in data])
                    vys = np.stack([d[1] for d in data])
                    if mask is not None:
                        r0, c0, nr, nc = window
                        drop = np.stack([mask(sources[i], grid)[r0:r0 + nr, c0:c0 + nc]
                                         for i in idx])
                        vxs[drop] = vys[drop] = np.nan
                    errors = None
                    if errors_on:
                        nan = np.full(window[2:], np.nan, np.float32)
                        read = [sources[i].warp_errors(grid, window) or (nan, nan) for i in idx]
                        errors = (np.stack([e[0] for e in read]), np.stack([e[1] for e in read]))
                    weights = None
                    if method == "weighted":
                        snr = np.stack([np.where(np.isfinite(d[2]), d[2], 1.0) for d in data])
                        base = np.array([sources[i].interval.days for i in idx], np.float32)
                        weights = base[:, None, None] ** 2 * snr
                    vx, vy, err = combine(vxs, vys, weights, method, errors)
                    arr.update(vx=vx, vy=vy, v=np.hypot(vx, vy))
                    if err is not None:
                        arr.update(vx_error=err[0], vy_error=err[1],
                                   error=speed_error(vx, vy, err[0], err[1]))
                for q, w in writers.items():
                    w.write(b, arr[q], window[0], window[1])
                progress.update((t + (b + 1) / len(members)) / len(tiles))
    rows = [{"month": iv.start.strftime("%Y-%m"), "interval": str(iv), "n_pairs": len(m),
             "pairs": ",".join(names[i] for i in m),
             "n_with_errors": sum(with_errors[i] for i in m)} for iv, m in zip(months, members)]
    return rows, [names[i] for i in left_out]
