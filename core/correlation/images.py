"""Correlate image files into pair products (velocity in m/yr), tile by tile.

:func:`correlate_images` checks the pair's geometry and dates, brings the secondary image onto
the reference grid (Lanczos resampling, only when the grids differ), optionally down-samples both
(anti-aliased) to a target resolution, pre-processes them and correlates strips of window rows
with :mod:`core.correlation.engine`, writing each strip of the pair product as it comes: memory depends
on the image width, not on its height. :func:`correlate_batch` runs it over many pairs.

Output grid: one pixel per window centre, pixel size = step x the working pixel size, origin at
the first window's centre minus half a step (see :func:`core.correlation.engine.window_layout`).
Velocity: east = d_col x pixel width / baseline, north = -d_row x pixel height / baseline, in m/yr
with the baseline in years of 365.25 days.
"""

import math
import os
from dataclasses import dataclass

import numpy as np

from ..cluster import ClusterError, parse_scheduler, run_tasks, worker_name
from .engine import (CorrelatorOptions, context_margin, correlate_windows, window_layout,
                     working_memory)
from ..io.dates import DAYS_PER_YEAR, acquisition_date, baseline_days
from ..errors import InputError
from ..io.grid import Grid, require_overlap, require_projected, require_same_crs
from ..io.names import unique_name
from .deform import gradient_reach
from .pairing import image_sensor
from .prior import prior_margin, search_radius
from .preprocess import (DEFAULT_SIZE, antialias_sigma, channels, check_method, downsample, halo,
                         resolve)
from .preprocess import apply as preprocess_apply
from ..io.atomic import make_folder, remove_leftovers
from ..io.products import DEFAULT_MAX_SPEED, ERROR_BANDS, PairWriter
from ..progress import ensure
from ..arrays.memory import require_memory
from ..io.raster import check_readable, read_band, warp_to_grid

# pixels (per image and channel, at input resolution) held for one strip: a Sentinel-2 tile's
# strips are then ~1,100 rows high, so the rows read, filtered and correlated twice (window, search
# margin, filter halo, deformation halo) cost ~3 % instead of ~10 % at 4 Mpx (peak RSS ~0.5 GB)
STRIP_PIXELS = 12_000_000
SNR_BINS = 1000


def correlate_images(reference, secondary, output, window=32, step=2, start=None, end=None,
                     sensor=None, preprocess="auto", filter_size=DEFAULT_SIZE, resolution=None,
                     search=None, prior=(0.0, 0.0), band=1, min_snr=0.0, max_speed=None,
                     prior_field=None, deform=True, progress=None, scheduler=None):
    """Correlate two rasters into a pair product at ``output``; return a summary dict.

    ``window``: side in pixels, or (rows, cols); ``step``: pixels between window centres;
    ``start``/``end``: acquisition dates (default: from the names or metadata); ``sensor``
    (default: from the reference's name or metadata); ``preprocess``: a method of
    :mod:`core.correlation.preprocess`, or 'auto' (chosen by sensor), with ``filter_size`` px;
    ``resolution``: target pixel size in metres (anti-aliased down-sampling; None keeps the
    reference's pixels); ``search``: largest displacement in working pixels beyond the prior,
    an explicit override of ``max_speed`` (m/yr, default 1095), which sets the search to
    ``max_speed x baseline / pixel`` (:func:`core.correlation.prior.search_radius`);
    ``prior``: a constant expected displacement (east, north) in metres; ``prior_field``: a
    :class:`core.correlation.prior.PriorField` (velocity, m/yr) giving each window its expected
    offset (velocity x baseline), the constant prior where it has no value; ``band``: the band
    correlated (1-based); ``min_snr``: vectors with a lower SNR are written as NaN (their SNR is
    kept); ``deform``: window deformation where the strain across a window exceeds 0.4 %
    (:mod:`core.correlation.deform`); ``scheduler``: where the strips are correlated
    (:mod:`core.cluster`; empty = here), one strip per task, the product written here.

    Summary keys: path, start, end, days, sensor, method (the pre-processing used), valid_share
    (share of windows with a vector), median_snr, windows, grid (of the product).
    """
    progress = ensure(progress)
    args = dict(reference=str(reference), secondary=str(secondary), window=window, step=step,
                start=start, end=end, sensor=sensor, preprocess=preprocess,
                filter_size=filter_size, resolution=resolution, search=search, prior=prior,
                band=band, min_snr=min_snr, max_speed=max_speed, prior_field=prior_field,
                deform=deform)
    job = _PairJob(**args)
    layout = job.layout
    writer = PairWriter(output, layout.grid, job.start, job.end, job.sensor, job.meta,
                        inputs=[job.reference, job.secondary], extra_bands=ERROR_BANDS)
    strips = [(i0, min(layout.ny, i0 + job.tile)) for i0 in range(0, layout.ny, job.tile)]
    valid, hist = [0], np.zeros(SNR_BINS, np.int64)

    def store(k, res):
        vx, vy, snr, errors = res
        valid[0] += int(np.isfinite(vx).sum())
        hist[:] += np.histogram(snr[np.isfinite(snr)], SNR_BINS, (0.0, 1.0))[0]
        writer.write(vx, vy, snr, strips[k][0], 0)
        for name, arr in zip(ERROR_BANDS, errors):
            writer.write_extra(name, arr, strips[k][0], 0)

    # here the open images serve every strip; a worker opens them by their paths
    source = job if parse_scheduler(scheduler) is None else args
    try:
        run_tasks(correlate_strip, [(source, s) for s in strips], scheduler, progress,
                  visible=[job.reference, job.secondary] + _prior_inputs(prior_field),
                  key="strip", on_result=store)
        median = _hist_median(hist)
        share = valid[0] / float(layout.ny * layout.nx)
        writer.set_metadata({"VALID_SHARE": f"{share:.4f}", "MEDIAN_SNR": f"{median:.4f}"})
        writer.close()
    except BaseException:
        writer.abort()  # a cancelled or failed run leaves no half-written product behind
        raise
    progress.update(1.0)
    return {"path": str(output), "start": job.start, "end": job.end, "days": job.days,
            "sensor": job.sensor, "method": job.method, "valid_share": share,
            "median_snr": median, "windows": layout.ny * layout.nx, "grid": layout.grid,
            "search_px": job.options.search_px}


class _PairJob:
    """A pair opened and checked (geometry, dates, bands, content), with everything its strips
    need: readers, window layout, strip height ``tile`` (product rows), search margin, options.
    Built from :func:`correlate_images`' arguments, here or again on a worker."""

    def __init__(self, reference, secondary, window, step, start, end, sensor, preprocess,
                 filter_size, resolution, search, prior, band, min_snr, max_speed=None,
                 prior_field=None, deform=True):
        (ds_r, grid_r), (ds_s, grid_s) = _open_pair(reference, secondary)
        self.reference, self.secondary = reference, secondary
        self.start = acquisition_date(reference, start, "reference image")
        self.end = acquisition_date(secondary, end, "secondary image")
        self.days = days = baseline_days(
            self.start, self.end,
            f"the pair '{os.path.basename(reference)}' -> '{os.path.basename(secondary)}'")
        self.sensor = sensor if sensor else image_sensor(reference)
        method, filter_size = check_method(resolve(preprocess, self.sensor), filter_size)
        self.method = method
        window = (int(window), int(window)) if np.isscalar(window) else tuple(int(w) for w in window)
        step = int(step)
        if step < 1:
            raise InputError(f"The step must be at least 1 pixel; got {step}.")
        for ds, path in ((ds_r, reference), (ds_s, secondary)):
            if not 1 <= int(band) <= ds.RasterCount:
                raise InputError(f"'{path}' has {ds.RasterCount} band(s); band {band} was asked "
                                 "for.")
            _require_content(ds, int(band), path)
        work, factors = _working_grid(grid_r, resolution)
        self.layout = _Layout.of(work, window, step, reference)
        # MAX_SPEED x baseline is most pixels along the finer axis: the search must reach it
        self.options = options = CorrelatorOptions(window=window, search=search_radius(
            max_speed, days, min(work.dx, work.dy), window, search), deform=bool(deform))
        self.prior_field = prior_field
        if prior_field is not None:
            prior_field.attach(self.layout.grid)
        # prior in working pixels (rows down, cols east)
        self.prior_px = (-float(prior[1]) / work.dy, float(prior[0]) / work.dx)
        self.readers = [_StripReader(ds_r, int(band), grid_r, work, factors, method, filter_size),
                        _StripReader(ds_s, int(band), grid_r, work, factors, method, filter_size,
                                     same=grid_s.same_as(grid_r))]
        self.years = days / DAYS_PER_YEAR
        self.margin = context_margin(options, self.prior_px) + prior_margin(
            prior_field, self.years, (work.dy, work.dx))
        budget_rows = STRIP_PIXELS // max(1, int(work.cols * factors[1] * factors[0] *
                                                 channels(method)))
        # rows of windows correlated beyond each strip and dropped, so that the deformation
        # takes its gradients over the same neighbours as in one piece (the first pass exactly;
        # later passes differ from one piece by < 0.001 px at strip edges under 1.5 % shear,
        # against 0.014 px without the halo; a halo of one reach per pass would be exact, at
        # three times the extra rows)
        self.halo = gradient_reach(window, step) if options.deform else 0
        self.tile = max(2 * self.halo, 1,
                        int((budget_rows - window[0] - 2 * self.margin) // step - 2 * self.halo))
        _require_memory(work, window, step, self.tile + 2 * self.halo, self.margin, method,
                        options)
        self.min_snr = min_snr
        self.meta = {"WINDOW": f"{window[0]}x{window[1]}", "STEP": step, "PREPROCESS": method,
                     "FILTER_SIZE": f"{filter_size:g}", "SEARCH_PX": f"{options.search_px:g}",
                     "PIXEL_M": f"{work.dx:g}", "BASELINE_DAYS": days,
                     "MAX_SPEED": "" if search is not None else
                     f"{DEFAULT_MAX_SPEED if max_speed is None else max_speed:g}",
                     "PRIOR": os.path.basename(prior_field.path) if prior_field is not None else "",
                     "REFERENCE": os.path.basename(reference),
                     "SECONDARY": os.path.basename(secondary),
                     "CORRELATOR": "phase-plane fit with moving raised-cosine taper",
                     "DEFORM": "yes" if deform else "no"}


def _open_pair(reference, secondary):
    """``((dataset, grid), (dataset, grid))`` of the two images, once their geometry is checked:
    readable to their last block, a projected CRS, the same one, and overlapping footprints."""
    ds_r = check_readable(reference, "reference image")
    ds_s = check_readable(secondary, "secondary image")
    grid_r = Grid.from_dataset(ds_r, reference)
    grid_s = Grid.from_dataset(ds_s, secondary)
    require_projected(grid_r, reference)
    require_same_crs(grid_r, grid_s, reference, secondary)
    require_overlap(grid_r, grid_s, reference, secondary)
    return (ds_r, grid_r), (ds_s, grid_s)


@dataclass
class _Layout:
    """Where the windows sit on the working grid and the product grid they make: ``ny`` x ``nx``
    window centres, the first one's top-left pixel ``(top0, left0)``, ``step`` and ``window``
    (rows, cols) in working pixels."""

    ny: int
    nx: int
    top0: int
    left0: int
    step: int
    window: tuple
    grid: Grid

    @classmethod
    def of(cls, work, window, step, reference):
        if window[0] > work.rows or window[1] > work.cols:
            raise InputError(f"The window ({window[1]} x {window[0]} px) is larger than the image "
                             f"'{reference}' ({work.cols} x {work.rows} px at {work.dx:g} m): use "
                             "a smaller WINDOW (or a finer RESOLUTION).")
        (ny, nx), (top0, left0), (oy, ox) = window_layout(work.shape, window, step)
        if ny <= 0 or nx <= 0:
            raise InputError(f"'{reference}' ({work.rows} x {work.cols} px at {work.dx:g} m) is "
                             f"smaller than one step of {step} px.")
        x0, _, _, y0, _, _ = work.transform
        grid = Grid((x0 + ox * work.dx, step * work.dx, 0.0, y0 - oy * work.dy, 0.0,
                     -step * work.dy), (ny, nx), work.crs_wkt)
        return cls(ny, nx, top0, left0, step, window, grid)


def correlate_strip(task, progress=None):
    """Product rows ``[i0, i1)`` of a pair: ``task = (pair (a _PairJob, or the arguments to
    build one), (i0, i1))``; returns ``(vx, vy, snr, (vx_error, vy_error))`` arrays of those rows
    (m/yr, m/yr, 0-1, m/yr)."""
    source, (c0, c1) = task
    job = source if isinstance(source, _PairJob) else _PairJob(**source)
    progress = ensure(progress)
    layout, readers = job.layout, job.readers
    work = readers[0].work
    step, nx = layout.step, layout.nx
    cols = layout.left0 + step * np.arange(nx)
    # window deformation takes each vector's gradient from its neighbours: the strip is
    # correlated with the rows of windows they need, so that it matches one piece
    i0, i1 = max(0, c0 - job.halo), min(layout.ny, c1 + job.halo)
    progress.check()
    r_lo = layout.top0 + i0 * step - job.margin
    r_hi = layout.top0 + (i1 - 1) * step + layout.window[0] + job.margin
    ref_s = readers[0].read(r_lo, r_hi)
    progress.check()
    sec_s = readers[1].read(r_lo, r_hi)
    for reader in readers:
        reader.ds.FlushCache()  # drop the read blocks: memory stays per strip, not per image
    rows = layout.top0 + step * np.arange(i0, i1) - r_lo
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    prior = job.prior_px
    if job.prior_field is not None:  # the field's offsets, the constant one where it has none
        field = job.prior_field.offsets((i0, 0, i1 - i0, nx), job.years, (work.dy, work.dx))
        prior = tuple(np.where(np.isfinite(f), f, p).ravel() for f, p in zip(field, job.prior_px))
    d_r, d_c, snr, s_r, s_c = correlate_windows(ref_s, sec_s, rr, cc, job.options, prior,
                                                progress=progress.sub(0.1, 1.0), errors=True,
                                                lattice=(i1 - i0, nx, step))
    core = slice(c0 - i0, c1 - i0)
    d_r, d_c, snr, s_r, s_c = (a.reshape(i1 - i0, nx)[core] for a in (d_r, d_c, snr, s_r, s_c))
    vx = d_c * work.dx / job.years
    vy = -d_r * work.dy / job.years
    errors = (s_c * work.dx / job.years, s_r * work.dy / job.years)
    if job.min_snr > 0:
        low = ~(snr >= job.min_snr)
        for a in (vx, vy) + errors:
            a[low] = np.nan
    return vx, vy, snr, errors


def correlate_batch(pairs, folder, progress=None, scheduler=None, **options):
    """Correlate every :class:`core.correlation.pairing.Pair` into ``folder`` (pair products named after the
    pair); returns one index row per pair: pair, reference, secondary, sensor, start, end,
    baseline_days, valid_share, median_snr, path, status ('ok' or why the pair was skipped) and
    worker (the Dask worker that made it, or 'local').

    ``scheduler``: where the pairs run (:mod:`core.cluster`; empty = here, one after the other),
    one pair per task (a batch of one pair: its strips, the product written here, ``worker`` the
    scheduler); each product is written under a temporary name and renamed when complete.
    A pair that fails on its input (e.g. images that do not overlap) is reported and skipped;
    cancellation stops the batch.
    """
    folder = make_folder(folder)
    used, tasks = set(), []
    for pair in pairs:
        tasks.append((pair, os.path.join(folder, unique_name(pair.name, used) + ".tif"), options))
    visible = [folder] + [p for pair in pairs for p in (pair.reference, pair.secondary)]
    visible += _prior_inputs(options.get("prior_field"))
    try:
        if len(tasks) == 1 and parse_scheduler(scheduler) is not None:
            # one pair: its strips are the tasks, the product is written here
            pair, path, _ = tasks[0]
            return [correlate_pair_task((pair, path, dict(options, scheduler=scheduler)),
                                        progress)]
        return run_tasks(correlate_pair_task, tasks, scheduler, progress, visible,
                         key="correlate", stage=lambda k: f"Pair {k + 1} of {len(tasks)}: "
                                                          f"{os.path.basename(tasks[k][1])[:-4]}")
    finally:
        remove_leftovers(folder)  # of attempts whose worker died


def correlate_pair_task(task, progress=None):
    """One pair of a batch: ``task = (pair, product path, correlate_images options)``; returns its
    index row (see :func:`correlate_batch`)."""
    pair, path, options = task
    row = {"pair": os.path.basename(path)[:-len(".tif")], "reference": pair.reference,
           "secondary": pair.secondary, "sensor": pair.sensor, "start": pair.start.isoformat(),
           "end": pair.end.isoformat(), "baseline_days": pair.days, "valid_share": None,
           "median_snr": None, "path": None, "status": "ok",
           "worker": options.get("scheduler") or worker_name()}
    try:
        res = correlate_images(pair.reference, pair.secondary, path, start=pair.start,
                               end=pair.end, sensor=pair.sensor, progress=progress, **options)
        row.update(valid_share=res["valid_share"], median_snr=res["median_snr"], path=path)
    except ClusterError:  # stops the batch, as cancelling does
        raise
    except (InputError, RuntimeError, OSError, MemoryError) as exc:
        # a damaged image (GDAL's RuntimeError), a file system error or a pair too large is
        # this pair's problem: recorded, the batch goes on. Cancelled is none of them:
        # cancelling stops the batch.
        row["status"] = f"skipped: {exc}"
    return row


# ------------------------------------------------------------------ helpers

def _prior_inputs(prior_field):
    """The prior field's files, read by every worker for its pair or strip (none without one)."""
    return prior_field.inputs() if prior_field is not None else []


def _working_grid(grid, resolution):
    """The grid correlated on: the reference grid, or a coarser one of ``resolution`` metres with
    the same origin. Returns ``(grid, (rows factor, cols factor))`` in input px per working px."""
    if resolution is None or float(resolution) <= 0:
        return grid, (1.0, 1.0)
    res = float(resolution)
    if res < max(grid.dx, grid.dy) * (1 - 1e-9):  # both axes must be down-sampled
        raise InputError(f"The target resolution {res:g} m is finer than the images' "
                         f"{grid.dx:g} x {grid.dy:g} m pixels: only down-sampling is supported.")
    fr, fc = res / grid.dy, res / grid.dx
    if fr < 1 + 1e-9 and fc < 1 + 1e-9:
        return grid, (1.0, 1.0)
    x0, _, _, y0, _, _ = grid.transform
    work = Grid((x0, res, 0.0, y0, 0.0, -res), (int(grid.rows // fr), int(grid.cols // fc)),
                grid.crs_wkt)
    return work, (fr, fc)


def _require_memory(work, window, step, tile, margin, method, options):
    """Refuse at once a search range or window whose strips and windows cannot fit in memory:
    two pre-processed image strips (with temporaries, x3) and the windows in work."""
    strip_rows = tile * step + window[0] + 2 * margin
    strips = 3 * 2 * channels(method) * 4 * work.cols * strip_rows
    needed = strips + working_memory(options, channels(method))
    require_memory(needed, f"WINDOW {window[1]} x {window[0]} px with a search range of "
                   f"{options.search_px:g} px (SEARCH)",
                   "Use a smaller SEARCH (a known offset goes into PRIOR_EAST / PRIOR_NORTH "
                   "instead), a smaller WINDOW or a coarser RESOLUTION.")


def _require_content(ds, band, path, size=512):
    """Raise :class:`InputError` when a band has no valid pixel or no contrast (decimated read)."""
    b = ds.GetRasterBand(band)
    arr = b.ReadAsArray(buf_xsize=min(ds.RasterXSize, size),
                        buf_ysize=min(ds.RasterYSize, size)).astype(np.float64)
    nodata = b.GetNoDataValue()
    ok = np.isfinite(arr)
    if nodata is not None and not math.isnan(nodata):
        ok &= arr != nodata
    if not ok.any():
        raise InputError(f"'{path}' is empty: band {band} holds only NoData.")
    if np.ptp(arr[ok]) == 0:
        raise InputError(f"'{path}' has no texture: band {band} is constant ({arr[ok][0]:g}).")
    ds.FlushCache()  # without overviews the decimated read went through every block


def _hist_median(hist):
    """Median of values binned in ``hist`` over [0, 1] (NaN when empty)."""
    total = hist.sum()
    if total == 0:
        return float("nan")
    k = int(np.searchsorted(np.cumsum(hist), total / 2.0))
    return (k + 0.5) / hist.size


class _StripReader:
    """Rows of one image on the working grid, pre-processed, NaN outside the image.

    The image is read on the reference grid (directly when it is on it, else warped with
    Lanczos), down-sampled when the working grid is coarser, then filtered with enough halo
    rows that strip edges do not show.
    """

    def __init__(self, ds, band, ref_grid, work, factors, method, size, same=True):
        self.ds, self.band, self.ref_grid, self.work = ds, band, ref_grid, work
        self.factors, self.method, self.size, self.same = factors, method, size, same
        self.halo = halo(method, size)

    def read(self, r0, r1):
        """Working-grid rows ``[r0, r1)``, full width, pre-processed (2-D, or 3-D channels)."""
        h = self.halo
        raw = self._work_rows(r0 - h, r1 + h)
        out = preprocess_apply(raw, self.method, self.size)
        return out[..., h:h + (r1 - r0), :]

    def _work_rows(self, r0, r1):
        fr, fc = self.factors
        if fr == 1.0 and fc == 1.0:
            return self._ref_rows(r0, r1)
        pad = int(math.ceil(4 * antialias_sigma(fr))) + 3  # Gaussian reach + cubic spline
        f0 = int(math.floor(r0 * fr)) - pad
        f1 = int(math.ceil(r1 * fr)) + pad
        fine = self._ref_rows(f0, f1)
        return downsample(fine, fr, fc, out_shape=(r1 - r0, self.work.cols),
                          row_offset=r0 * fr - f0)

    def _ref_rows(self, r0, r1):
        """Rows ``[r0, r1)`` of the reference grid (NaN beyond its edges)."""
        g = self.ref_grid
        if not self.same:
            return warp_to_grid(self.ds, g, "lanczos", bands=[self.band],
                                window=(r0, 0, r1 - r0, g.cols))[0]
        out = np.full((r1 - r0, g.cols), np.nan, np.float32)
        a, b = max(r0, 0), min(r1, g.rows)
        if b > a:
            out[a - r0:b - r0] = read_band(self.ds, self.band, (a, 0, b - a, g.cols))
        return out
