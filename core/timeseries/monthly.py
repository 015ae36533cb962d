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
"""

import os
from contextlib import ExitStack

import numpy as np

from ..io.dates import match_intervals, monthly_intervals
from ..errors import InputError
from ..arrays.nanstats import nanmedian0
from ..io.pairsource import PairSource
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


def combine(vxs, vys, weights=None, method="median"):
    """Combine per-pair arrays ``(k, rows, cols)`` of vx and vy into one vx, vy (NaN-aware).

    ``weights`` ``(k, rows, cols)`` (NaN = no weight) is used by ``method='weighted'``.
    """
    if method == "median":
        return nanmedian0(vxs)[0], nanmedian0(vys)[0]
    if method != "weighted":
        raise InputError(f"Unknown combination '{method}': use one of {', '.join(COMBINE)}.")
    ok = np.isfinite(vxs) & np.isfinite(vys) & np.isfinite(weights)
    w = np.where(ok, weights, 0.0)
    total = w.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        vx = np.where(total > 0, (w * np.where(ok, vxs, 0.0)).sum(axis=0) / total, np.nan)
        vy = np.where(total > 0, (w * np.where(ok, vys, 0.0)).sum(axis=0) / total, np.nan)
    return vx.astype(np.float32), vy.astype(np.float32)


def monthly_stacks(paths, grid, outputs, method="median", min_fraction=0.5, sensor=None,
                   tile=512, progress=None):
    """Build monthly stacks of v, vx and vy on ``grid`` from pair products ``paths``.

    ``outputs`` maps 'v', 'vx', 'vy' to output paths (any subset). Pairs of different sensors
    are refused unless ``sensor`` names the stacks' sensor. Returns ``(rows, left_out)``: one dict
    per month (``month``, ``interval``, ``n_pairs``, ``pairs``) and the left-out file names.
    """
    progress = ensure(progress)
    if method not in COMBINE:
        raise InputError(f"Unknown combination '{method}': use one of {', '.join(COMBINE)}.")
    if not outputs:
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
    band_meta = [{"PAIRS": ",".join(names[i] for i in m), "N_PAIRS": len(m)} for m in members]
    meta = {"COMBINATION": method, "MIN_FRACTION": min_fraction}
    with ExitStack() as opened:  # closes the writers made so far when one of them fails
        writers = {q: opened.enter_context(StackWriter(p, grid, months, sensor, q, meta, band_meta,
                                                       inputs=paths))
                   for q, p in outputs.items()}
        tiles = list(iter_tiles(grid.shape, tile))
        for t, (window, _, _) in enumerate(tiles):
            for b, idx in enumerate(members):
                if not idx:
                    arr = {q: np.full(window[2:], np.nan, np.float32) for q in ("vx", "vy", "v")}
                else:
                    data = [sources[i].warp(grid, window) for i in idx]
                    vxs = np.stack([d[0] for d in data])
                    vys = np.stack([d[1] for d in data])
                    weights = None
                    if method == "weighted":
                        snr = np.stack([np.where(np.isfinite(d[2]), d[2], 1.0) for d in data])
                        base = np.array([sources[i].interval.days for i in idx], np.float32)
                        weights = base[:, None, None] ** 2 * snr
                    vx, vy = combine(vxs, vys, weights, method)
                    arr = {"vx": vx, "vy": vy, "v": np.hypot(vx, vy)}
                for q, w in writers.items():
                    w.write(b, arr[q], window[0], window[1])
                progress.update((t + (b + 1) / len(members)) / len(tiles))
    rows = [{"month": iv.start.strftime("%Y-%m"), "interval": str(iv), "n_pairs": len(m),
             "pairs": ",".join(names[i] for i in m)} for iv, m in zip(months, members)]
    return rows, [names[i] for i in left_out]
