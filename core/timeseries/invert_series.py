"""Pair products of any sensors and baselines inverted into regular velocity stacks on one grid
(the file-level driver of :mod:`core.timeseries.inversion`).

Every pair is read with :class:`core.io.pairsource.PairSource` (directly when it is on the
output grid, else resampled by nearest neighbour with its components turned to the grid's
axes). Pair errors (1σ per component, m/yr): per pixel from the pair's error bands
(``vx_error``/``vy_error``, their RMS, as the correlation writes them and the cleaning keeps them;
see :class:`core.io.pairsource.PairSource`) where it has them, so each vector weighs by 1/σ²;
otherwise one σ per pair from, in this order, the errors table (a row per pair product, or a
displacement error in metres per sensor), the pair's own metadata (``V_ERROR``, ``ERROR`` or
``UNCERTAINTY`` in m/yr, as ITS_LIVE granules state it), or ``DEFAULT_NOISE_PX`` of the pair's
pixel of displacement over its baseline (also used where an error band has no value).

The regularisation coefficient (unless given) and the robust scale are found once, on a sample
of pixels spread over the whole grid (every pair resampled onto a coarse grid), so tiles share
them and no seams appear. Then tile by tile (memory bounded by ``memory_mb``, MB), the pairs of the
tile are read and inverted in batches of pixels; the stacks are written band by band.

Outputs: speed (magnitude of vx, vy), vx, vy and the 1σ error of the speed per band, each a
velocity stack (bands ``START/END``). The speed stack names its error stack in the metadata item
``ERROR_STACK`` (file name when beside it), the error stack names its speed stack in
``ERROR_OF``; by default the error stack is ``<speed stack>_error.tif`` beside the speed stack.
"""

import datetime as dt
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass

import numpy as np

from ..cluster import run_tasks, session
from ..errors import InputError
from ..io.dates import DAYS_PER_YEAR, parse_date
from ..io.grid import Grid, same_crs
from ..io.names import source_name
from ..io.pairsource import PairSource
from ..io.pixel_series import error_links
from ..io.products import StackWriter
from ..io.raster import iter_tiles
from ..progress import ensure
from .harmonise import target_grid
from .inversion import (ROBUST, Design, choose_regularisation, design, interval_edges,
                        invert_pixels, robust_scale)

DEFAULT_NOISE_PX = 0.1
ERROR_METADATA = ("V_ERROR", "ERROR", "UNCERTAINTY")
ERROR_COLUMNS = ("error", "nmad", "std", "e", "rmse")  # robust spread first
SAMPLE_PIXELS = 32  # the coarse sample grid has at most this many pixels per side
# batches solved at once, in threads: numpy and scipy.sparse release the GIL in the heavy steps
WORKERS = max(1, min(2, os.cpu_count() or 1))


def inversion_grid(sources, reference=None, pixel=30.0):
    """The output grid: ``reference`` (a :class:`Grid`), else a ``pixel`` m grid over the first
    pair; pairs in several CRS need a reference grid."""
    if reference is not None:
        return reference
    crs = [s.grid.crs_wkt for s in sources]
    odd = [s.path for s, c in zip(sources, crs) if not same_crs(c, crs[0])]
    if odd:
        raise InputError(f"The pair products are in several CRS ('{sources[0].path}' and "
                         f"'{odd[0]}'): give a REFERENCE raster whose grid they all go onto.")
    return target_grid(sources[0].grid, pixel)


def _number(value):
    try:
        v = float(str(value).strip())
    except (TypeError, ValueError):
        return math.nan
    return v if math.isfinite(v) and v > 0 else math.nan


def pair_errors(sources, rows=None):
    """``(sigma, origin)``: 1σ velocity error per pair and component (m/yr) and where each came
    from ('table', 'metadata' or 'default'); see the module docstring. ``rows`` are the errors
    table's rows as dicts: columns ``product`` (file name, with or without extension) and one of
    ``error``/``nmad``/``std``/``e``/``rmse`` (the first present; m/yr; rows of the components vx
    and vy, else of the speed v divided by √2), or ``sensor`` and ``displacement_error`` (m)."""
    by_product, by_sensor = {}, {}
    for row in rows or []:
        low = {str(k).strip().lower(): v for k, v in row.items()}
        if low.get("product") not in (None, ""):
            col = next((c for c in ERROR_COLUMNS if math.isfinite(_number(low.get(c)))), None)
            q = str(low.get("quantity") or "vx").strip().lower()
            if col is None or q not in ("v", "vx", "vy") or str(low.get("band", "1")) == "0":
                continue
            kind = "v" if q == "v" else "xy"
            by_product.setdefault(source_name(low["product"]), {}).setdefault(kind, []).append(
                _number(low[col]))
        elif low.get("sensor") not in (None, "") and math.isfinite(
                _number(low.get("displacement_error"))):
            by_sensor[str(low["sensor"]).strip().lower()] = _number(low["displacement_error"])
    # the components' spread where the table has it; else the speed's over √2 (rough: the speed
    # of noisy components is not Gaussian)
    by_product = {k: math.sqrt(np.mean(np.square(v["xy"]))) if "xy" in v
                  else math.sqrt(np.mean(np.square(v["v"]))) / math.sqrt(2.0)
                  for k, v in by_product.items()}
    if rows and not by_product and not by_sensor:
        raise InputError("The errors table has no usable rows: it needs columns 'product' and "
                         "'error' (or std, nmad, e; m/yr), or 'sensor' and 'displacement_error' "
                         "(m).")
    sigma, origin = [], []
    for s in sources:
        name = source_name(s.path)
        years = (s.end - s.start).days / DAYS_PER_YEAR
        meta = next((_number(s.metadata.get(k)) for k in ERROR_METADATA
                     if math.isfinite(_number(s.metadata.get(k)))), math.nan)
        if name in by_product:
            sigma.append(by_product[name])
            origin.append("table")
        elif (s.sensor or "").lower() in by_sensor:
            sigma.append(by_sensor[s.sensor.lower()] / years)
            origin.append("table")
        elif math.isfinite(meta):
            sigma.append(meta)
            origin.append("metadata")
        else:
            sigma.append(DEFAULT_NOISE_PX * s.pixel_speed())
            origin.append("default")
    return np.array(sigma, np.float64), origin


def _read(source, grid, window):
    """``(vx, vy)`` of one pair on a window of ``grid`` (direct read when on the grid)."""
    if source.grid.same_as(grid):
        vx, vy, _ = source.read(window, snr=False)
    else:
        vx, vy, _ = source.warp(grid, window)
    return vx, vy


def _read_sigma(source, grid, window, fallback):
    """One pair's per-vector 1σ on a window of ``grid`` (m/yr, float32): the RMS of its
    vx_error and vy_error (one weight serves both components), ``fallback`` (the pair's own
    σ) where it states none."""
    errors = source.warp_errors(grid, window)
    shape = tuple(window[2:]) if window is not None else grid.shape
    if errors is None:
        return np.full(shape, fallback, np.float32)
    s = np.sqrt(0.5 * (errors[0].astype(np.float64) ** 2 + errors[1] ** 2))
    return np.where(np.isfinite(s) & (s > 0), s, fallback).astype(np.float32)


def _tile_side(n_pairs, memory_mb):
    """Side of square tiles whose pair values (vx, vy float32) fill 40 % of ``memory_mb``."""
    side = int(math.sqrt(0.4 * memory_mb * 2 ** 20 / (8 * n_pairs)))
    return int(min(max(side // 16 * 16, 16), 1024))


def _batch_pixels(n_pairs, memory_mb):
    """Pixels per batch such that the :data:`WORKERS` batches in flight, about 96 bytes of work
    arrays per pair and pixel each, fill 40 % of ``memory_mb``."""
    return int(max(64, 0.4 * memory_mb * 2 ** 20 / (96 * n_pairs * WORKERS)))


def _span(sources, start=None, end=None):
    """Indices of the pairs that overlap the output span and the span: ``first`` day and the day
    after the last (``end`` is the last day, inclusive; a pair covers ``start .. end - 1``)."""
    one_day = dt.timedelta(days=1)
    first = parse_date(start) if start else None
    last = parse_date(end) + one_day if end else None
    if first is None:
        first = min([s.start for s in sources] + ([last - one_day] if last else []))
    if last is None:
        last = max([s.end for s in sources] + [first + one_day])
    if last <= first:
        raise InputError(f"The output span {first} to {last - one_day} is empty: END_DATE must "
                         "be after START_DATE.")
    keep = [i for i, s in enumerate(sources) if s.start < last and s.end > first]
    if not keep:
        raise InputError(f"No pair overlaps the output span {first} to {last - one_day}: the pairs run "
                         f"from {min(s.start for s in sources)} to "
                         f"{max(s.end for s in sources)}.")
    return keep, first, last


def invert_series(paths, grid, outputs, spacing_days=None, start=None, end=None,
                  regularisation=None, robust="tukey", error_rows=None, memory_mb=1024,
                  progress=None, log=None, scheduler=None):
    """Invert the pair products ``paths`` onto ``grid`` and write the stacks ``outputs`` (a
    dict with 'v' required and any of 'vx', 'vy', 'error'; file paths).

    ``spacing_days`` (None: calendar months), ``start``/``end`` (dates; default the pairs'
    span) set the series; ``regularisation`` the coefficient λ (None: chosen by GCV);
    ``robust`` one of :data:`ROBUST`; ``error_rows`` the errors table (:func:`pair_errors`).
    ``log(message)`` receives stage messages. ``scheduler``: where the tiles are inverted
    (:mod:`core.cluster`; empty = here), one tile per task; the pairs must then be on storage
    the workers see, the stacks are written here. Returns ``(rows, summary)``: one dict per band
    (``band``, ``interval``, ``n_pairs``, ``pairs_per_pixel``, ``residual_rms``, ``coverage``)
    and a dict of what was found (``regularisation``, ``scale``, ``gcv``, ``pairs``, ...;
    ``seconds``: wall and CPU seconds of the sample stage and of the tiles).
    """
    progress = ensure(progress)
    log = log or (lambda message: None)
    if robust not in ROBUST:
        raise InputError(f"Unknown robust reweighting '{robust}': use one of {', '.join(ROBUST)}.")
    if "v" not in outputs:
        raise InputError("The speed stack (OUTPUT) is required.")
    if len(paths) < 2:
        raise InputError(f"The inversion needs at least two pair products ({len(paths)} given): "
                         "one pair is already its own series.")
    sources = [PairSource(p) for p in paths]
    keep, first, last = _span(sources, start, end)
    if len(keep) < len(sources):
        log(f"{len(sources) - len(keep)} pair(s) outside the output span from {first} are left "
            "out.")
    sources = [sources[i] for i in keep]
    if len(sources) < 2:
        raise InputError("Only one pair overlaps the output span: the inversion needs at least "
                         "two.")
    # the cluster is connected and its workers checked before the sample stage, so that a
    # scheduler or worker that cannot serve fails at once
    with session(scheduler, [p for s in sources for p in s.inputs()]) as where:
        return _invert(sources, grid, outputs, first, last, spacing_days, regularisation, robust,
                       error_rows, memory_mb, progress, log, where)


def _invert(sources, grid, outputs, first, last, spacing_days, regularisation, robust,
            error_rows, memory_mb, progress, log, where):
    """The work of :func:`invert_series` once its inputs are checked; ``where``: None (here) or
    the cluster's client (:func:`core.cluster.session`)."""
    sigma, origin = pair_errors(sources, error_rows)
    banded = [s.has_errors for s in sources]  # pairs with per-vector errors weigh per pixel
    # unknowns cover every kept pair whole, the stacks only the requested span
    lo = min(min(s.start for s in sources), first)
    hi = max(max(s.end for s in sources), last)
    edges, intervals = interval_edges(lo, hi, spacing_days)
    bands = [k for k, iv in enumerate(intervals)
             if iv.end >= first and iv.start < last]
    starts = [s.start.toordinal() for s in sources]
    ends = [s.end.toordinal() for s in sources]
    d = Design(design(starts, ends, edges))
    sigma_ref = float(np.median(sigma))
    unit = f"of {spacing_days:g} days" if spacing_days else "(calendar months)"
    log(f"{len(sources)} pairs, {d.K} intervals {unit}, normal matrix bandwidth {d.b}; "
        f"{len(bands)} band(s) written.")

    # 1. the coefficient and the robust scale, on a sample spread over the grid
    clock = (time.perf_counter(), time.process_time())
    step = max(1, math.ceil(max(grid.rows, grid.cols) / SAMPLE_PIXELS))
    x0, _, _, y1 = grid.bounds
    sample_grid = Grid.from_bounds(x0, y1, grid.dx * step, math.ceil(grid.rows / step),
                                   math.ceil(grid.cols / step), grid.crs_wkt)
    log(f"Reading a sample of {sample_grid.rows} x {sample_grid.cols} pixels of every pair.")
    sample = [_read(s, sample_grid, None) for s in sources]
    progress.update(0.02)
    sx = np.stack([v[0].ravel() for v in sample]).astype(np.float64)
    sy = np.stack([v[1].ravel() for v in sample]).astype(np.float64)
    del sample
    per_pixel = any(banded)
    if per_pixel:
        ss = np.stack([_read_sigma(s, sample_grid, None, sigma[j]).ravel().astype(np.float64)
                       for j, s in enumerate(sources)])
        for j in np.flatnonzero(banded):  # the pair's typical σ, for σ_ref and the log
            ok = np.isfinite(sx[j]) & np.isfinite(ss[j])
            if ok.any():
                sigma[j] = float(np.median(ss[j][ok]))
                origin[j] = "error bands"
        sigma_ref = float(np.median(sigma))
    log("Pair errors (1 sigma, m/yr): " + ", ".join(
        f"{o} for {origin.count(o)} pair(s)" for o in ("error bands", "table", "metadata",
                                                       "default")
        if o in origin) + f"; median {np.median(sigma):.1f} m/yr"
        + (" (per-vector errors weigh each pixel)." if per_pixel else "."))
    sample_sigma = ss if per_pixel else sigma
    if regularisation is None:
        lam, scale, scores = choose_regularisation(d, sx, sy, sample_sigma, sigma_ref, robust,
                                                   progress=progress.sub(0.02, 0.1))
        log(f"Regularisation chosen by generalised cross-validation: {lam:.3g} "
            f"(robust scale {scale:.2f} of the stated errors).")
    else:
        lam, scores = float(regularisation), []
        res = invert_pixels(d, sx, sy, sample_sigma, lam, sigma_ref, robust)
        u = np.sqrt(0.5 * (res["rx"] ** 2 + res["ry"] ** 2)) / np.reshape(sample_sigma,
                                                                          (len(sources), -1))
        scale = robust_scale(u[np.isfinite(u)])
        log(f"Regularisation {lam:.3g} (given); robust scale {scale:.2f} of the stated errors.")
    del sx, sy
    seconds = {"sample": (time.perf_counter() - clock[0], time.process_time() - clock[1])}
    clock = (time.perf_counter(), time.process_time())

    # 2. tile by tile, one task each (here or on a cluster)
    side = _tile_side(len(sources), memory_mb)
    tiles = [window for window, _, _ in iter_tiles(grid.shape, side)]
    batch = _batch_pixels(len(sources), memory_mb)
    names = {q: os.path.basename(p) for q, p in outputs.items()}
    meta = {"METHOD": "temporal inversion", "REGULARISATION": f"{lam:.6g}",
            "ROBUST": robust, "N_PAIRS": len(sources),
            "SPACING": f"{spacing_days:g} days" if spacing_days else "calendar months"}
    out_intervals = [intervals[k] for k in bands]
    sensors = sorted({s.sensor for s in sources if s.sensor})
    sensor = "+".join(sensors) if len(sensors) > 1 else (sensors[0] if sensors else "")
    inputs = [p for s in sources for p in s.inputs()]
    here = where is None
    # here the open pairs serve every tile, batches solved in threads; a worker opens the pairs by
    # their paths and solves its batches one after the other (its cluster runs tiles side by side)
    model = _TileModel(d, sigma, per_pixel, lam, sigma_ref, robust, scale, bands, batch,
                       WORKERS if here else 1, sorted(outputs))
    pairs = sources if here else [s.path for s in sources]
    partial = [None] * len(tiles)  # each tile's sums, added in tile order (same as on a cluster)
    log(f"Inverting {len(tiles)} tile(s) of up to {min(side, grid.rows)} x "
        f"{min(side, grid.cols)} pixels"
        + ("." if here else " on the Dask cluster, one tile per task."))
    written = []
    try:
        with ExitStack() as opened:
            writers = {}
            for q, path in outputs.items():
                m = dict(meta)
                if "error" in outputs and q in ("v", "error"):
                    m.update(error_links(outputs["v"], outputs["error"])[q == "error"])
                writers[q] = opened.enter_context(StackWriter(
                    path, grid, out_intervals, "error" if q == "error" else sensor,
                    "v" if q == "error" else q, m, inputs=inputs))
                written.append(path)

            def store(t, res):
                row_off, col_off, rows, cols = tiles[t]
                partial[t] = res.pop("acc")
                for q, w in writers.items():
                    for k in range(len(bands)):
                        w.write(k, res[q][k].reshape(rows, cols), row_off, col_off)

            run_tasks(invert_tile, [(pairs, grid, window, model) for window in tiles], where,
                      progress.sub(0.1, 1.0), visible=inputs, key="invert-tile",
                      on_result=store)
    except BaseException:
        for path in written:  # no half-written stacks
            if os.path.exists(path):
                os.remove(path)
        raise
    acc = {k: np.sum([p[k] for p in partial], axis=0) for k in partial[0]}
    seconds["tiles"] = (time.perf_counter() - clock[0], time.process_time() - clock[1])
    total = grid.rows * grid.cols
    table = []
    touching = np.asarray(d.touches[bands].sum(axis=1)).ravel()
    for i, iv in enumerate(out_intervals):
        table.append({"band": i + 1, "interval": str(iv), "n_pairs": int(touching[i]),
                      "pairs_per_pixel": float(acc["pairs"][i] / acc["covered"][i])
                      if acc["covered"][i] else 0.0,
                      "residual_rms": float(np.sqrt(acc["res2"][i] / acc["nres"][i]))
                      if acc["nres"][i] else math.nan,
                      "coverage": float(acc["covered"][i] / total)})
    summary = {"regularisation": lam, "scale": scale, "gcv": scores, "pairs": len(sources),
               "intervals": out_intervals, "bandwidth": d.b, "tiles": len(tiles),
               "names": names, "seconds": seconds}
    return table, summary


@dataclass
class _TileModel:
    """What every tile's solve shares: the design, the pair errors ``sigma`` (m/yr; with
    ``per_pixel``, the fallback of the pairs' per-vector error bands), the coefficient ``lam``,
    ``sigma_ref``, the robust method and ``scale``, the output ``bands`` (indices of the design's
    intervals), pixels per ``batch``, ``threads`` solving batches side by side and the
    ``outputs`` wanted ('v', 'vx', 'vy', 'error')."""

    design: Design
    sigma: np.ndarray
    per_pixel: bool
    lam: float
    sigma_ref: float
    robust: str
    scale: float
    bands: list
    batch: int
    threads: int
    outputs: list


def invert_tile(task, progress=None):
    """One tile of :func:`invert_series`: ``task = (pairs (open PairSources, or their paths),
    grid, window (row_off, col_off, rows, cols), _TileModel)``. Returns the tile's float32 arrays
    (bands x pixels, m/yr) of the model's outputs and ``acc``, its sums for the band table. The
    pixels are split into the same batches wherever the tile runs, so a tile gives the same
    values here and on a Dask worker."""
    pairs, grid, window, m = task
    progress = ensure(progress)
    sources = [p if isinstance(p, PairSource) else PairSource(p) for p in pairs]
    rows, cols = window[2:]
    n_bands = len(m.bands)
    yx = np.empty((len(sources), rows * cols), np.float32)
    yy = np.empty_like(yx)
    ys = np.empty_like(yx) if m.per_pixel else None
    for j, s in enumerate(sources):
        vx, vy = _read(s, grid, window)
        yx[j], yy[j] = vx.ravel(), vy.ravel()
        if m.per_pixel:
            ys[j] = _read_sigma(s, grid, window, m.sigma[j]).ravel()
        if j % 50 == 0:
            progress.update(0.3 * j / len(sources))
    del sources  # a worker's pairs are closed before the solve
    result = {q: np.full((n_bands, rows * cols), np.nan, np.float32) for q in ("vx", "vy", "sigma")}
    acc = {k: np.zeros(n_bands) for k in ("pairs", "res2", "nres", "covered")}
    chunks = []
    for b0 in range(0, rows * cols, m.batch):
        has = np.isfinite(yx[:, b0:b0 + m.batch]).any(axis=0)
        if has.any():
            chunks.append(np.flatnonzero(has) + b0)
    with ThreadPoolExecutor(m.threads) as pool:
        for c0 in range(0, len(chunks), m.threads):  # m.threads batches at a time
            running = [(idx, pool.submit(invert_pixels, m.design, yx[:, idx], yy[:, idx],
                                         ys[:, idx] if m.per_pixel else m.sigma, m.lam,
                                         m.sigma_ref, m.robust, m.scale))
                       for idx in chunks[c0:c0 + m.threads]]
            for idx, future in running:
                r = future.result()
                for q in ("vx", "vy", "sigma"):
                    result[q][:, idx] = r[q][m.bands]
                _accumulate(acc, r, m.design, m.bands)
            progress.update(0.3 + 0.7 * min(c0 + m.threads, len(chunks)) / len(chunks))
    speed = np.hypot(result["vx"], result["vy"])
    acc["covered"] += np.isfinite(speed).sum(axis=1)
    arrays = {"v": speed, "vx": result["vx"], "vy": result["vy"], "error": result["sigma"]}
    out = {q: arrays[q] for q in m.outputs}
    out["acc"] = acc
    return out


def _accumulate(acc, r, d, bands):
    """Add a batch's kept pairs per interval and residuals of the pairs touching each band."""
    ok = np.isfinite(r["vx"][bands])
    acc["pairs"] += np.where(ok, r["n_pairs"][bands], 0).sum(axis=1)
    kept = r["weights"] > 0
    res2 = np.where(kept, 0.5 * (r["rx"] ** 2 + r["ry"] ** 2), 0.0)
    touches = d.touches[bands]
    acc["res2"] += touches @ res2.sum(axis=1, dtype=np.float64)
    acc["nres"] += touches @ kept.sum(axis=1).astype(np.float64)
