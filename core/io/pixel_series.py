"""Plot data of the dock, with no QGIS: a pixel's series from velocity stacks, the CSV export of
plotted series, and the calibration tables written by the weight calibration.

Series are read with 1×1 GDAL windows, so a click on a 300-band stack decompresses one tile per
band block instead of whole bands. Values are m/yr (converted from the stack's ``UNITS``), NaN where
the stack has NoData. A series' time axis is the middle date of each band's interval
(:attr:`Interval.mid`, day resolution): the same date appears in the CSV export.

Calibration contract (:mod:`core.fusion.calibration` writes these with the constants below, the
dock reads them):

* calibration table: one row per source then a ``combined`` row; columns ``source``, ``sensor``,
  ``role`` ('primary' | 'auxiliary' | 'combined'), ``weight``, ``n``, ``bias`` (m/yr, source minus
  UAV), ``rmse`` (m/yr), ``r2``, ``slope``;
* samples table: columns ``interval``, ``row``, ``col``, ``uav`` and ``v_<source>`` for every
  source (same names as the calibration table) and ``v_combined`` (all m/yr).

Both may be CSV files or tables without geometry (GeoPackage ``file.gpkg|layername=x``, any OGR
format); in QGIS, rows of a project layer are handed over as dicts to :func:`parse_calibration`
and :func:`parse_samples`.
"""

import csv
import datetime as dt
import math
import os
import re
from dataclasses import dataclass, field

import numpy as np
from osgeo import gdal

from .atomic import atomic_file
from ..errors import InputError
from .products import read_stack_info, to_m_per_yr
from .grid import crs_name, same_crs
from .names import relative_path
from .raster import open_raster, read_bands
from .reader import COMPONENTS, companion_path, directions_at

gdal.UseExceptions()

# Metadata items holding a velocity uncertainty (1 sigma, in the stack's units): per band, else
# one value for the whole stack. ``V_ERROR`` is ITS_LIVE's name.
ERROR_KEYS = ("V_ERROR", "ERROR", "UNCERTAINTY")
# Per-pixel errors: a stack of 1-sigma errors (m/yr, the same grid and bands) named by the stack's
# ERROR_STACK metadata (a path, relative to the stack's folder or absolute), else found beside it
# as ``<stem>_error.tif``.
ERROR_STACK_KEY = "ERROR_STACK"
ERROR_SUFFIX = "_error"
FUSED_SENSORS = ("fused", "fusion", "combined", "gapfilled", "gap-filled")
EPOCH = dt.date(1970, 1, 1)

# The calibration-table format (module doc): the weight calibration writes it, the dock reads it.
CALIBRATION_COLUMNS = ("source", "sensor", "role", "weight", "n", "bias", "rmse", "r2", "slope")
CLASS_COLUMN = "class"  # added when weights are solved per class; 'all' marks the global rows
COMBINED = "combined"  # source and role of the weighted combination's row
SAMPLE_COLUMNS = ("interval", "row", "col", "uav")


def sample_column(source):
    """The samples table's column of a source's (or, with COMBINED, the combination's) values."""
    return f"v_{source}"


# ---------------------------------------------------------------------------- pixel series

@dataclass
class PixelSeries:
    """One stack's values at one pixel: ``values[i]`` (m/yr, NaN = no data) over ``intervals[i]``.

    ``errors`` is the 1-sigma uncertainty per band (m/yr) when the stack's metadata or its error
    stack gives one, else None. ``x, y`` is the point in the stack's CRS, ``row, col`` the pixel
    holding it; ``pinned`` is the number of the pin keeping the series (0: not pinned).
    """

    label: str
    path: str
    sensor: str
    quantity: str
    intervals: list
    values: np.ndarray
    row: int
    col: int
    x: float = math.nan
    y: float = math.nan
    errors: object = None
    pinned: int = 0

    @property
    def dates(self):
        """The middle date of each band's interval (the plotted time, day resolution)."""
        return [iv.mid for iv in self.intervals]

    def timestamps(self):
        """Middle dates as POSIX seconds (UTC midnight), the x values of a date axis."""
        return np.array([(d - EPOCH).days * 86400.0 for d in self.dates])

    @property
    def valid(self):
        """Number of bands with a value."""
        return int(np.isfinite(self.values).sum())

    @property
    def is_fused(self):
        """True for the fused product (drawn on top of the sources)."""
        return is_fused_sensor(self.sensor)


def connect_mask(series, gap_factor=1.5):
    """Which consecutive points a line joins (``mask[i]``: point i to i+1; last entry False):
    both valid, and not further apart in time than ``gap_factor`` times the series' median
    spacing, so sparse series (summer UAV surveys) get no line across the years between them."""
    t = series.timestamps()
    ok = np.isfinite(series.values)
    mask = np.zeros(t.size, bool)
    if t.size < 2:
        return mask
    step = np.diff(t)
    mask[:-1] = ok[:-1] & ok[1:] & (step <= gap_factor * np.median(step))
    return mask


def is_fused_sensor(sensor):
    """True when a stack's SENSOR names the fused (or gap-filled) product."""
    return str(sensor).strip().lower() in FUSED_SENSORS


class StackPixelReader:
    """An open velocity stack answering "the series at this point" with 1×1 windows.

    Keep one reader per stack while the user clicks: the dataset stays open so GDAL's block cache
    serves neighbouring pixels (dragging) without decompressing the tiles again. Not thread-safe:
    use one reader from one thread.
    """

    def __init__(self, path):
        self.path = str(path)
        self.info = read_stack_info(self.path)
        self.ds = open_raster(self.path, "velocity stack")
        self._inverse = gdal.InvGeoTransform(self.info.grid.transform)
        if self._inverse is None:
            raise InputError(f"The geotransform of '{self.path}' cannot be inverted.")
        self.errors = _stack_errors(self.ds, self.info)
        self.error_path = error_stack_path(self.path, self.info)
        self.error_ds = open_raster(self.error_path, "error stack") if self.error_path else None
        self._companion = None  # the other component's reader, opened on first need

    def pixel(self, x, y):
        """``(row, col)`` of the pixel holding ``(x, y)`` (stack CRS), or None outside the stack."""
        col, row = gdal.ApplyGeoTransform(self._inverse, float(x), float(y))
        if not (math.isfinite(col) and math.isfinite(row)):
            return None
        row, col = math.floor(row), math.floor(col)
        if 0 <= row < self.info.grid.rows and 0 <= col < self.info.grid.cols:
            return row, col
        return None

    def read(self, x, y, label=None, axes_crs=None):
        """The :class:`PixelSeries` at ``(x, y)`` in the stack's CRS; None when outside the stack.

        ``axes_crs`` (WKT, e.g. the map canvas's CRS): a vx or vy series is given in that CRS's
        axes, so stacks of several CRSs plotted together agree (turned by the grid convergence at
        the point, :func:`core.io.reader.directions_at`; needs the companion stack named like it
        with _vy/_vx, else :class:`InputError`). Speeds are never turned."""
        pix = self.pixel(x, y)
        if pix is None:
            return None
        return self.read_pixel(pix[0], pix[1], label, x, y, axes_crs)

    def read_pixel(self, row, col, label=None, x=math.nan, y=math.nan, axes_crs=None):
        """The :class:`PixelSeries` of pixel ``(row, col)`` (``axes_crs``: see :meth:`read`)."""
        values = self._values(row, col)
        if (axes_crs and self.info.quantity in COMPONENTS
                and not same_crs(axes_crs, self.info.grid.crs_wkt)):
            values = self._turned(values, row, col, axes_crs)
        errors = self.errors
        if self.error_ds is not None:  # per-pixel errors where known, else the metadata's
            pixel = read_bands(self.error_ds, None, (row, col, 1, 1), np.float64)[:, 0, 0]
            units = (self.error_ds.GetMetadata() or {}).get("UNITS", self.info.units)
            pixel = np.asarray(to_m_per_yr(pixel, units), np.float64)
            errors = pixel if errors is None else np.where(np.isfinite(pixel), pixel, errors)
        return PixelSeries(label or os.path.splitext(os.path.basename(self.path))[0], self.path,
                           self.info.sensor, self.info.quantity, list(self.info.intervals), values,
                           int(row), int(col), float(x), float(y), errors)

    def _values(self, row, col):
        values = read_bands(self.ds, None, (row, col, 1, 1), np.float64)[:, 0, 0]
        return np.asarray(to_m_per_yr(values, self.info.units), np.float64)

    def _turned(self, values, row, col, axes_crs):
        """``values`` (this stack's component at pixel row, col) in the axes of ``axes_crs``."""
        if self._companion is None:
            path = companion_path(self.path, self.info.quantity)
            if path is None:
                other = "vy" if self.info.quantity == "vx" else "vx"
                raise InputError(f"'{self.path}' holds {self.info.quantity} only: to show it in "
                                 f"the map's {crs_name(axes_crs)} axes its {other} companion "
                                 f"(named like it with _{other}) is needed; or set the map to "
                                 f"{crs_name(self.info.grid.crs_wkt)}.")
            companion = StackPixelReader(path)
            if (not companion.info.grid.same_as(self.info.grid)
                    or companion.info.intervals != self.info.intervals):
                raise InputError(f"The companion '{path}' of '{self.path}' is not on the same grid "
                                 "with the same bands.")
            self._companion = companion
        other = self._companion._values(row, col)
        vx, vy = (values, other) if self.info.quantity == "vx" else (other, values)
        x0, dx, _, y0, _, dy = self.info.grid.transform
        ex, ey, nx, ny = directions_at(self.info.grid, axes_crs,
                                       [[x0 + (col + 0.5) * dx, y0 + (row + 0.5) * dy]])
        return vx * ex[0] + vy * nx[0] if self.info.quantity == "vx" else vx * ey[0] + vy * ny[0]

    def close(self):
        self.ds = self.error_ds = None
        if self._companion is not None:
            self._companion.close()


def default_error_path(path):
    """Where the error stack of the stack ``path`` is written by default: ``<stem>_error.tif``
    beside it, the name :func:`error_stack_path` finds."""
    stem, _ = os.path.splitext(str(path))
    return f"{stem}{ERROR_SUFFIX}.tif"


def error_links(stack, error):
    """Metadata linking the stack ``stack`` and its error stack ``error`` both ways:
    ``(items for the stack, items for the error stack)``. The stack's ERROR_STACK names the error
    stack, the error stack's ERROR_OF names the stack and ERROR says what it holds; paths are
    relative to the file that holds them."""
    return ({ERROR_STACK_KEY: relative_path(error, stack)},
            {"ERROR_OF": relative_path(stack, error), "ERROR": "1 sigma, m/yr"})


def error_stack_path(path, info):
    """The per-pixel error stack of the stack ``path`` (header ``info``), or None: the file its
    ``ERROR_STACK`` metadata names, else ``<stem>_error<ext>`` beside it; used only when it has
    the stack's size and band count (a mismatched file is ignored, not misread)."""
    folder, name = os.path.split(os.path.abspath(path))
    stem, ext = os.path.splitext(name)
    named = info.metadata.get(ERROR_STACK_KEY, "").strip()
    candidate = os.path.join(folder, named) if named else os.path.join(
        folder, f"{stem}{ERROR_SUFFIX}{ext}")
    if not os.path.isfile(candidate) or stem.endswith(ERROR_SUFFIX):
        return None
    try:
        ds = gdal.Open(candidate)
    except RuntimeError:
        return None
    same = (ds.RasterCount, ds.RasterYSize, ds.RasterXSize) == (info.count,) + info.grid.shape
    return candidate if same else None


def _stack_errors(ds, info):
    """Per-band 1-sigma errors (m/yr) from band or dataset metadata, or None when none is given."""
    default = _error_item(info.metadata)
    errors = np.full(info.count, np.nan if default is None else default)
    for i in range(info.count):
        value = _error_item(ds.GetRasterBand(i + 1).GetMetadata() or {})
        if value is not None:
            errors[i] = value
    if not np.isfinite(errors).any():
        return None
    return np.asarray(to_m_per_yr(errors, info.units), np.float64)


def _error_item(meta):
    for key in ERROR_KEYS:
        if key in meta:
            try:
                value = float(meta[key])
            except ValueError:
                continue
            if math.isfinite(value) and value >= 0:
                return value
    return None


# ---------------------------------------------------------------------------- CSV export

def unique_labels(labels):
    """Make labels unique by appending ' (2)', ' (3)'... to repeats, keeping the order."""
    seen, out = {}, []
    for label in labels:
        n = seen.get(label, 0) + 1
        seen[label] = n
        out.append(label if n == 1 else f"{label} ({n})")
    return out


def series_table(series):
    """``(header, rows)`` of plotted series: a ``date`` column (middle dates, ISO, the union of
    all series' dates, sorted) then one column per series (m/yr, '' where it has no value)."""
    labels = unique_labels([s.label for s in series])
    by_date = {}
    for k, s in enumerate(series):
        for d, v in zip(s.dates, s.values):
            by_date.setdefault(d, {})[k] = v
    rows = []
    for d in sorted(by_date):
        cells = by_date[d]
        rows.append([d.isoformat()] + [_cell(cells.get(k, math.nan)) for k in range(len(series))])
    return ["date"] + labels, rows


def _cell(value):
    return repr(float(value)) if math.isfinite(value) else ""


def write_csv(path, header, rows):
    """Write a CSV file (comma separated, header line first), atomically (see :mod:`.atomic`)."""
    with atomic_file(path, "CSV file") as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def write_series_csv(path, series):
    """Export plotted series to CSV (see :func:`series_table`)."""
    header, rows = series_table(series)
    return write_csv(path, header, rows)


# ---------------------------------------------------------------------------- tables

def read_table_rows(path, what="table"):
    """Rows of a table file as dicts: CSV with the csv module, anything else through OGR
    (``file.gpkg|layername=x`` accepted). Values stay as read (text for CSV)."""
    path = str(path)
    file_path = path.split("|")[0]
    if not os.path.exists(file_path):
        raise InputError(f"The {what} '{file_path}' does not exist.")
    if file_path.lower().endswith((".csv", ".txt")):
        with open(file_path, newline="", encoding="utf-8-sig") as f:
            return [dict(r) for r in csv.DictReader(f)]
    from .vector import open_vector

    ds, layer = open_vector(path, what)
    defn = layer.GetLayerDefn()
    names = [defn.GetFieldDefn(i).GetName() for i in range(defn.GetFieldCount())]
    rows = [{n: feat.GetField(n) for n in names} for feat in layer]
    del ds
    return rows


def _float(value):
    if value is None:
        return math.nan
    if isinstance(value, str):
        value = value.strip()
        if not value or value.lower() in ("nan", "null", "none"):
            return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _floats(values):
    return np.array([_float(v) for v in values], np.float64)


@dataclass
class SourceFit:
    """One row of a calibration table: a source's weight and its fit against the UAV."""

    source: str
    sensor: str
    role: str
    weight: float
    n: int
    bias: float
    rmse: float
    r2: float
    slope: float

    def legend(self, with_weight=True, sep=" · "):
        """Legend text, e.g. ``landsat (primary) w=0.412 · n=812 · bias=+3.9 · RMSE=14.2 ·
        R²=0.931`` (``sep`` goes between the name and weight and the statistics)."""
        head = self.source + (f" ({self.role})" if self.role and self.role != COMBINED else "")
        if with_weight and math.isfinite(self.weight):
            head += f" w={self.weight:.3f}"
        stats = (f"n={self.n} · bias={self.bias:+.1f} · RMSE={self.rmse:.1f} · "
                 f"R²={self.r2:.3f}")
        return head + sep + stats


@dataclass
class Calibration:
    """A calibration table: the sources' fits in table order and the weighted combination
    (global rows); ``classes`` holds per-class fits ``{class label: [SourceFit...]}`` (combined
    row included) when the table has a ``class`` column."""

    sources: list
    combined: object = None
    classes: dict = field(default_factory=dict)

    @property
    def weights(self):
        """``{source: weight}``."""
        return {s.source: s.weight for s in self.sources}


def _fit(r):
    n = _float(r.get("n"))
    return SourceFit(str(r.get("source") or "").strip(), str(r.get("sensor") or "").strip(),
                     str(r.get("role") or "").strip().lower(), _float(r.get("weight")),
                     int(n) if math.isfinite(n) else 0, _float(r.get("bias")),
                     _float(r.get("rmse")), _float(r.get("r2")), _float(r.get("slope")))


def parse_calibration(rows, what="calibration table"):
    """A :class:`Calibration` from table rows (dicts); :class:`InputError` when columns are missing.

    Rows whose ``class`` column is empty or 'all' are the global fit; other classes (weights per
    class of a categorical raster) go to ``Calibration.classes``."""
    if not rows:
        raise InputError(f"The {what} is empty.")
    missing = [c for c in ("source", "weight") if c not in rows[0]]
    if missing:
        raise InputError(f"The {what} has no column {', '.join(missing)}: expected a table "
                         f"with columns {', '.join(CALIBRATION_COLUMNS)} (the output of "
                         "'Calibrate fusion weights').")
    sources, combined, classes = [], None, {}
    for r in rows:
        fit = _fit(r)
        label = str(r.get(CLASS_COLUMN) or "").strip()
        if label and label.lower() not in ("all", "none", "null"):
            classes.setdefault(label, []).append(fit)
        elif COMBINED in (fit.role, fit.source.lower()):
            combined = fit
        else:
            sources.append(fit)
    return Calibration(sources, combined, classes)


@dataclass
class Samples:
    """The calibration samples: UAV values and each source's (and the combination's) values."""

    uav: np.ndarray
    sources: dict = field(default_factory=dict)  # {source: values}, in table column order
    combined: object = None
    intervals: list = field(default_factory=list)
    rows: object = None
    cols: object = None


def parse_samples(rows, what="calibration samples table"):
    """:class:`Samples` from table rows (dicts with ``uav``, ``v_<source>``, ``v_combined``)."""
    if not rows:
        raise InputError(f"The {what} is empty.")
    names = list(rows[0])
    if "uav" not in names:
        raise InputError(f"The {what} has no 'uav' column: expected columns "
                         f"{', '.join(SAMPLE_COLUMNS)}, v_<source>..., v_combined.")
    prefix, combined_column = sample_column(""), sample_column(COMBINED)
    sources = {}
    for n in names:
        if n.startswith(prefix) and n != combined_column:
            sources[n[len(prefix):]] = _floats([r[n] for r in rows])
    combined = (_floats([r[combined_column] for r in rows]) if combined_column in names
                else None)
    return Samples(_floats([r["uav"] for r in rows]), sources, combined,
                   [str(r.get("interval", "")) for r in rows],
                   _floats([r.get("row") for r in rows]), _floats([r.get("col") for r in rows]))


def samples_table(samples):
    """``(header, rows)`` of calibration samples, in the samples table's own layout."""
    header = list(SAMPLE_COLUMNS) + [sample_column(k) for k in samples.sources]
    columns = [samples.uav] + list(samples.sources.values())
    if samples.combined is not None:
        header.append(sample_column(COMBINED))
        columns.append(samples.combined)
    rows = []
    for i in range(samples.uav.size):
        head = [samples.intervals[i] if i < len(samples.intervals) else "",
                _int_cell(samples.rows, i), _int_cell(samples.cols, i)]
        rows.append(head + [_cell(c[i]) for c in columns])
    return header, rows


def _int_cell(values, i):
    if values is None or i >= len(values) or not math.isfinite(values[i]):
        return ""
    return str(int(values[i]))


def samples_companion(path):
    """The samples table written beside a calibration table, or None.

    Looked for in order: in a GeoPackage (``file.gpkg|layername=x``) the only other layer with
    'sample' in its name; ``<stem>_samples.<ext>`` or ``<stem>-samples.<ext>`` (any case, so
    ``OUTPUT_SAMPLES`` beside ``OUTPUT``) in the table's folder, else the only file there with
    'sample' in its name and the same extension; for QGIS temporary outputs (each in its own
    ``<processing temp>/<uuid>/`` folder) ``<stem>_samples.<ext>`` in a sibling uuid folder,
    the one written closest in time (within :data:`COMPANION_SECONDS`)."""
    file_path = str(path).split("|")[0]
    if "|layername=" in str(path):  # another layer of the same GeoPackage
        from osgeo import ogr

        ds = ogr.Open(file_path)
        names = [ds.GetLayer(i).GetName() for i in range(ds.GetLayerCount())] if ds else []
        found = [n for n in names if "sample" in n.lower()]
        if len(found) == 1:
            return f"{file_path}|layername={found[0]}"
    folder, name = os.path.split(os.path.abspath(file_path))
    stem, ext = os.path.splitext(name)
    wanted = {f"{stem}_samples{ext}".lower(), f"{stem}-samples{ext}".lower()}
    files = sorted(os.listdir(folder))
    for f in files:
        if f.lower() in wanted:
            return os.path.join(folder, f)
    found = [f for f in files
             if "sample" in f.lower() and f.lower().endswith(ext.lower()) and f != name]
    if len(found) == 1:
        return os.path.join(folder, found[0])
    return _temporary_companion(folder, wanted, file_path)


COMPANION_SECONDS = 600
_UUID_DIR = re.compile(r"^[0-9a-f]{32}$")


def _temporary_companion(folder, wanted, table):
    """``<stem>_samples.<ext>`` in a sibling QGIS temporary-output folder, nearest in time."""
    if not _UUID_DIR.match(os.path.basename(folder)):
        return None
    parent, when = os.path.dirname(folder), os.path.getmtime(table)
    best = None
    for sub in os.listdir(parent):
        d = os.path.join(parent, sub)
        if d == folder or not _UUID_DIR.match(sub) or not os.path.isdir(d):
            continue
        for f in os.listdir(d):
            if f.lower() in wanted:
                gap = abs(os.path.getmtime(os.path.join(d, f)) - when)
                if gap <= COMPANION_SECONDS and (best is None or gap < best[0]):
                    best = (gap, os.path.join(d, f))
    return best[1] if best else None
