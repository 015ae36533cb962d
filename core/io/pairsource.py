"""One velocity pair to post-process: a pair product, or two single-band rasters (vx and vy).

External maps (e.g. a feature-tracking result in m/day as two GeoTIFFs) come in with declared
units and are read in m/yr, window by window, like the plugin's own pair products. Their dates
come from the caller, the rasters' metadata (START_DATE/END_DATE) or the file name, which must
then hold two dates (``20180304-20180405_vx.tif``, ``..._2018-03-04_2018-04-05...``).
"""

import os
import re

import numpy as np

from .dates import Interval, baseline_days, baseline_years, parse_date
from ..errors import InputError
from .grid import Grid
from .products import (ERROR_BANDS, UNITS, declared_units, pair_band_index, read_pair_info,
                       to_m_per_yr)
from .raster import check_readable, open_raster, read_band
from .reader import GridReader

# metadata of a pair's 1σ per component (m/yr, the whole pair), as ITS_LIVE granules give it
ERROR_METADATA = ("VX_ERROR", "VY_ERROR")
_DATE_TOKEN = re.compile(r"(?<!\d)(\d{4}-\d{2}-\d{2}|\d{8})(?!\d)")


def dates_from_name(name):
    """The first two valid dates in a file's base name as ``(start, end)``, or None."""
    found = []
    for token in _DATE_TOKEN.findall(os.path.basename(str(name))):
        try:
            found.append(parse_date(token))
        except InputError:
            continue  # an 8-digit number that is not a date
    return (found[0], found[1]) if len(found) >= 2 else None


def check_units(units, path=None, metadata=None):
    """The declared velocity units of an input ('m/yr' or 'm/day'), normalised;
    :class:`InputError` when they are unknown, or when the UNITS item of ``metadata`` (the
    header of ``path``) says otherwise."""
    declared = str(units).strip().lower()
    if declared not in UNITS:
        raise InputError(f"Unknown velocity units '{units}': use m/yr or m/day.")
    file_units = declared_units(metadata, path, declared)
    if UNITS[file_units] != UNITS[declared]:
        raise InputError(f"'{path}' says its units are {file_units} but {declared} was declared: "
                         f"set the input units to {file_units}.")
    return declared


class PairSource:
    """Read vx, vy (m/yr, east/north) and snr of a pair window by window.

    ``path`` is a pair product, or a single-band vx raster when ``vy_path`` is given. ``units``
    declares the velocity units of the input ('m/yr' or 'm/day'); a pair product whose UNITS
    metadata contradicts it is refused. ``start``/``end`` override the dates; ``sensor`` the
    sensor name. ``snr`` is NaN everywhere when the input has none (two single-band rasters).

    Per-vector errors (1σ of vx and vy, m/yr; :meth:`read_errors`, :meth:`warp_errors`) come from
    the bands ``vx_error``/``vy_error`` (the correlator's), else a ``v_error`` band (ITS_LIVE's
    speed error, taken for both components: the speed's error is a component's along the flow),
    else the metadata ``VX_ERROR``/``VY_ERROR`` (one value for the pair); :attr:`has_errors` says
    whether any exists.
    """

    def __init__(self, path, vy_path=None, units="m/yr", start=None, end=None, sensor=None):
        self.path = str(path)
        self.vy_path = str(vy_path) if vy_path else None
        self.units = check_units(units)
        self._open = {}
        self._error_bands = self._error_values = None
        self._on = {}  # target grid -> its GridReaders (datasets kept open between windows)
        if self.vy_path:
            self._init_components(start, end, sensor)
        else:
            self._init_product(start, end, sensor)
        baseline_days(self.start, self.end, f"'{self.path}'")

    def _init_product(self, start, end, sensor):
        ds = open_raster(self.path, "pair product")
        if ds.RasterCount < 2:
            raise InputError(f"'{self.path}' has a single band: it is not a pair product (bands "
                             "vx, vy, v, snr); a single-band vx raster needs its vy raster "
                             "(INPUT_VY, where the algorithm has it).")
        info = read_pair_info(self.path, start, end, sensor)
        check_units(self.units, self.path, info.metadata)
        self.grid, self.start, self.end = info.grid, info.start, info.end
        self.sensor, self.metadata = info.sensor, info.metadata
        self._bands = {name: pair_band_index(self.path, name) for name in ("vx", "vy")}
        try:
            self._bands["snr"] = pair_band_index(self.path, "snr")
        except InputError:
            self._bands["snr"] = None
        found = {}
        for name in ERROR_BANDS + ("v_error",):
            try:
                found[name] = pair_band_index(self.path, name)
            except InputError:
                pass
        if all(n in found for n in ERROR_BANDS):
            self._error_bands = tuple(found[n] for n in ERROR_BANDS)
        elif "v_error" in found:
            self._error_bands = (found["v_error"],) * 2
        values = [_positive(self.metadata.get(k)) for k in ERROR_METADATA]
        if all(v is not None for v in values):
            self._error_values = tuple(values)

    def _init_components(self, start, end, sensor):
        for p, what in ((self.path, "vx raster"), (self.vy_path, "vy raster")):
            self._open[p] = open_raster(p, what)  # kept for read(), see _dataset
            if self._open[p].RasterCount != 1:
                raise InputError(f"The {what} '{p}' must have a single band.")
            check_units(self.units, p, self._open[p].GetMetadata())
        self.grid = Grid.from_dataset(self._open[self.path], self.path)
        if not self.grid.same_as(Grid.from_dataset(self._open[self.vy_path], self.vy_path)):
            raise InputError(f"The vx raster '{self.path}' and the vy raster '{self.vy_path}' are "
                             "not on the same grid.")
        meta = self._open[self.path].GetMetadata() or {}
        from_name = dates_from_name(self.path) or dates_from_name(self.vy_path)
        if not start:
            start = meta.get("START_DATE") or (from_name[0] if from_name else None)
        if not end:
            end = meta.get("END_DATE") or (from_name[1] if from_name else None)
        if not start or not end:
            raise InputError(
                f"No dates for '{self.path}': its name holds no two dates (e.g. "
                "20180304-20180405_vx.tif) and it has no START_DATE/END_DATE metadata. Give the "
                "start and end dates of the pair.")
        self.start, self.end = parse_date(start), parse_date(end)
        self.sensor = sensor or meta.get("SENSOR", "")
        self.metadata = {}
        self._bands = None

    @property
    def interval(self):
        return Interval(self.start, self.end)

    @property
    def baseline_years(self):
        return baseline_years(self.start, self.end, f"'{self.path}'")

    @property
    def has_snr(self):
        return bool(self._bands and self._bands.get("snr"))

    @property
    def has_errors(self):
        """Whether the pair states per-vector (or per-pair) errors."""
        return self._error_bands is not None or self._error_values is not None

    def pixel_speed(self):
        """The speed (m/yr) of one grid pixel of displacement over the pair's baseline."""
        return max(self.grid.dx, self.grid.dy) / self.baseline_years

    def _dataset(self, path):
        """An open dataset per file, kept so GDAL's block cache serves overlapping tile reads."""
        if path not in self._open:
            self._open[path] = open_raster(path)
        return self._open[path]

    def read(self, window=None, snr=True):
        """``(vx, vy, snr)`` float32 arrays of a window (row_off, col_off, rows, cols), m/yr.
        ``snr=False`` skips reading it (NaN)."""
        if self._bands is None:
            vx = read_band(self._dataset(self.path), 1, window)
            vy = read_band(self._dataset(self.vy_path), 1, window)
            q = None
        else:
            ds = self._dataset(self.path)
            vx = read_band(ds, self._bands["vx"], window)
            vy = read_band(ds, self._bands["vy"], window)
            q = read_band(ds, self._bands["snr"], window) if snr and self._bands["snr"] else None
        vx = np.asarray(to_m_per_yr(vx, self.units), np.float32)
        vy = np.asarray(to_m_per_yr(vy, self.units), np.float32)
        return vx, vy, q if q is not None else np.full(vx.shape, np.nan, np.float32)

    def _readers(self, grid):
        """The GridReaders of the input file(s) onto ``grid``, made on first need."""
        if grid not in self._on:
            paths = (self.path,) if self.vy_path is None else (self.path, self.vy_path)
            self._on[grid] = [GridReader(p, grid) for p in paths]
        return self._on[grid]

    def warp(self, grid, window=None):
        """``(vx, vy, snr)`` in m/yr resampled by nearest neighbour onto ``grid`` (or a window
        of it), any CRS (components turned to the new CRS's axes, see :mod:`core.io.reader`);
        NaN outside the pair."""
        readers = self._readers(grid)
        if self._bands is None:
            vx, vy = readers[0].read_vector(1, 1, readers[1], window)
            snr = np.full(vx.shape, np.nan, np.float32)
        else:
            names = [n for n in ("vx", "vy", "snr") if self._bands[n]]
            data = readers[0].read_bands([self._bands[n] for n in names], window)
            vx, vy = readers[0].turn(data[0], data[1], window)
            snr = data[2] if len(names) == 3 else np.full(vx.shape, np.nan, np.float32)
        return (np.asarray(to_m_per_yr(vx, self.units), np.float32),
                np.asarray(to_m_per_yr(vy, self.units), np.float32), snr)

    def read_errors(self, window=None):
        """``(vx_error, vy_error)`` float32 1σ (m/yr) of a window, NaN where unknown; None when
        the pair states no errors (see the class doc)."""
        if self._error_bands is not None:
            ds = self._dataset(self.path)
            ex, ey = (read_band(ds, b, window) for b in self._error_bands)
        elif self._error_values is not None:
            shape = tuple(window[2:]) if window is not None else self.grid.shape
            ex, ey = (np.full(shape, v, np.float32) for v in self._error_values)
        else:
            return None
        return (np.asarray(to_m_per_yr(ex, self.units), np.float32),
                np.asarray(to_m_per_yr(ey, self.units), np.float32))

    def warp_errors(self, grid, window=None):
        """:meth:`read_errors` resampled like :meth:`warp` (nearest neighbour, the same source
        pixels) onto ``grid`` (or a window of it), the variances turned to the grid's axes."""
        if not self.has_errors:
            return None
        if self.grid.same_as(grid):
            return self.read_errors(window)
        reader = self._readers(grid)[0]
        shape = tuple(window[2:]) if window is not None else grid.shape
        if self._error_bands is not None:
            ex, ey = reader.read_bands(list(self._error_bands), window)
        else:
            ex, ey = (np.full(shape, v, np.float32) for v in self._error_values)
            inside = np.isfinite(reader.read_bands([self._bands["vx"]], window)[0])
            ex[~inside] = ey[~inside] = np.nan
        ex, ey = reader.turn_errors(ex, ey, window)
        return (np.asarray(to_m_per_yr(ex, self.units), np.float32),
                np.asarray(to_m_per_yr(ey, self.units), np.float32))

    def carried_metadata(self):
        """The input's metadata worth keeping in an output (not dates, sensor or units, which
        the pair-product writer sets)."""
        return {k: v for k, v in self.metadata.items()
                if k not in ("START_DATE", "END_DATE", "SENSOR", "UNITS")}

    def inputs(self):
        """Input paths (so outputs never overwrite them)."""
        return [p for p in (self.path, self.vy_path) if p]


def _positive(value):
    """``value`` as a positive finite float, or None."""
    try:
        v = float(str(value).strip())
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) and v > 0 else None


def readable_pairs(paths):
    """``(sources, skipped)``: a :class:`PairSource` for every path that opens as a pair product
    and reads to its last block, and ``(path, reason)`` for each of the others, so that a folder
    with one damaged or foreign file is processed without it."""
    sources, skipped = [], []
    for p in paths:
        try:
            check_readable(p, "pair product")
            sources.append(PairSource(p))
        except (InputError, RuntimeError, OSError) as exc:
            skipped.append((str(p), str(exc).strip()))
    return sources, skipped
