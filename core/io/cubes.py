"""NetCDF and Zarr velocity cubes (CF-1.8, ITS_LIVE names): open, grid, dates, windows, export.

A *cube* holds velocities with dimensions ``(mid_date, y, x)`` (an image-pair *granule* has only
``(y, x)``); ``vx``, ``vy``, ``v``, ``v_error`` are in m/yr (``units`` "meter/year") and name
their grid mapping (``grid_mapping`` "mapping"). The grid comes from the mapping variable's
``GeoTransform`` (GDAL order, "x0 dx 0 y0 0 dy") or from the ``x``/``y`` pixel-centre coordinates;
the CRS from its ``crs_wkt``/``spatial_ref``, ``spatial_epsg`` or ``proj4text``. Pair dates are
1-D along ``mid_date``: ``acquisition_date_img1``/``acquisition_date_img2`` (or TICOI's
``date1``/``date2``, or CF ``time_bnds``) in "days since 1970-01-01" (any CF "<unit> since
<date>" is read).

Files are read through xarray (netCDF4 for ``.nc``, zarr for ``.zarr`` folders) without dask:
a window of a many-GB cube is read lazily, block of dates by block of dates, so memory stays
bounded. The packages are imported only when a cube is used, so the plugin loads without them.

A NetCDF cube exported by :func:`export_cube` is also a velocity stack for every stack reader:
pass it as the GDAL subdataset ``NETCDF:"cube.nc":v`` (the layer source QGIS shows). GDAL opens
Zarr arrays only layer by layer, so a Zarr cube is refused there with a message saying what
converts it.
"""

import datetime as dt
import math
import os
import re
import shutil
from dataclasses import dataclass, field

import numpy as np
from osgeo import osr

from ..errors import InputError
from .atomic import prepare_folder, temporary_path
from .dates import Interval
from .grid import Grid

osr.UseExceptions()

EPOCH = np.datetime64("1970-01-01", "D")
DATE_UNITS = "days since 1970-01-01"
VELOCITY_UNITS = "meter/year"
# Spellings of m/yr met in CF files (ITS_LIVE writes "meter/year"; udunits accepts the others).
M_PER_YR = {"m/yr", "m/y", "m/a", "m/year", "meter/year", "meters/year", "metre/year",
            "metres/year", "m yr-1", "m a-1", "m year-1", "m.yr-1", "m.a-1", "m yr^-1", "m/yr."}
VARIABLES = ("v", "vx", "vy", "v_error")
# Time chunk of exported cubes (ITS_LIVE's); 10 x 10 pixels: a pixel's series is one chunk.
TIME_CHUNK, SPACE_CHUNK = 20000, 10
# Memory a windowed read may hold at once (all variables of one block of dates).
READ_BUDGET = 256 * 2 ** 20
_SUBDATASET = re.compile(r'^(NETCDF|ZARR):"?(.+?)"?:/?([A-Za-z_][\w]*)$', re.IGNORECASE)


# ---------------------------------------------------------------------------- opening

def is_cube_path(path):
    """True for a ``.nc``/``.nc4`` file or a Zarr folder (``.zarr`` or holding ``.zgroup``)."""
    path = str(path)
    if os.path.isdir(path):
        return path.rstrip("/").lower().endswith(".zarr") or os.path.isfile(
            os.path.join(path, ".zgroup"))
    return path.lower().endswith((".nc", ".nc4", ".netcdf"))


def cube_source(source):
    """``(file, variable)`` of a GDAL cube subdataset name (``NETCDF:"f.nc":v``,
    ``ZARR:"f.zarr":/v``), or None for anything else."""
    m = _SUBDATASET.match(str(source).strip())
    return (m.group(2), m.group(3)) if m else None


def source_file(source):
    """The file (or Zarr folder) behind a raster source: the cube of a subdataset name, else
    the source itself (e.g. to stat it)."""
    found = cube_source(source)
    return found[0] if found else str(source)


def subdataset_name(path, variable):
    """The GDAL raster name of one variable of a cube (bands along ``mid_date``)."""
    fmt = "ZARR" if os.path.isdir(str(path)) else "NETCDF"
    return f'{fmt}:"{path}":{"/" if fmt == "ZARR" else ""}{variable}'


def _xarray(path, zarr=False, write=False):
    """xarray (and the backend a file needs; dask to write), or :class:`InputError` naming the
    missing packages."""
    missing = []
    try:
        import xarray
    except ImportError:
        xarray = None
        missing.append("xarray")
    for name in ("zarr" if zarr else "netCDF4",) + (("dask",) if write else ()):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise InputError(
            f"Reading or writing '{path}' needs the Python package(s) {', '.join(missing)}, which "
            "are not installed: on Debian/Ubuntu install python3-xarray python3-netcdf4 "
            "python3-dask python3-zarr; with OSGeo4W or pip, xarray netCDF4 dask zarr.")
    return xarray


def open_dataset(path, what="NetCDF/Zarr file"):
    """Open a NetCDF file or Zarr folder lazily (CF masking and scaling on, dates left as
    numbers); :class:`InputError` naming the file when it is missing or unreadable."""
    path = str(path)
    if not os.path.exists(path):
        raise InputError(f"The {what} '{path}' does not exist.")
    zarr = os.path.isdir(path)
    xr = _xarray(path, zarr)
    try:
        if zarr:
            return xr.open_zarr(path, chunks=None, decode_times=False, consolidated=None)
        return xr.open_dataset(path, engine="netcdf4", chunks=None, decode_times=False,
                               decode_timedelta=False)
    except Exception as exc:  # the backends raise many types (OSError, KeyError, ValueError...)
        raise InputError(f"The {what} '{path}' cannot be read as NetCDF/Zarr (another format, "
                         f"or a damaged or truncated file): {exc}") from None


# ---------------------------------------------------------------------------- CF decoding

def check_velocity_units(ds, name, path):
    """Raise :class:`InputError` unless variable ``name`` is in m/yr (any udunits spelling)."""
    units = str(ds[name].attrs.get("units", "")).strip()
    if not units:
        raise InputError(f"'{path}': variable '{name}' has no 'units' attribute; velocities must "
                         "be in m/yr (units \"meter/year\").")
    if units.lower() not in M_PER_YR:
        raise InputError(f"'{path}': variable '{name}' is in '{units}', not m/yr (\"meter/year\"): "
                         "convert it before importing.")


def cf_dates(values, units, path, name):
    """Dates (``datetime64[D]`` array, rounded down) of CF time values with ``units`` such as
    "days since 1970-01-01" (days, hours, minutes or seconds)."""
    m = re.match(r"^\s*(day|hour|minute|second)s?\s+since\s+(\d{4}-\d{1,2}-\d{1,2})", str(units),
                 re.IGNORECASE)
    if not m:
        raise InputError(f"'{path}': the dates '{name}' have units '{units}', not "
                         f"'{DATE_UNITS}' (or another '<unit> since <date>').")
    y, mo, d = (int(p) for p in m.group(2).split("-"))
    ref = np.datetime64(dt.date(y, mo, d), "D")
    seconds = {"day": 86400.0, "hour": 3600.0, "minute": 60.0, "second": 1.0}[m.group(1).lower()]
    days = np.floor(np.asarray(values, np.float64) * seconds / 86400.0)
    if not np.isfinite(days).all():
        raise InputError(f"'{path}': the dates '{name}' have missing values.")
    return ref + days.astype("timedelta64[D]")


def to_date(value):
    """A ``datetime64[D]`` as ``datetime.date``."""
    return dt.date(1970, 1, 1) + dt.timedelta(days=int((value - EPOCH).astype(np.int64)))


def _mapping_var(ds, names=VARIABLES):
    """The grid-mapping variable (named by a velocity's ``grid_mapping``, else 'mapping')."""
    for n in names:
        if n in ds.variables and ds[n].attrs.get("grid_mapping") in ds.variables:
            return ds[ds[n].attrs["grid_mapping"]]
    return ds["mapping"] if "mapping" in ds.variables else None


def _crs_wkt(mapping):
    srs = osr.SpatialReference()
    attrs = mapping.attrs
    for key in ("crs_wkt", "spatial_ref"):
        if attrs.get(key):
            srs.ImportFromWkt(str(attrs[key]))
            return srs.ExportToWkt()
    if attrs.get("spatial_epsg") not in (None, ""):
        srs.ImportFromEPSG(int(float(attrs["spatial_epsg"])))
        return srs.ExportToWkt()
    if attrs.get("proj4text"):
        srs.ImportFromProj4(str(attrs["proj4text"]))
        return srs.ExportToWkt()
    return ""


def _axis(ds, name, path):
    if name not in ds.variables or ds[name].ndim != 1 or ds[name].size < 2:
        return None
    c = np.asarray(ds[name].values, np.float64)
    step = np.diff(c)
    if not np.allclose(step, step[0], rtol=1e-6, atol=1e-6 * abs(step[0])) or step[0] == 0:
        raise InputError(f"'{path}': the '{name}' coordinates are not regularly spaced.")
    return c


def read_grid(ds, path):
    """``(Grid, flip_y)`` of a cube or granule: GeoTransform of the grid mapping, else the x/y
    pixel-centre coordinates; ``flip_y`` when rows are stored south to north (they are then
    flipped on reading so the grid is north-up)."""
    mapping = _mapping_var(ds)
    wkt = _crs_wkt(mapping) if mapping is not None else ""
    if not wkt:
        raise InputError(f"'{path}' has no grid mapping: expected a 'mapping' variable (named "
                         "by the velocities' grid_mapping attribute) with crs_wkt, spatial_epsg "
                         "or proj4text.")
    rows, cols = ds.sizes.get("y"), ds.sizes.get("x")
    if not rows or not cols:
        raise InputError(f"'{path}' has no 'y'/'x' dimensions.")
    x, y = _axis(ds, "x", path), _axis(ds, "y", path)
    if x is not None and y is not None:
        dx, dy = x[1] - x[0], y[1] - y[0]
        flip = dy > 0
        top = y[-1] if flip else y[0]
        return Grid((x[0] - dx / 2, dx, 0.0, top + abs(dy) / 2, 0.0, -abs(dy)), (rows, cols),
                    wkt), bool(flip)
    gt = str(mapping.attrs.get("GeoTransform", "")).split()
    if len(gt) == 6:
        gt = tuple(float(v) for v in gt)
        if gt[2] == 0 and gt[4] == 0 and gt[5] < 0:
            return Grid(gt, (rows, cols), wkt), False
    raise InputError(f"'{path}' has no usable grid: the mapping variable has no north-up "
                     "GeoTransform and there are no regular x/y coordinates.")


def window_of(grid, extent, path):
    """The window ``(row_off, col_off, rows, cols)`` of ``grid`` covering ``extent``
    ``(xmin, ymin, xmax, ymax, crs_wkt)`` (any CRS; None = the whole grid)."""
    if extent is None:
        return (0, 0, grid.rows, grid.cols)
    xmin, ymin, xmax, ymax, wkt = extent
    if wkt and grid.crs_wkt:
        src = osr.SpatialReference()
        src.ImportFromWkt(wkt)
        src.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        if not src.IsSame(grid.srs()):
            try:
                ct = osr.CoordinateTransformation(src, grid.srs())
                xmin, ymin, xmax, ymax = ct.TransformBounds(xmin, ymin, xmax, ymax, 21)
            except RuntimeError as exc:
                raise InputError(f"The EXTENT cannot be transformed to the CRS of '{path}': "
                                 f"{exc}") from None
    x0, dx, _, y0, _, dy = grid.transform
    c0 = max(int(math.floor((xmin - x0) / dx)), 0)
    c1 = min(int(math.ceil((xmax - x0) / dx)), grid.cols)
    r0 = max(int(math.floor((ymax - y0) / dy)), 0)
    r1 = min(int(math.ceil((ymin - y0) / dy)), grid.rows)
    if c1 <= c0 or r1 <= r0:
        raise InputError(f"The EXTENT does not overlap '{path}' (its extent is {grid.bounds} in "
                         "its own CRS).")
    return (r0, c0, r1 - r0, c1 - c0)


# ---------------------------------------------------------------------------- cubes

@dataclass
class CubeInfo:
    """A cube's header: grid, layer intervals, each layer's baseline (``date_dt``, days) and
    sensor code, the velocity variables present, and whether rows are stored south-up."""

    path: str
    grid: Grid
    intervals: list
    date_dt: np.ndarray
    satellites: list
    variables: list
    flip_y: bool = False
    attrs: dict = field(default_factory=dict)

    @property
    def count(self):
        return len(self.intervals)


def _pair_dates(ds, path):
    """``(start, end)`` ``datetime64[D]`` arrays of the layers of a cube."""
    n = ds.sizes["mid_date"]
    for a, b in (("acquisition_date_img1", "acquisition_date_img2"), ("date1", "date2")):
        if a in ds.variables and b in ds.variables:
            return (cf_dates(ds[a].values, ds[a].attrs.get("units", ""), path, a),
                    cf_dates(ds[b].values, ds[b].attrs.get("units", ""), path, b))
    bounds = ds["mid_date"].attrs.get("bounds") if "mid_date" in ds.variables else None
    if bounds in ds.variables and ds[bounds].shape == (n, 2):
        units = ds["mid_date"].attrs.get("units", "")
        values = ds[bounds].values
        return (cf_dates(values[:, 0], units, path, bounds),
                cf_dates(values[:, 1], units, path, bounds))
    raise InputError(f"'{path}' has no pair dates: expected 1-D variables acquisition_date_img1 "
                     "and acquisition_date_img2 (or date1/date2, or CF time_bnds) along mid_date, "
                     f"in '{DATE_UNITS}'.")


def _strings(values):
    out = []
    for v in np.asarray(values).ravel():
        v = v.decode() if isinstance(v, bytes) else v
        out.append("" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v).strip())
    return out


def read_cube_info(path, ds=None):
    """The :class:`CubeInfo` of a cube file; :class:`InputError` naming what is missing."""
    own = ds is None
    ds = open_dataset(path, "cube") if own else ds
    try:
        if "mid_date" not in ds.dims:
            raise InputError(f"'{path}' is not a cube: it has no 'mid_date' dimension (dims: "
                             f"{', '.join(ds.dims)}).")
        variables = [n for n in VARIABLES if n in ds.variables
                     and ds[n].dims == ("mid_date", "y", "x")]
        if not variables:
            raise InputError(f"'{path}' has none of the variables {', '.join(VARIABLES)} with "
                             "dimensions (mid_date, y, x).")
        for n in variables:
            check_velocity_units(ds, n, path)
        grid, flip = read_grid(ds, path)
        start, end = _pair_dates(ds, path)
        if "date_dt" in ds.variables:
            days = np.asarray(ds["date_dt"].values, np.float64)
        else:
            days = (end - start).astype(np.float64)
        n = ds.sizes["mid_date"]
        satellites = [""] * n
        if "satellite_img1" in ds.variables:
            sats = _strings(ds["satellite_img1"].values)
            missions = (_strings(ds["mission_img1"].values) if "mission_img1" in ds.variables
                        else [""] * n)
            satellites = [m + s if m and not s.upper().startswith(m.upper()) else s
                          for m, s in zip(missions, sats)]
        intervals = [Interval(to_date(a), to_date(b)) for a, b in zip(start, end)]
        return CubeInfo(str(path), grid, intervals, days, satellites, variables, flip,
                        dict(ds.attrs))
    finally:
        if own:
            ds.close()


def read_values(variable, path):
    """The values of an xarray variable (a window of it) as float32; :class:`InputError`
    naming ``path`` when the data cannot be read (a file whose header opens but whose data are
    cut short or damaged)."""
    try:
        return np.asarray(variable.values, np.float32)
    except (RuntimeError, OSError, ValueError) as exc:
        raise InputError(f"'{path}' is damaged or truncated: its variable '{variable.name}' "
                         f"cannot be read ({exc}).") from None


def select_layers(info, start=None, end=None, min_days=None, max_days=None, keep=None):
    """Indices of the layers whose pair lies within ``[start, end]`` (dates), whose baseline is
    within ``[min_days, max_days]`` and for which ``keep(index)`` is true (all when None)."""
    idx = []
    for i, iv in enumerate(info.intervals):
        if start is not None and iv.start < start or end is not None and iv.end > end:
            continue
        d = info.date_dt[i]
        if min_days is not None and d < min_days or max_days is not None and d > max_days:
            continue
        if keep is None or keep(i):
            idx.append(i)
    return np.array(idx, np.int64)


def iter_window(ds, info, layers, window, variables=None, budget=READ_BUDGET, progress=None):
    """Yield ``(layer_index, {variable: 2-D float32 array})`` for each of ``layers`` (sorted
    indices), reading ``window`` ``(row_off, col_off, rows, cols)`` of the north-up grid.

    Layers are read in blocks of consecutive indices (one slice each: a chunked file decompresses
    every chunk once per block) holding at most ``budget`` bytes, so any cube size fits."""
    variables = list(variables or info.variables)
    r0, c0, nr, nc = window
    if info.flip_y:
        r0 = info.grid.rows - r0 - nr
    per_layer = max(nr * nc * 4 * len(variables), 1)
    block = max(int(budget // per_layer), 1)
    layers = np.asarray(layers, np.int64)
    done, k = 0, 0
    while k < layers.size:
        first = layers[k]
        stop = k
        while stop < layers.size and layers[stop] < first + block:
            stop += 1
        wanted = layers[k:stop]
        sel = {"mid_date": slice(int(first), int(wanted[-1]) + 1), "y": slice(r0, r0 + nr),
               "x": slice(c0, c0 + nc)}
        data = {}
        for name in variables:
            arr = read_values(ds[name].isel(sel).transpose("mid_date", "y", "x"), info.path)
            data[name] = arr[:, ::-1] if info.flip_y else arr
        for i in wanted:
            yield int(i), {n: data[n][i - first] for n in variables}
            done += 1
            if progress is not None:
                progress.update(done / layers.size)
        k = stop


# ---------------------------------------------------------------------------- export

def _grid_mapping_attrs(grid):
    """CF grid-mapping attributes of a grid's CRS, with GDAL's GeoTransform."""
    srs = grid.srs()
    try:
        srs.AutoIdentifyEPSG()
    except RuntimeError:  # a custom CRS (no EPSG code): crs_wkt and proj4text describe it
        pass
    code = srs.GetAuthorityCode(None)
    attrs = {"crs_wkt": grid.crs_wkt, "spatial_ref": grid.crs_wkt,
             "proj4text": srs.ExportToProj4().strip(),
             "GeoTransform": " ".join(repr(float(v)) for v in grid.transform)}
    if code:
        attrs["spatial_epsg"] = np.int32(code)
    proj = (srs.GetAttrValue("PROJECTION") or "").lower()
    if srs.IsGeographic():
        attrs["grid_mapping_name"] = "latitude_longitude"
    elif proj == "transverse_mercator":
        attrs.update(grid_mapping_name="transverse_mercator",
                     scale_factor_at_central_meridian=srs.GetProjParm(osr.SRS_PP_SCALE_FACTOR, 1),
                     longitude_of_central_meridian=srs.GetProjParm(osr.SRS_PP_CENTRAL_MERIDIAN),
                     latitude_of_projection_origin=srs.GetProjParm(osr.SRS_PP_LATITUDE_OF_ORIGIN),
                     false_easting=srs.GetProjParm(osr.SRS_PP_FALSE_EASTING),
                     false_northing=srs.GetProjParm(osr.SRS_PP_FALSE_NORTHING))
    elif proj.startswith("polar_stereographic"):
        attrs.update(grid_mapping_name="polar_stereographic",
                     straight_vertical_longitude_from_pole=srs.GetProjParm(
                         osr.SRS_PP_CENTRAL_MERIDIAN),
                     standard_parallel=srs.GetProjParm(osr.SRS_PP_LATITUDE_OF_ORIGIN),
                     false_easting=srs.GetProjParm(osr.SRS_PP_FALSE_EASTING),
                     false_northing=srs.GetProjParm(osr.SRS_PP_FALSE_NORTHING))
    else:
        attrs["grid_mapping_name"] = proj or "unknown"
    return attrs


class _LazyStack:
    """A velocity stack as a lazily read ``(time, row, col)`` array for dask (bounded memory)."""

    def __init__(self, read, shape, progress, blocks):
        self._read, self.shape, self.dtype, self.ndim = read, shape, np.dtype(np.float32), 3
        self._progress, self._blocks, self._done = progress, blocks, 0

    def __getitem__(self, key):
        t, r, c = key
        out = self._read(t, (r.start or 0, c.start or 0, r.stop - (r.start or 0),
                             c.stop - (c.start or 0)))
        self._done += 1
        if self._progress is not None:
            self._progress.update(self._done / self._blocks)
        return out


def export_cube(output, grid, intervals, readers, sensor="", attrs=None, progress=None):
    """Write a CF-1.8 cube with ITS_LIVE names: NetCDF (``.nc``) or Zarr (a ``.zarr`` folder).

    ``readers`` maps variable names (``v``, ``vx``, ``vy``, ``v_error``) to
    ``read(time_slice, window) -> float32 (time, rows, cols)`` functions (m/yr, NaN = no data).
    ``intervals`` are the layers' date intervals: ``acquisition_date_img1/2`` (and TICOI's
    ``date1``/``date2``) hold their ends, ``mid_date`` their midpoints and ``date_dt`` their
    lengths, all in days since 1970-01-01 / days. Chunks are (all dates up to 20000, 10, 10): a
    pixel's whole series is one chunk. Data are read block by block (never all in memory) and
    written under a temporary name moved into place when complete."""
    xr = _xarray(output, str(output).rstrip("/").lower().endswith(".zarr"), write=True)
    import dask
    import dask.array as da

    output = str(output).rstrip("/")
    zarr = output.lower().endswith(".zarr")
    if not zarr and not output.lower().endswith((".nc", ".nc4")):
        raise InputError(f"OUTPUT '{output}': name a NetCDF file (.nc) or a Zarr folder (.zarr).")
    n, (rows, cols) = len(intervals), grid.shape
    start = np.array([(iv.start - dt.date(1970, 1, 1)).days for iv in intervals], np.float64)
    end = np.array([(iv.end - dt.date(1970, 1, 1)).days for iv in intervals], np.float64)
    xs, ys = grid.centres()
    chunks = (min(n, TIME_CHUNK), min(rows, SPACE_CHUNK), min(cols, SPACE_CHUNK))
    # dask blocks: whole series of 256 x 256 pixels (GeoTIFF tiles), a few hundred MB at most
    side = 256 if n * 256 * 256 * 4 <= READ_BUDGET else max(16, int(math.sqrt(READ_BUDGET / n / 4)))
    side = max(side // SPACE_CHUNK * SPACE_CHUNK, SPACE_CHUNK)
    blocks = len(readers) * math.ceil(rows / side) * math.ceil(cols / side)
    date_attrs = {"units": DATE_UNITS, "calendar": "standard"}
    ds = xr.Dataset(coords={
        "mid_date": ("mid_date", start + (end - start) / 2,
                     dict(date_attrs, standard_name="time", long_name="midpoint of the interval")),
        "y": ("y", ys, {"standard_name": "projection_y_coordinate", "units": "m",
                        "long_name": "y of pixel centres"}),
        "x": ("x", xs, {"standard_name": "projection_x_coordinate", "units": "m",
                        "long_name": "x of pixel centres"})})
    long_names = {"v": "speed", "vx": "velocity east (x) component",
                  "vy": "velocity north (y) component", "v_error": "speed error (1 sigma)"}
    for name, read in readers.items():
        lazy = _LazyStack(read, (n, rows, cols), progress, blocks)
        data = da.from_array(lazy, chunks=(n, side, side), asarray=True, fancy=False)
        ds[name] = (("mid_date", "y", "x"), data,
                    {"units": VELOCITY_UNITS, "grid_mapping": "mapping", "long_name": long_names[name]})
    for name, (label, values) in {"acquisition_date_img1": ("first acquisition", start),
                                  "acquisition_date_img2": ("second acquisition", end),
                                  "date1": ("first acquisition (TICOI)", start),
                                  "date2": ("second acquisition (TICOI)", end)}.items():
        ds[name] = ("mid_date", values, dict(date_attrs, long_name=label))
    ds["date_dt"] = ("mid_date", end - start, {"units": "days", "long_name": "time separation"})
    ds["mapping"] = ((), np.int32(0), _grid_mapping_attrs(grid))
    srs = grid.srs()
    ds.attrs = {"Conventions": "CF-1.8", "title": "Velocity cube",
                "author": "Glacier Velocity (QGIS plugin)", "source": "Glacier Velocity",
                "proj4": srs.ExportToProj4().strip(), "sensor": sensor or "",
                "date_created": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    ds.attrs.update(attrs or {})
    no_fill = {"_FillValue": None}
    encoding = {name: {"_FillValue": None} for name in ("x", "y", "mid_date", "date_dt",
                                                         "acquisition_date_img1",
                                                         "acquisition_date_img2", "date1", "date2")}
    for name in readers:
        if zarr:
            import numcodecs

            encoding[name] = {"chunks": chunks, "compressor": numcodecs.Zlib(level=4),
                              "_FillValue": np.float32("nan"), "dtype": "float32"}
        else:
            encoding[name] = {"chunksizes": chunks, "zlib": True, "complevel": 4, "shuffle": True,
                              "_FillValue": np.float32("nan"), "dtype": "float32"}
    encoding["mapping"] = no_fill
    prepare_folder(output, "cube")  # removes a killed run's temporary cube there
    tmp = temporary_path(output)
    try:
        with dask.config.set(scheduler="synchronous"):  # netCDF4 is not thread-safe
            if zarr:
                ds.to_zarr(tmp, mode="w", encoding=encoding, consolidated=True)
            else:
                ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4", encoding=encoding)
        if os.path.isdir(output):  # an older Zarr cube (a file is replaced in one step)
            _remove(output)
        os.replace(tmp, output)
    except OSError as exc:
        raise InputError(f"OUTPUT '{output}' cannot be written: {exc}") from None
    finally:
        _remove(tmp)
    return output


def _remove(path):
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.remove(path)


# ---------------------------------------------------------------------------- stack view

def cube_stack_info(source):
    """``(grid, intervals, sensor, quantity)`` of a cube subdataset read as a velocity stack
    (``NETCDF:"cube.nc":v``); :class:`InputError` when it is not one (e.g. an ITS_LIVE pair
    cube, whose layers overlap and are not in date order)."""
    path, variable = cube_source(source)
    if os.path.isdir(path):
        raise InputError(f"'{path}' is a Zarr cube: GDAL reads Zarr layers one by one, so the "
                         "stack algorithms and the dock take cubes as NetCDF (export to .nc with "
                         "'Export stacks as a NetCDF/Zarr cube'), or import it into pair products "
                         "with 'Import ITS_LIVE granules or cube'.")
    info = read_cube_info(path)
    if variable not in info.variables:
        raise InputError(f"'{path}' has no velocity variable '{variable}' (it has "
                         f"{', '.join(info.variables)}).")
    starts = [iv.start for iv in info.intervals]
    if starts != sorted(starts):
        raise InputError(f"'{path}' holds image pairs out of date order (an ITS_LIVE pair cube?): "
                         "import it with 'Import ITS_LIVE granules or cube' and build stacks with "
                         "'Monthly stacks from pair products'.")
    quantity = variable if variable in ("v", "vx", "vy") else "v"
    return info.grid, info.intervals, str(info.attrs.get("sensor", "")), quantity
