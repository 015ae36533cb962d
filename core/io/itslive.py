"""ITS_LIVE image-pair granules and datacubes imported as our pair products.

Granule (NetCDF, one pair): ``vx``, ``vy``, ``v``, ``v_error`` on ``(y, x)`` (int16 with
``_FillValue`` −32767, which becomes NaN; any ``scale_factor`` applied), in "meter/year"; the grid
from the ``mapping`` variable or the x/y coordinates (see :mod:`.cubes`); the dates from the
scalar ``img_pair_info`` variable (``acquisition_date_img1/2`` such as "20180103T04:06:59.0",
``date_dt`` in days) and the sensor from its ``mission_img1`` + ``satellite_img1`` ("S" + "2A").
Cube (NetCDF or Zarr): the same variables on ``(mid_date, y, x)``, with the pair attributes as
1-D variables along ``mid_date`` (see :func:`.cubes.read_cube_info`).

Each granule or cube layer becomes a pair product ``<sensor>_<YYYYMMDD>_<YYYYMMDD>.tif``
(bands ``vx, vy, v, snr`` and a fifth band ``v_error`` when the source has it; SNR is unknown,
NaN, which the SNR filter keeps and monthly weighting counts as 1). ITS_LIVE's own ``v`` is kept
(not recomputed from the rounded components). Metadata: ``VX_ERROR``/``VY_ERROR`` (1-sigma m/yr
of the pair: a cube's ``vx_error``/``vy_error``, a granule's ``error`` attribute of vx/vy) and
``V_ERROR`` (their root mean square: the per-component error the temporal inversion reads),
``DATE_DT`` (days), ``SATELLITE`` (the raw code), ``SOURCE=ITS_LIVE`` and ``SOURCE_FILE``.

The other way, :func:`export_stacks` writes velocity stacks as one cube with ITS_LIVE names
(:func:`.cubes.export_cube`), which xarray and TICOI's generic loader open.
"""

import math
import os
import re
import shutil

import numpy as np

from ..errors import InputError
from ..progress import ensure
from .atomic import make_folder, temporary_path
from .cubes import (check_velocity_units, export_cube, iter_window, open_dataset, read_cube_info,
                    read_grid, read_values, select_layers, window_of)
from .dates import Interval, parse_date
from .grid import crs_name
from .products import PairWriter, read_stack, read_stack_info

SENSOR_FILTERS = ("landsat", "sentinel1", "sentinel2")


def sensor_name(code):
    """Our sensor name of an ITS_LIVE mission + satellite code: S1A/S1B/1A → sentinel1,
    S2A/S2B/2A → sentinel2, L4–L9/LC08/8 → landsat; anything else lower-cased as it is."""
    c = re.sub(r"\.0*$", "", str(code).strip().upper()).replace("-", "").replace("_", "")
    if re.fullmatch(r"(S|SENTINEL)?1[A-D]?", c):
        return "sentinel1"
    if re.fullmatch(r"(S|SENTINEL)?2[A-D]?", c):
        return "sentinel2"
    if re.fullmatch(r"(L|LS|LANDSAT|L[COTEM]0?)?[4-9]", c):
        return "landsat"
    return str(code).strip().lower()


def _attr_float(attrs, *keys):
    for key in keys:
        try:
            value = float(attrs[key])
        except (KeyError, TypeError, ValueError):
            continue
        if math.isfinite(value):
            return value
    return None


def _error_metadata(vx_error, vy_error):
    """Metadata of a pair's 1-sigma errors (m/yr): ``VX_ERROR``, ``VY_ERROR`` and ``V_ERROR``,
    the error per component the inversion reads, sqrt of the mean of their squares."""
    meta = {k: v for k, v in (("VX_ERROR", vx_error), ("VY_ERROR", vy_error))
            if v is not None and math.isfinite(v)}
    if meta:
        meta["V_ERROR"] = math.sqrt(sum(v * v for v in meta.values()) / len(meta))
    return meta


# ---------------------------------------------------------------------------- what to import

def find_inputs(path):
    """``('cube', path)`` or ``('granules', [paths])`` for a cube file/folder, a granule or a
    folder of granules; :class:`InputError` when there is nothing to read."""
    path = str(path).rstrip("/")
    if os.path.basename(path) in (".zmetadata", ".zgroup", ".zattrs"):
        path = os.path.dirname(path)  # a Zarr folder picked through its metadata file
    if not path or not os.path.exists(path):
        raise InputError(f"INPUT: '{path}' does not exist.")
    if os.path.isdir(path) and (path.lower().endswith(".zarr")
                                or os.path.isfile(os.path.join(path, ".zgroup"))):
        return "cube", path
    if os.path.isdir(path):
        files = sorted(os.path.join(path, f) for f in os.listdir(path)
                       if f.lower().endswith((".nc", ".nc4")))
        if not files:
            raise InputError(f"INPUT: the folder '{path}' holds no NetCDF (.nc) granule.")
        return "granules", files
    try:
        ds = open_dataset(path, "ITS_LIVE file")
    except InputError as exc:
        raise InputError(f"INPUT: {exc}") from None
    try:
        kind = "cube" if "mid_date" in ds.dims else "granules"
    finally:
        ds.close()
    return kind, (path if kind == "cube" else [path])


# ---------------------------------------------------------------------------- import

def _unique_name(folder, sensor, interval, taken):
    stem = f"{sensor or 'unknown'}_{interval.start:%Y%m%d}_{interval.end:%Y%m%d}"
    name, k = stem, 1
    while name in taken:
        k += 1
        name = f"{stem}_{k}"
    taken.add(name)
    return os.path.join(folder, name + ".tif")


def _write_pair(path, grid, interval, sensor, data, meta):
    """A pair product (5th band v_error when given); :class:`PairWriter` writes it under a
    temporary name and moves it into place when complete (and creates the folder)."""
    with PairWriter(path, grid, interval.start, interval.end, sensor, meta,
                    extra_bands=("v_error",) if "v_error" in data else ()) as w:
        snr = np.full(data["vx"].shape, np.nan, np.float32)
        w.write(data["vx"], data["vy"], snr, v=data.get("v"))
        if "v_error" in data:
            w.write_extra("v_error", data["v_error"])
    return path


def import_itslive(source, output_folder, extent=None, start=None, end=None, min_days=None,
                   max_days=None, sensors=None, progress=None, log=None):
    """Import ITS_LIVE granules (a file or a folder of them) or a datacube (NetCDF file or Zarr
    folder) into pair products in ``output_folder``; return the list of written paths.

    ``extent`` is ``(xmin, ymin, xmax, ymax, crs_wkt)`` in any CRS (None: the whole grid; a cube
    is read only inside it); ``start``/``end`` keep pairs whose both dates lie within them;
    ``min_days``/``max_days`` bound the baseline ``date_dt``; ``sensors`` a list of our sensor
    names to keep (None/empty: all). ``log(message)`` receives one line per skipped granule.
    :class:`InputError` names the file and what is missing, or says that nothing matched.
    """
    progress = ensure(progress)
    start = parse_date(start) if start else None
    end = parse_date(end) if end else None
    sensors = set(sensors or ())
    kind, found = find_inputs(source)
    # all or none: the pairs are written into a hidden staging folder inside the output folder
    # and moved into place when every one is complete; a refused input leaves no (empty) folder,
    # a failed or cancelled run leaves the folder as it was (a killed run's staging folder is
    # removed by the next run, see core.io.atomic)
    made = not os.path.isdir(output_folder)
    staging = temporary_path(os.path.join(output_folder, "import"))
    try:
        if kind == "cube":
            staged = _import_cube(found, staging, extent, start, end, min_days, max_days,
                                  sensors, progress)
        else:
            staged = _import_granules(source, found, staging, extent, start, end, min_days,
                                      max_days, sensors, progress, log)
        make_folder(output_folder)
        written = []
        for path in staged:
            written.append(os.path.join(output_folder, os.path.basename(path)))
            os.replace(path, written[-1])
        return written
    except BaseException:
        if made:
            shutil.rmtree(output_folder, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _import_granules(source, found, output_folder, extent, start, end, min_days, max_days,
                     sensors, progress, log):
    """Import granule files ``found`` (see :func:`import_itslive`); the paths written."""
    written, taken, reasons, damaged = [], set(), [], 0
    for k, path in enumerate(found):
        try:
            item = _read_granule(path, extent, start, end, min_days, max_days, sensors)
        except InputError as exc:
            if len(found) == 1:
                raise InputError(f"INPUT: {exc}") from None
            # one damaged or foreign file in a folder does not stop the others
            item, damaged = str(exc).rstrip("."), damaged + 1
        if isinstance(item, str):
            reasons.append(item)
            if log is not None:
                log(f"Skipped {os.path.basename(path)}: {item}.")
        else:
            grid, interval, sensor, data, meta = item
            out = _unique_name(output_folder, sensor, interval, taken)
            written.append(_write_pair(out, grid, interval, sensor, data, meta))
        progress.update((k + 1) / len(found))
    if not written:
        what = "is readable" if damaged == len(found) else "matches the request"
        raise InputError(f"INPUT: no ITS_LIVE granule of '{source}' {what}: "
                         f"{'; '.join(sorted(set(reasons))[:5])}.")
    if log is not None and len(found) > 1:
        log(f"{len(found)} granule(s): {len(written)} written, {len(found) - len(written)} "
            "skipped.")
    return written


def _granule_dates(ds, path):
    info = ds["img_pair_info"].attrs if "img_pair_info" in ds.variables else {}
    a, b = info.get("acquisition_date_img1"), info.get("acquisition_date_img2")
    if not a or not b:
        raise InputError(f"'{path}' has no acquisition dates: expected the attributes "
                         "acquisition_date_img1 and acquisition_date_img2 of its img_pair_info "
                         "variable (ITS_LIVE granule convention).")
    interval = Interval(parse_date(a), parse_date(b))
    days = _attr_float(info, "date_dt")
    return interval, days if days is not None else float(interval.days), info


def _read_granule(path, extent, start, end, min_days, max_days, sensors):
    """``(grid, interval, sensor, arrays, metadata)`` of a granule's window, or the reason
    (text) it is filtered out."""
    ds = open_dataset(path, "ITS_LIVE granule")
    try:
        missing = [n for n in ("vx", "vy") if n not in ds.variables]
        if missing:
            raise InputError(f"'{path}' has no variable {' or '.join(missing)}: it is not an "
                             "ITS_LIVE granule (expected vx, vy, v, v_error on y, x).")
        names = [n for n in ("vx", "vy", "v", "v_error") if n in ds.variables]
        for n in names:
            check_velocity_units(ds, n, path)
        interval, days, info = _granule_dates(ds, path)
        code = str(info.get("mission_img1", "")).strip()
        sat = str(info.get("satellite_img1", "")).strip()
        code = code + sat if code and not sat.upper().startswith(code.upper()) else sat or code
        sensor = sensor_name(code)
        if start is not None and interval.start < start or end is not None and interval.end > end:
            return "outside START_DATE/END_DATE"
        if min_days is not None and days < min_days or max_days is not None and days > max_days:
            return "baseline outside MIN_DAYS/MAX_DAYS"
        if sensors and sensor not in sensors:
            return f"sensor {sensor} not selected"
        grid, flip = read_grid(ds, path)
        try:
            r0, c0, nr, nc = window_of(grid, extent, path)
        except InputError:
            return "outside EXTENT"
        s0 = grid.rows - r0 - nr if flip else r0  # the window's first row as stored
        data = {}
        for n in names:
            arr = read_values(ds[n].isel(y=slice(s0, s0 + nr), x=slice(c0, c0 + nc))
                              .transpose("y", "x"), path)
            data[n] = arr[::-1] if flip else arr
        meta = {"SOURCE": "ITS_LIVE", "SOURCE_FILE": os.path.basename(path), "DATE_DT": days,
                "SATELLITE": code}
        meta.update(_error_metadata(_attr_float(ds["vx"].attrs, "error", "error_stationary"),
                                    _attr_float(ds["vy"].attrs, "error", "error_stationary")))
        return grid.subgrid(r0, c0, nr, nc), interval, sensor, data, meta
    finally:
        ds.close()


def _import_cube(path, output_folder, extent, start, end, min_days, max_days, sensors, progress):
    ds = open_dataset(path, "ITS_LIVE cube")
    try:
        try:
            info = read_cube_info(path, ds)
        except InputError as exc:
            raise InputError(f"INPUT: {exc}") from None
        missing = [n for n in ("vx", "vy") if n not in info.variables]
        if missing:
            raise InputError(f"'{path}' has no {' or '.join(missing)} on (mid_date, y, x): pair "
                             "products need both velocity components.")
        names = {s: sensor_name(s) for s in set(info.satellites)}
        layers = select_layers(info, start, end, min_days, max_days,
                               (lambda i: names[info.satellites[i]] in sensors) if sensors else None)
        if layers.size == 0:
            asked = [f"{k} {v}" for k, v in (("START_DATE", start), ("END_DATE", end),
                                              ("MIN_DAYS", min_days), ("MAX_DAYS", max_days),
                                              ("SENSORS", ", ".join(sorted(sensors))))
                     if v not in (None, "")]
            raise InputError(f"'{path}' has no layer in the requested dates, baselines and sensors "
                             f"({'; '.join(asked)}): its {info.count} pairs span "
                             f"{min(iv.start for iv in info.intervals)} to "
                             f"{max(iv.end for iv in info.intervals)}, baselines "
                             f"{np.min(info.date_dt):g}-{np.max(info.date_dt):g} days, sensors "
                             f"{', '.join(sorted(set(names.values()))) or 'unknown'}.")
        window = window_of(info.grid, extent, path)
        grid = info.grid.subgrid(*window)
        errors = {key: np.asarray(ds[n].values, np.float64)
                  for n, key in (("vx_error", "VX_ERROR"), ("vy_error", "VY_ERROR"))
                  if n in ds.variables and ds[n].dims == ("mid_date",)}
        written, taken = [], set()
        for i, data in iter_window(ds, info, layers, window, progress=progress):
            sensor = names[info.satellites[i]]
            meta = {"SOURCE": "ITS_LIVE", "SOURCE_FILE": os.path.basename(path),
                    "DATE_DT": float(info.date_dt[i]), "SATELLITE": info.satellites[i],
                    "CUBE_LAYER": i}
            meta.update(_error_metadata(*(float(errors[k][i]) if k in errors else None
                                          for k in ("VX_ERROR", "VY_ERROR"))))
            out = _unique_name(output_folder, sensor, info.intervals[i], taken)
            written.append(_write_pair(out, grid, info.intervals[i], sensor, data, meta))
        return written
    finally:
        ds.close()


# ---------------------------------------------------------------------------- export

def export_stacks(output, stacks, progress=None):
    """Write velocity stacks ``{'v': path, 'vx': path, 'vy': path, 'v_error': path}`` (any of
    them; all on one grid with the same band intervals) as one NetCDF/Zarr cube ``output``."""
    stacks = {k: str(p) for k, p in stacks.items() if p}
    if not stacks:
        raise InputError("INPUT: no velocity stack given.")
    infos = {k: read_stack_info(p) for k, p in stacks.items()}
    first = next(iter(infos.values()))
    for info in infos.values():
        if not info.grid.same_as(first.grid):
            raise InputError(f"The stacks '{first.path}' and '{info.path}' are on different grids "
                             f"({first.grid.shape} / {info.grid.shape} pixels, "
                             f"{crs_name(first.grid.crs_wkt)} / {crs_name(info.grid.crs_wkt)}): "
                             "harmonise them onto one grid first.")
        if info.intervals != first.intervals:
            raise InputError(f"The stacks '{first.path}' and '{info.path}' have different band "
                             "dates: every stack of a cube must cover the same intervals.")
    if not first.grid.crs_wkt:
        raise InputError(f"'{first.path}' has no coordinate reference system: assign one first.")

    def reader(path):
        def read(times, window):
            bands = list(range((times.start or 0) + 1, (times.stop or first.count) + 1))
            return read_stack(path, window, bands)[1]
        return read

    sensor = first.sensor or next((i.sensor for i in infos.values() if i.sensor), "")
    return export_cube(output, first.grid, first.intervals,
                       {k: reader(p) for k, p in stacks.items()}, sensor=sensor,
                       attrs={"source_files": ", ".join(os.path.basename(p)
                                                        for p in stacks.values())},
                       progress=progress)
