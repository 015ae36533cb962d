"""The plugin's file formats: pair products and velocity stacks (see README, "Data formats").

Pair product: a 4-band float32 GeoTIFF ``vx, vy, v, snr`` (m/yr east, m/yr north, m/yr speed,
0-1 quality) with metadata ``START_DATE``, ``END_DATE``, ``SENSOR``, ``UNITS=m/yr``. Imported
products (ITS_LIVE) may add a fifth band ``v_error`` (1-sigma m/yr per pixel) and the metadata
``VX_ERROR``/``VY_ERROR`` (1-sigma m/yr of the pair); readers find bands by description.
The correlator adds bands 5-6 ``vx_error, vy_error`` (m/yr, each vector's estimated
standard error).

Velocity stack: one band per time step, chronological, each band's description the date interval
``START/END``; metadata ``SENSOR``, ``QUANTITY`` (v, vx or vy), ``UNITS=m/yr``.
"""

from dataclasses import dataclass, field

import numpy as np

from .cubes import cube_source, cube_stack_info
from .dates import DAYS_PER_YEAR, Interval, baseline_days, parse_date
from ..errors import InputError
from .grid import Grid
from .raster import RasterWriter, iter_tiles, open_raster, read_band, read_bands

PAIR_BANDS = ("vx", "vy", "v", "snr")
ERROR_BANDS = ("vx_error", "vy_error")  # optional bands 5-6 of a pair product
QUANTITIES = ("v", "vx", "vy")
UNITS = {"m/yr": 1.0, "m/day": DAYS_PER_YEAR, "m/d": DAYS_PER_YEAR, "m/a": 1.0}
SENSORS = ("landsat", "sentinel1", "sentinel2", "uav")
DEFAULT_MAX_SPEED = 1095.0  # m/yr = 3 m/day: the speed filter's and the search range's default


def declared_units(metadata, path, default="m/yr"):
    """The velocity units a file's UNITS metadata item declares (normalised; ``default`` when it
    has none); :class:`InputError` naming the file when they are unknown, so values in other units
    (furlongs/fortnight, km/h) are never read, converted or stamped as m/yr."""
    units = str((metadata or {}).get("UNITS", "") or "").strip().lower()
    if not units:
        return default
    if units not in UNITS:
        raise InputError(f"'{path}' declares its velocities in unknown units '{units}': only "
                         f"{', '.join(sorted(UNITS))} are understood. Convert it to m/yr, or "
                         "correct its UNITS metadata item if it is wrong.")
    return units


def check_chronological(intervals, path, what="velocity stack"):
    """:class:`InputError` when two bands of a stack have the same date interval or are out of
    chronological order (by start, then end), naming the bands."""
    for i in range(1, len(intervals)):
        a, b = intervals[i - 1], intervals[i]
        if a == b:
            raise InputError(f"Bands {i} and {i + 1} of {what} '{path}' have the same date "
                             f"interval {a}: each band of a stack must be a distinct time step.")
        if b < a:
            raise InputError(f"Bands {i} ({a}) and {i + 1} ({b}) of {what} '{path}' are out of "
                             "chronological order: a stack's bands must go from the earliest "
                             "interval to the latest.")


def to_m_per_yr(values, units):
    """Convert velocities given in ``units`` ('m/yr' or 'm/day') to m/yr."""
    try:
        factor = UNITS[str(units).strip().lower()]
    except KeyError:
        raise InputError(f"Unknown velocity units '{units}': use m/yr or m/day.") from None
    return values if factor == 1.0 else np.asarray(values) * factor


# ---------------------------------------------------------------------------- pair products

@dataclass
class PairInfo:
    """What a pair product's header says: grid, dates, sensor."""

    path: str
    grid: Grid
    start: object
    end: object
    sensor: str
    metadata: dict = field(default_factory=dict)

    @property
    def interval(self):
        return Interval(self.start, self.end)

    @property
    def baseline_days(self):
        return (self.end - self.start).days


def write_pair_product(path, grid, vx, vy, snr, start, end, sensor="", metadata=None, inputs=(),
                       errors=None):
    """Write a pair product; ``v`` is computed as hypot(vx, vy). Arrays are m/yr, snr 0-1;
    ``errors`` ``(vx_error, vy_error)`` (1σ, m/yr) adds the error bands."""
    with PairWriter(path, grid, start, end, sensor, metadata, inputs,
                    ERROR_BANDS if errors is not None else ()) as w:
        w.write(vx, vy, snr)
        write_errors(w, errors)
    return str(path)


class _ProductWriter:
    """Context-manager plumbing shared by the product writers (each wraps a RasterWriter ``_w``)."""

    _w = None

    def close(self):
        """Finish the product and move it into place."""
        self._w.close()

    def abort(self):
        """Drop the product being written (the destination stays as it was)."""
        self._w.abort()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._w.__exit__(*exc)


class PairWriter(_ProductWriter):
    """Writes a pair product window by window (for tiled processing). ``extra_bands`` names
    bands after the four of the contract (e.g. ``v_error``, m/yr), written with
    :meth:`write_extra`."""

    def __init__(self, path, grid, start, end, sensor="", metadata=None, inputs=(),
                 extra_bands=()):
        start, end = parse_date(start), parse_date(end)
        baseline_days(start, end, f"pair product '{path}'")
        meta = {"START_DATE": start.isoformat(), "END_DATE": end.isoformat(),
                "SENSOR": sensor or "", "UNITS": "m/yr"}
        meta.update(metadata or {})
        self.bands = PAIR_BANDS + tuple(extra_bands)
        self._w = RasterWriter(path, grid, len(self.bands), self.bands, meta, inputs=inputs)
        self.path = str(path)

    def write(self, vx, vy, snr, row_off=0, col_off=0, v=None):
        """Write a window; the speed is hypot(vx, vy) unless ``v`` is given (a source's own)."""
        vx = np.asarray(vx, np.float32)
        vy = np.asarray(vy, np.float32)
        for band, arr in enumerate((vx, vy, np.hypot(vx, vy) if v is None else v, snr), start=1):
            self._w.write(band, arr, row_off, col_off)

    def write_extra(self, name, array, row_off=0, col_off=0):
        """Write a window of the extra band ``name``."""
        self._w.write(self.bands.index(name) + 1, array, row_off, col_off)

    def set_metadata(self, items):
        """Add dataset metadata items (e.g. statistics known only at the end)."""
        meta = self._w.ds.GetMetadata() or {}
        meta.update({k: str(v) for k, v in items.items()})
        self._w.ds.SetMetadata(meta)


def error_bands(source):
    """The extra bands (:data:`ERROR_BANDS`) a product made from ``source`` (a PairSource)
    carries: the error bands when the source states errors, else none."""
    return ERROR_BANDS if source.has_errors else ()


def write_errors(writer, errors, row_off=0, col_off=0):
    """Write a window of ``errors`` ``(vx_error, vy_error)`` (m/yr) with a :class:`PairWriter`
    made with ``extra_bands=ERROR_BANDS``; nothing when ``errors`` is None."""
    if errors is not None:
        for name, arr in zip(ERROR_BANDS, errors):
            writer.write_extra(name, np.asarray(arr, np.float32), row_off, col_off)


def read_pair_info(path, start=None, end=None, sensor=None):
    """Header of a pair product; ``start``/``end``/``sensor`` override what the file says."""
    ds = open_raster(path, "pair product")
    meta = ds.GetMetadata() or {}
    grid = Grid.from_dataset(ds, path)
    try:
        s = parse_date(start) if start else parse_date(meta["START_DATE"])
        e = parse_date(end) if end else parse_date(meta["END_DATE"])
    except KeyError:
        raise InputError(f"'{path}' has no START_DATE/END_DATE metadata: it is not a pair "
                         "product, or give the dates explicitly.") from None
    baseline_days(s, e, f"'{path}'")
    return PairInfo(str(path), grid, s, e, sensor or meta.get("SENSOR", ""), meta)


def pair_band_index(path, name):
    """1-based index of band ``name`` (vx, vy, v, snr) of a pair product, by band description."""
    ds = open_raster(path, "pair product")
    descs = [ds.GetRasterBand(i + 1).GetDescription().strip().lower()
             for i in range(ds.RasterCount)]
    if name in descs:
        return descs.index(name) + 1
    if ds.RasterCount >= 4 and not any(descs):
        return PAIR_BANDS.index(name) + 1
    raise InputError(f"'{path}' has no '{name}' band (bands: {', '.join(descs) or 'unnamed'}).")


def read_pair_product(path, window=None, units="m/yr"):
    """Read ``(info, {'vx','vy','v','snr'} arrays)``; velocities converted from ``units`` to m/yr."""
    info = read_pair_info(path)
    data = {}
    for name in PAIR_BANDS:
        arr = read_band(path, pair_band_index(path, name), window)
        data[name] = arr if name == "snr" else to_m_per_yr(arr, units).astype(np.float32)
    return info, data


# ---------------------------------------------------------------------------- velocity stacks

@dataclass
class StackInfo:
    """What a velocity stack's header says: grid, band intervals, sensor, quantity."""

    path: str
    grid: Grid
    intervals: list
    sensor: str
    quantity: str
    units: str
    metadata: dict = field(default_factory=dict)

    @property
    def count(self):
        return len(self.intervals)


def read_stack_info(path, what="velocity stack", dataset=None):
    """Header of a velocity stack; :class:`InputError` when a band has no date interval.
    ``dataset``: the stack already opened (not opened again).

    A cube exported as NetCDF is a stack too when named as a GDAL subdataset
    (``NETCDF:"cube.nc":v``): its layers' dates come from the cube (see :mod:`.cubes`)."""
    if cube_source(path):
        grid, intervals, sensor, quantity = cube_stack_info(path)
        return StackInfo(str(path), grid, intervals, sensor, quantity, "m/yr",
                         {"SENSOR": sensor, "QUANTITY": quantity, "UNITS": "m/yr"})
    ds = dataset if dataset is not None else open_raster(path, what)
    meta = ds.GetMetadata() or {}
    intervals = []
    for i in range(ds.RasterCount):
        desc = ds.GetRasterBand(i + 1).GetDescription()
        if not desc.strip():
            raise InputError(f"Band {i + 1} of {what} '{path}' has no date interval: stack bands "
                             "need a description START/END such as 2019-06-03/2019-07-05.")
        try:
            intervals.append(Interval.parse(desc))
        except InputError as exc:
            raise InputError(f"Band {i + 1} of {what} '{path}': {exc}") from None
    check_chronological(intervals, path, what)
    quantity = meta.get("QUANTITY", "v")
    # velocities must be in known units; other quantities (counts) keep theirs
    units = declared_units(meta, path) if quantity in QUANTITIES else meta.get("UNITS", "")
    return StackInfo(str(path), Grid.from_dataset(ds, path), intervals, meta.get("SENSOR", ""),
                     quantity, units, meta)


class StackFile:
    """A velocity stack opened once for many window reads: ``info`` (its header) and
    :meth:`read` (m/yr, converted from its UNITS). Use it where a stack is read window by window,
    so the file is opened and its header parsed once per run, not once per window."""

    def __init__(self, path, what="velocity stack"):
        self._ds = open_raster(path, what)
        self.info = read_stack_info(path, what, self._ds)

    def read(self, window=None, bands=None):
        """``array[time, row, col]`` float32 m/yr of ``window`` ``(row_off, col_off, rows, cols)``
        (default the whole grid) and ``bands`` (1-based, default all)."""
        arr = read_bands(self._ds, bands, window)
        return to_m_per_yr(arr, self.info.units).astype(np.float32, copy=False)

    def windows(self, budget_mb=128):
        """Windows ``(row_off, col_off, rows, cols)`` to read the stack with all its bands at
        once, each holding at most about ``budget_mb`` MB of float32.

        Tiled files are read in tiles aligned with their blocks (each block decompressed once),
        at least about 256 px wide where the blocks are smaller, halved while over budget; striped
        files in row blocks.
        """
        bw, bh = self._ds.GetRasterBand(1).GetBlockSize()
        rows, cols = shape = self.info.grid.shape
        budget = budget_mb * 2 ** 20 / (4 * max(self.info.count, 1))  # pixels per window
        if bw < cols:
            tile = max(bw, bh)
            if tile < 256:  # small blocks (a NetCDF cube's 10 x 10 chunks): many per window
                tile *= 256 // tile
            while tile > 16 and tile * tile > budget:
                tile //= 2
            return [core for _, core, _ in iter_tiles(shape, tile)]
        h = max(1, int(budget // cols))
        if h >= bh:
            h -= h % bh
        return [(r0, 0, min(h, rows - r0), cols) for r0 in range(0, rows, h)]

    def close(self):
        self._ds = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_stack(path, window=None, bands=None):
    """Read ``(info, array[time, row, col])`` of a stack in m/yr (converted from its UNITS)."""
    with StackFile(path) as stack:
        return stack.info, stack.read(window, bands)


class StackWriter(_ProductWriter):
    """Writes a velocity stack band by band and window by window (bounded memory)."""

    def __init__(self, path, grid, intervals, sensor="", quantity="v", metadata=None,
                 band_metadata=None, inputs=()):
        if quantity not in QUANTITIES:
            raise InputError(f"Unknown stack quantity '{quantity}': use one of {QUANTITIES}.")
        meta = {"SENSOR": sensor or "", "QUANTITY": quantity, "UNITS": "m/yr"}
        meta.update(metadata or {})
        self.intervals = list(intervals)
        self._w = RasterWriter(path, grid, len(self.intervals), [str(iv) for iv in self.intervals],
                               meta, band_metadata, inputs)
        self.path = str(path)

    def write(self, band_index, array, row_off=0, col_off=0):
        """Write time step ``band_index`` (0-based) at ``(row_off, col_off)``."""
        self._w.write(band_index + 1, array, row_off, col_off)

    def set_band_metadata(self, band_index, items):
        """Set metadata items of time step ``band_index`` (0-based)."""
        self._w.set_band_metadata(band_index + 1, items)


def write_stack(path, grid, array, intervals, sensor="", quantity="v", metadata=None,
                band_metadata=None, inputs=()):
    """Write a ``(time, row, col)`` array (m/yr) as a velocity stack."""
    arr = np.asarray(array)
    if arr.ndim != 3 or arr.shape[0] != len(intervals):
        raise InputError(f"A stack of {arr.shape[0] if arr.ndim == 3 else '?'} bands needs as many "
                         f"date intervals; {len(intervals)} given.")
    with StackWriter(path, grid, intervals, sensor, quantity, metadata, band_metadata, inputs) as w:
        for i in range(arr.shape[0]):
            w.write(i, arr[i])
    return str(path)
