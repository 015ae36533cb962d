"""Stable-ground uncertainty of velocity products: how far from zero and how spread the speeds are
where the ground does not move.

On stable ground the true velocity is zero, so every value there is error. Per band (time step)
of a pair product or a velocity stack, over the stable pixels (optionally a seeded random sample of
them), the statistics are, in m/yr:

- ``n``: pixels used; ``mean``; ``std`` (sample standard deviation, ddof=1);
- ``se`` = std / √n, the standard error of the mean, and ``e`` = √(SE² + MEAN²), the error the
  paper reports (a bias term and a random term);
- ``median`` and ``nmad`` = 1.4826 · median(|x − median(x)|), the robust spread (equals σ for
  Gaussian noise);
- ``incorrect_share``: the share of valid stable pixels whose speed exceeds a threshold (incorrect
  matches). Those pixels are wrong matches, not noise: they are counted there and left out of the
  other statistics. With no threshold every valid stable pixel is kept (and the share is NaN).

Why the threshold matters for NMAD: NMAD has a 50 % breakdown point but is not unbiased under
contamination — with 10 % gross outliers it reads 1.13 σ (symmetric) to 1.14 σ (one-sided).

Speeds on stable ground are ``hypot(vx + nx, vy + ny)``: a positive (Rayleigh/Rician) quantity, so
the stable *mean of v* is not a bias but mostly the noise level (≈ 1.25 σ for zero-mean component
noise σ). The components ``vx``/``vy`` (pair products carry them; stacks may come with companion
vx/vy stacks) give the bias and σ directly: they are summarised too when present.

Per-pixel errors: when a product comes with its 1σ (a pair product's ``vx_error``/``vy_error``
bands, the speed's from them along the flow; a stack's error stack, named by its ``ERROR_STACK``
metadata or found beside it as ``<stem>_error.tif``, or given), the rows add ``mean_sigma`` (m/yr)
and ``within_196``, the share of the pixels whose truth, zero, lies within ±1.96σ of the value: a
calibrated error gives 95 % for the components. The speed on stable ground is the magnitude of
noisy components (Rayleigh), for which a calibrated σ gives 1 − exp(−1.96²/2) = 85.4 %.

Everything is read band by band in row strips over the stable pixels' bounding box, so memory is
bounded by one strip plus the stable values of one band.
"""

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from ..arrays.nanstats import nmad
from ..arrays.propagation import speed_error
from ..io.names import source_name
from ..errors import InputError
from ..io.grid import Grid
from ..io.pixel_series import error_stack_path
from ..io.products import (ERROR_BANDS, pair_band_index, read_pair_info, read_stack_info,
                           to_m_per_yr)
from ..progress import ensure
from ..io.raster import open_raster
from ..io.reader import ComponentReader, GridReader
from ..io.stable import stable_mask

DEFAULT_SAMPLE = 10000  # points of the optional random sample (the paper's choice)
STRIP_PIXELS = 1 << 22  # pixels per read window: bounds memory to a few tens of MB per band
WORKERS = 2  # bands summarised at once: GDAL decoding and numpy's selection release the GIL
QUANTITY_ORDER = ("v", "vx", "vy")
STAT_COLUMNS = ("n", "mean", "std", "se", "e", "median", "nmad")
# the calibration check of a per-pixel error (NaN without one): mean 1σ (m/yr) and the share of
# pixels whose truth (here 0) lies within ±1.96σ of the value
ERROR_COLUMNS = ("mean_sigma", "within_196")
TABLE_COLUMNS = ("product", "quantity", "band", "interval", "n_valid") + STAT_COLUMNS + (
    "incorrect_share",) + ERROR_COLUMNS


# ---------------------------------------------------------------------------- statistics

def describe(values):
    """``n, mean, std, se, e, median, nmad`` of the finite values of a 1-D array (NaN when empty).

    ``std`` is the sample standard deviation (ddof=1); ``se = std/√n``; ``e = √(se² + mean²)``.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    finite = np.isfinite(x)
    if not finite.all():
        x = x[finite]
    n = int(x.size)
    if n == 0:
        return dict(n=0, **{k: float("nan") for k in STAT_COLUMNS[1:]})
    mean = float(x.mean())
    dev = x - mean
    std = float(np.sqrt(dev @ dev / (n - 1))) if n > 1 else float("nan")
    se = std / np.sqrt(n)
    median = float(np.median(x))
    return dict(n=n, mean=mean, std=std, se=float(se), e=float(np.hypot(se, mean)), median=median,
                nmad=nmad(x, median))


def expected_speed(true_speed, sigma):
    """Mean measured speed (m/yr) where the true speed is ``true_speed`` and each component carries
    independent Gaussian noise of std ``sigma`` (the Rician mean; σ·√(π/2) ≈ 1.25 σ on stable
    ground, ≈ true speed + σ²/(2·speed) on fast ice)."""
    t = np.square(np.asarray(true_speed, dtype=np.float64)) / (4.0 * sigma ** 2)
    return sigma * np.sqrt(np.pi / 2) * ((1 + 2 * t) * special.i0e(t) + 2 * t * special.i1e(t))


# ---------------------------------------------------------------------------- velocity sources

def _quantity_from_name(path):
    """'vx', 'vy' or 'v' from a file name ending ``_vx``/``_vy``/``_v`` (ITS_LIVE style), or None."""
    stem = os.path.splitext(os.path.basename(str(path)))[0].lower()
    for q in ("vx", "vy", "v"):
        if stem.endswith("_" + q) or stem.endswith("-" + q):
            return q
    return None


def _band_names(ds):
    """Band descriptions of an open dataset, stripped and lower-case."""
    return [ds.GetRasterBand(i + 1).GetDescription().strip().lower() for i in range(ds.RasterCount)]


def _describe_file(path):
    """What a raster holds: ``(grid, labels, intervals or None, {quantity: [bands]}, units)``.

    A pair product (bands vx, vy, v, snr) gives three quantities and one time step; a velocity
    stack (band descriptions START/END) its QUANTITY with one band per step; any other raster is
    one quantity (QUANTITY metadata, else the file-name suffix _vx/_vy/_v, else v), one step per
    band.
    """
    ds = open_raster(path, "velocity raster")
    meta = ds.GetMetadata() or {}
    units = meta.get("UNITS", "m/yr")
    descs = _band_names(ds)
    grid = Grid.from_dataset(ds, path)
    if set(QUANTITY_ORDER) <= set(descs):
        bands = {q: [pair_band_index(path, q)] for q in QUANTITY_ORDER}
        if meta.get("START_DATE") and meta.get("END_DATE"):
            iv = read_pair_info(path).interval
            return grid, [str(iv)], [iv], bands, units
        return grid, [os.path.basename(str(path))], None, bands, units
    count = ds.RasterCount
    try:
        info = read_stack_info(path)
        labels, intervals = [str(iv) for iv in info.intervals], list(info.intervals)
    except InputError:  # not a stack: plain bands (e.g. an external velocity map)
        labels = [descs[i] or f"band {i + 1}" for i in range(count)]
        intervals = None
    quantity = meta.get("QUANTITY") or _quantity_from_name(path) or "v"
    if quantity not in QUANTITY_ORDER:
        raise InputError(f"'{path}': QUANTITY '{quantity}' is not one of v, vx, vy.")
    return grid, labels, intervals, {quantity: list(range(1, count + 1))}, units


@dataclass
class VelocitySource:
    """One product to assess: a grid, time steps and, per quantity (v, vx, vy), a file and bands.

    ``labels`` name the steps (date interval 'START/END' or band description); ``intervals`` are
    the steps' :class:`~core.io.dates.Interval` (None when the files carry no dates). Values read are
    converted from each file's units to m/yr.
    """

    name: str
    grid: Grid
    labels: list
    intervals: list
    layers: dict  # quantity -> (path, [1-based band per step])
    units: dict = field(default_factory=dict)  # quantity -> units of its file
    errors: dict = field(default_factory=dict)  # quantity -> (path, [band per step], units)
    # (quantity, target grid) -> its reader; readers keep one dataset per thread open, so GDAL's
    # block cache serves band after band
    _readers: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def steps(self):
        return len(self.labels)

    @property
    def quantities(self):
        return [q for q in QUANTITY_ORDER if q in self.layers]

    @property
    def main_quantity(self):
        """The speed when present, else the only component."""
        return self.quantities[0]

    def band(self, quantity, step):
        """``(path, 1-based band)`` of ``quantity`` at time step ``step`` (0-based)."""
        path, bands = self.layers[quantity]
        return path, bands[step]

    def read(self, quantity, step, window=None, grid=None):
        """One step of ``quantity`` (float32, file units, NaN NoData), optionally onto ``grid``.

        ``window`` is ``(row_off, col_off, rows, cols)`` of the source grid, or of ``grid`` when
        given; a different ``grid`` is reached with nearest-neighbour resampling (values kept),
        vx/vy turned to its CRS's axes (:class:`core.io.reader.ComponentReader`, which needs the
        other component: this source's, or the file named like it with _vx/_vy).
        """
        key = (quantity, grid)
        if key not in self._readers:
            self._readers[key] = self._reader(quantity, grid)
        return self._readers[key].band(self.band(quantity, step)[1], window)

    def _reader(self, quantity, grid):
        path, bands = self.layers[quantity]
        other = {"vx": "vy", "vy": "vx"}.get(quantity)
        companion = companion_bands = None
        if other in self.layers:
            companion, other_bands = self.layers[other]
            companion_bands = dict(zip(bands, other_bands))
        return ComponentReader(path, grid, quantity, companion=companion,
                               companion_bands=companion_bands, what="velocity raster")

    def to_m_per_yr(self, quantity, values):
        """``values`` of ``quantity`` (file units) in m/yr."""
        return to_m_per_yr(values, self.units[quantity])

    def has_error(self, quantity):
        """Whether a per-pixel 1σ of ``quantity`` is known (the speed's also from both
        components' errors)."""
        return quantity in self.errors or (quantity == "v" and "v" in self.layers
                                           and {"vx", "vy"} <= set(self.errors))

    def read_error(self, quantity, step, window=None, grid=None):
        """The 1σ (m/yr, float32) of ``quantity`` at step ``step`` (as :meth:`read`), or None
        when unknown; the speed's from the components' errors along the flow when it has no error
        layer of its own. Errors are not turned across a change of CRS (nearest neighbour)."""
        if quantity not in self.errors:
            if not self.has_error(quantity):
                return None
            vx, vy = (self.to_m_per_yr(q, self.read(q, step, window, grid)) for q in ("vx", "vy"))
            ex, ey = (self.read_error(q, step, window, grid) for q in ("vx", "vy"))
            return speed_error(vx, vy, ex, ey)
        path, bands, units = self.errors[quantity]
        key = ("error", quantity, grid)
        if key not in self._readers:
            self._readers[key] = GridReader(path, grid, "error stack")
        values = self._readers[key].read(bands[step], window)
        return np.asarray(to_m_per_yr(values, units), np.float32)


def _error_layers(path, bands, given=None):
    """``{quantity: (path, bands, units)}`` of the per-pixel 1σ of the raster ``path`` whose
    quantities are ``bands`` (see :func:`_describe_file`): a pair product's vx_error/vy_error
    bands; else ``given`` (an error stack), or the error stack found by name beside a stack
    (:func:`core.io.pixel_series.error_stack_path`). Empty when none exists."""
    ds = open_raster(path, "velocity raster")
    units = (ds.GetMetadata() or {}).get("UNITS", "m/yr")
    if len(bands) > 1:  # a pair product
        descs = _band_names(ds)
        if all(n in descs for n in ERROR_BANDS):
            return {q: (str(path), [descs.index(n) + 1], units)
                    for q, n in zip(("vx", "vy"), ERROR_BANDS)}
        return {}
    (quantity, steps), = bands.items()
    if given is None:
        try:
            given = error_stack_path(path, read_stack_info(path))
        except InputError:  # a plain raster: its error must be given
            given = None
        if given is None:
            return {}
    err = open_raster(given, "error stack")
    if (err.RasterCount, err.RasterYSize, err.RasterXSize) != (len(steps), ds.RasterYSize,
                                                               ds.RasterXSize):
        raise InputError(f"The error stack '{given}' does not match '{path}': it needs the same "
                         f"size and one band per time step ({len(steps)}).")
    return {quantity: (str(given), list(range(1, len(steps) + 1)),
                       (err.GetMetadata() or {}).get("UNITS", "m/yr"))}


def open_velocity_source(path=None, vx=None, vy=None, units=None, name=None, error=None):
    """A :class:`VelocitySource` from a main raster and/or companion vx / vy rasters.

    ``path`` is a pair product (it carries v, vx, vy), a velocity stack or a plain velocity raster;
    ``vx``/``vy`` are companion stacks/rasters on the same grid with as many bands (the speed is
    then also available as ``hypot(vx, vy)`` when ``path`` is None). ``units`` ('m/yr' or 'm/day')
    overrides the files' UNITS metadata (default m/yr), e.g. for external maps in m/day.
    ``error`` is the per-pixel 1σ stack of ``path`` (default: found as :func:`_error_layers`
    says; the companions' error stacks are found by name).
    """
    if path is None and (vx is None or vy is None):
        raise InputError("Give a velocity raster, or both vx and vy rasters.")
    if units:
        to_m_per_yr(1.0, units)  # unknown units fail here, naming them
    layers, unit_of, errors, main = {}, {}, {}, None
    for role, p in (("main", path), ("vx", vx), ("vy", vy)):
        if p is None:
            continue
        grid, labels, intervals, bands, file_units = _describe_file(p)
        if role != "main":
            if len(bands) != 1:
                raise InputError(f"The {role} companion '{p}' is a pair product: give a {role} "
                                 "stack or raster.")
            bands = {role: next(iter(bands.values()))}
        for q, layer in _error_layers(p, bands, error if role == "main" else None).items():
            errors.setdefault(q, layer)
        if main is None:
            main = (grid, labels, intervals, p)
        else:
            if not grid.same_as(main[0]):
                raise InputError(f"'{p}' is not on the grid of '{main[3]}': companion vx/vy "
                                 "rasters must share the grid of the speed raster.")
            if len(labels) != len(main[1]):
                raise InputError(f"'{p}' has {len(labels)} band(s) but '{main[3]}' has "
                                 f"{len(main[1])}: companions need one band per time step.")
        for q, b in bands.items():
            if q in layers:
                raise InputError(f"'{p}' gives {q}, already given by '{layers[q][0]}'.")
            layers[q] = (str(p), b)
            unit_of[q] = units or file_units
    grid, labels, intervals, first = main
    return VelocitySource(name or source_name(first), grid, labels, intervals, layers, unit_of,
                          errors)


def is_pair_product(path):
    """True when ``path`` has the bands of a pair product (vx, vy, v by description)."""
    return set(QUANTITY_ORDER) <= set(_band_names(open_raster(path, "velocity raster")))


def open_sources(paths, vx=(), vy=(), units=None, errors=()):
    """Sources of several products, with optional companion vx / vy rasters.

    Pair products carry their components; the companions (``vx`` and ``vy``, each empty or one per
    product that is *not* a pair product, in the same order) complete stacks and velocity rasters.
    ``errors``, empty or one per such product too, are their per-pixel 1σ stacks (default: found
    by name, :func:`_error_layers`).
    """
    paths, vx, vy = list(paths), list(vx or ()), list(vy or ())
    errors = list(errors or ())
    if not paths:
        raise InputError("No velocity product given.")
    others = [p for p in paths if not is_pair_product(p)]
    for name, comp in (("vx", vx), ("vy", vy), ("error", errors)):
        if comp and len(comp) != len(others):
            raise InputError(f"{len(comp)} {name} companion(s) for {len(others)} product(s) that "
                             f"are not pair products: give one {name} raster per stack/raster, in "
                             "the same order, or none.")
    sources, k = [], 0
    for p in paths:
        if p in others:
            sources.append(open_velocity_source(p, vx[k] if vx else None, vy[k] if vy else None,
                                                units, error=errors[k] if errors else None))
            k += 1
        else:
            sources.append(open_velocity_source(p, units=units))
    return sources


def as_source(item):
    """``item`` itself when it is a :class:`VelocitySource`, else the source opened from its path."""
    return item if isinstance(item, VelocitySource) else open_velocity_source(item)


# ---------------------------------------------------------------------------- stable ground

def _strips(mask):
    """Read windows (row strips) over the bounding box of ``mask``'s True pixels, with their masks."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return []
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    height = max(1, STRIP_PIXELS // (c1 - c0))
    out = []
    for r in range(r0, r1, height):
        nr = min(height, r1 - r)
        m = mask[r:r + nr, c0:c1]
        if m.any():
            out.append(((int(r), int(c0), int(nr), int(c1 - c0)), m))
    return out


def _gather(source, step, strips):
    """Values (m/yr, float64) of every quantity of ``source`` at step ``step`` on the masked
    pixels, and their 1σ (``{quantity: array}`` of the quantities that have one)."""
    out, sigma = {}, {}
    for q in source.quantities:
        parts = [source.read(q, step, window)[m].astype(np.float64) for window, m in strips]
        values = parts[0] if len(parts) == 1 else np.concatenate(parts)
        out[q] = np.asarray(source.to_m_per_yr(q, values), dtype=np.float64)
        if source.has_error(q):
            parts = [source.read_error(q, step, window)[m].astype(np.float64)
                     for window, m in strips]
            sigma[q] = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return out, sigma


def error_check(values, sigma, truth=0.0):
    """``{'mean_sigma', 'within_196'}`` of values (m/yr) with their 1σ ``sigma`` (None: NaN):
    the mean σ and the share of the pixels (both finite) with ``|value − truth| ≤ 1.96 σ``."""
    if sigma is None:
        return dict.fromkeys(ERROR_COLUMNS, float("nan"))
    ok = np.isfinite(values) & np.isfinite(sigma) & np.isfinite(truth)
    if not ok.any():
        return dict.fromkeys(ERROR_COLUMNS, float("nan"))
    gap = np.abs(values - truth)
    within = gap[ok] <= 1.96 * sigma[ok]
    return {"mean_sigma": float(np.mean(sigma[ok])), "within_196": float(np.mean(within))}


def _speed(values):
    """Speed at each pixel: v when given, else hypot(vx, vy), else |the only component|."""
    if "v" in values:
        return values["v"]
    if "vx" in values and "vy" in values:
        return np.hypot(values["vx"], values["vy"])
    return np.abs(next(iter(values.values())))


def stable_statistics(source, stable, threshold=None, sample_size=None, seed=0, progress=None):
    """Stable-ground statistics of every band and quantity of ``source`` (one row per pair).

    ``stable`` is a boolean mask on ``source.grid``. Per time step, the valid pixels are the stable
    pixels where every quantity is finite; with ``sample_size`` a seeded random sample of that many
    of them is drawn (the same seed gives the same points). ``threshold`` (m/yr) marks pixels whose
    speed exceeds it as incorrect matches: counted in ``incorrect_share``, left out of the other
    statistics. Rows: ``product, quantity, band (1-based step), interval, n_valid`` then
    :data:`STAT_COLUMNS` (m/yr) and ``incorrect_share`` (0–1, NaN without threshold).
    """
    progress = ensure(progress)
    stable = np.asarray(stable, dtype=bool)
    if stable.shape != source.grid.shape:
        raise InputError(f"The stable mask is {stable.shape} but '{source.name}' is "
                         f"{source.grid.shape}.")
    strips = _strips(stable)
    if not strips:
        raise InputError(f"No stable-ground pixel falls on the grid of '{source.name}'.")
    if sample_size is not None and int(sample_size) < 1:
        raise InputError(f"The sample size must be at least 1 (got {sample_size}).")
    rows, pending = [], deque()
    with ThreadPoolExecutor(WORKERS) as pool:
        try:
            for step in range(source.steps):
                pending.append(pool.submit(_step_rows, source, step, strips, threshold,
                                           sample_size, seed))
                # at most WORKERS bands in flight: memory stays bounded
                while len(pending) >= WORKERS or (pending and step == source.steps - 1):
                    rows += pending.popleft().result()
                    progress.update(len(rows) / (source.steps * len(source.quantities)))
        except BaseException:  # cancelled or failed: drop the bands not started
            for f in pending:
                f.cancel()
            raise
    return rows


def _step_rows(source, step, strips, threshold, sample_size, seed):
    """The rows of one time step (see :func:`stable_statistics`); runs in a worker thread."""
    values, sigma = _gather(source, step, strips)
    valid = np.logical_and.reduce([np.isfinite(v) for v in values.values()])
    n_valid = int(np.count_nonzero(valid))
    keep = None
    if sample_size is not None and n_valid > sample_size:
        rng = np.random.default_rng([int(seed), step])
        keep = np.sort(rng.choice(np.flatnonzero(valid), int(sample_size), replace=False))
        n_valid = int(keep.size)
    elif n_valid < valid.size:
        keep = valid
    if keep is not None:
        values = {q: v[keep] for q, v in values.items()}
        sigma = {q: v[keep] for q, v in sigma.items()}
    share = float("nan")
    if threshold is not None:
        incorrect = _speed(values) > float(threshold)
        share = float(incorrect.mean()) if n_valid else float("nan")
        if incorrect.any():
            values = {q: v[~incorrect] for q, v in values.items()}
            sigma = {q: v[~incorrect] for q, v in sigma.items()}
    return [dict(product=source.name, quantity=q, band=step + 1, interval=source.labels[step],
                 n_valid=n_valid, **describe(values[q]), incorrect_share=share,
                 **error_check(values[q], sigma.get(q)))
            for q in source.quantities]


def band_means(rows, keys=("product", "quantity"), summed=("n_valid", "n"),
               averaged=STAT_COLUMNS[1:] + ("incorrect_share",) + ERROR_COLUMNS):
    """Summary rows (band 0): per group of ``keys``, the mean over bands of each ``averaged``
    column (NaN bands ignored) and the sum of each ``summed`` one; only groups of more than one
    band get a summary. The defaults fit the stable-ground table; the smoothness table uses it too.
    """
    groups = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    out = []
    for group, sel in groups.items():
        if len(sel) < 2:
            continue
        row = dict(zip(keys, group), band=0, interval=f"mean of {len(sel)} bands")
        row.update({k: sum(r[k] for r in sel) for k in summed})
        for k in averaged:
            vals = np.array([r.get(k, np.nan) for r in sel], dtype=float)
            row[k] = float(np.nanmean(vals)) if np.isfinite(vals).any() else float("nan")
        out.append(row)
    return out


def stable_uncertainty(sources, polygons=None, mask_raster=None, threshold=None,
                       sample_size=None, seed=0, summary=True, progress=None):
    """The stable-ground table of several sources (comparison of products in one run).

    ``sources`` are :class:`VelocitySource` objects or paths (opened with
    :func:`open_velocity_source`); stable ground is ``polygons`` and/or ``mask_raster`` (nonzero =
    stable, any grid; see :func:`core.io.stable.stable_mask`), put on each source's grid. With
    ``summary`` the per-band rows of each multi-band product are followed by their mean (band 0,
    see :func:`band_means`).
    """
    progress = ensure(progress)
    sources = [as_source(s) for s in sources]
    if not sources:
        raise InputError("No velocity product given.")
    rows = []
    masks = []  # (grid, mask): sources on one grid share one rasterisation
    for k, src in enumerate(sources):
        mask = next((m for g, m in masks if g.same_as(src.grid)), None)
        if mask is None:
            mask = stable_mask(src.grid, polygons, mask_raster)
            masks.append((src.grid, mask))
        part = stable_statistics(src, mask, threshold, sample_size, seed,
                                 progress.sub(k / len(sources), (k + 1) / len(sources),
                                              f"Product {k + 1} of {len(sources)}: {src.name}"))
        rows += part + (band_means(part) if summary else [])
    return rows
