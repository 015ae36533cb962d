"""Synthetic files in the ITS_LIVE conventions, written with netCDF4 (tests, benchmarks, demos).

They follow the published layout (GUIDE §6) and are written with netCDF4 directly, not with the
plugin's reader/writer, so a round trip through :mod:`..io.itslive` is checked against an
independent writer. Velocities are int16 m/yr with ``_FillValue`` −32767; the grid mapping is the
scalar ``mapping`` variable with ``crs_wkt``, ``spatial_epsg``, ``proj4text`` and
``GeoTransform``; dates are ``img_pair_info`` attributes (granule) or 1-D variables in days since
1970-01-01 (cube).
"""

import datetime as dt

import numpy as np
from osgeo import osr

FILL = -32767


def _mapping(nc, epsg, transform):
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(int(epsg))
    m = nc.createVariable("mapping", "S1")
    m.grid_mapping_name = "universal_transverse_mercator"
    m.crs_wkt = srs.ExportToWkt()
    m.spatial_epsg = int(epsg)
    m.proj4text = srs.ExportToProj4()
    m.GeoTransform = " ".join(str(v) for v in transform)


def _coords(nc, transform, rows, cols, write_xy=True):
    nc.createDimension("y", rows)
    nc.createDimension("x", cols)
    if write_xy:
        x0, dx, _, y0, _, dy = transform
        x = nc.createVariable("x", "f8", ("x",))
        x[:] = x0 + dx * (np.arange(cols) + 0.5)
        x.standard_name = "projection_x_coordinate"
        y = nc.createVariable("y", "f8", ("y",))
        y[:] = y0 + dy * (np.arange(rows) + 0.5)
        y.standard_name = "projection_y_coordinate"


def _velocity(nc, name, dims, values, units, chunks=None, mapping=True):
    var = nc.createVariable(name, "i2", dims, fill_value=FILL, zlib=True, complevel=2,
                            chunksizes=chunks)
    var.units = units
    if mapping:
        var.grid_mapping = "mapping"
    var.set_auto_maskandscale(False)
    data = np.where(np.isfinite(values), np.round(values), FILL).astype(np.int16)
    var[:] = data
    return var


def _days(datetimes):
    """Days since 1970-01-01 (fractional) of datetimes."""
    return np.array([(d - dt.datetime(1970, 1, 1)).total_seconds() / 86400.0 for d in datetimes])


def write_granule(path, vx, vy, start, end, transform, epsg=32645, mission="S", satellite="2A",
                  v_error=None, vx_error=3.5, vy_error=4.5, units="meter/year", dates=True,
                  mapping=True, write_xy=True):
    """An ITS_LIVE image-pair granule. ``vx``, ``vy`` (m/yr, NaN = fill) are rounded to int16
    as ITS_LIVE stores them; ``v`` is their magnitude rounded; ``start``/``end`` are
    datetimes; ``transform`` the GDAL geotransform. ``dates``/``mapping``/``units`` break the
    file on purpose (bad-input tests)."""
    import netCDF4

    rows, cols = np.shape(vx)
    with netCDF4.Dataset(path, "w") as nc:
        nc.Conventions = "CF-1.8"
        nc.author = "ITS_LIVE, a NASA MEaSUREs project (its-live.jpl.nasa.gov)"
        _coords(nc, transform, rows, cols, write_xy)
        if mapping:
            _mapping(nc, epsg, transform)
        for name, values in (("vx", vx), ("vy", vy), ("v", np.hypot(vx, vy))):
            var = _velocity(nc, name, ("y", "x"), values, units, mapping=mapping)
            if name in ("vx", "vy"):
                var.error = vx_error if name == "vx" else vy_error
                var.error_stationary = var.error
        if v_error is not None:
            _velocity(nc, "v_error", ("y", "x"), v_error, units, mapping=mapping)
        info = nc.createVariable("img_pair_info", "S1")
        info.mission_img1 = mission
        info.satellite_img1 = satellite
        info.mission_img2 = mission
        info.satellite_img2 = satellite
        if dates:
            info.acquisition_date_img1 = start.strftime("%Y%m%dT%H:%M:%S.0")
            info.acquisition_date_img2 = end.strftime("%Y%m%dT%H:%M:%S.0")
            info.date_center = (start + (end - start) / 2).strftime("%Y%m%dT%H:%M:%S.0")
        info.date_dt = (end - start).total_seconds() / 86400.0
    return str(path)


def write_cube(path, vx, vy, starts, ends, satellites, transform, epsg=32645, v_error=None,
               vx_error=None, vy_error=None, chunks=None, units="meter/year", dates=True,
               shape=None):
    """An ITS_LIVE datacube ``(mid_date, y, x)`` of int16 m/yr (NaN = fill). ``starts``/``ends``
    are datetimes; ``satellites`` the ``satellite_img1`` codes ("1A", "2A", "8"...);
    ``vx_error``/``vy_error`` 1-D per layer; chunks default to ITS_LIVE's (N ≤ 20000, 10, 10).
    ``vx``/``vy``/``v_error`` may be callables ``f(row0, row1) -> (N, row1 - row0, cols)``
    (give ``shape=(rows, cols)``), so that a big cube is written strip of chunks by strip of
    chunks, each chunk once, without holding the cube in memory."""
    import netCDF4

    n = len(starts)
    rows, cols = shape or np.shape(vx)[1:]
    chunks = chunks or (min(n, 20000), min(rows, 10), min(cols, 10))
    d1, d2 = _days(starts), _days(ends)
    with netCDF4.Dataset(path, "w") as nc:
        nc.Conventions = "CF-1.8"
        nc.author = "ITS_LIVE, a NASA MEaSUREs project (its-live.jpl.nasa.gov)"
        nc.createDimension("mid_date", n)
        _coords(nc, transform, rows, cols)
        _mapping(nc, epsg, transform)
        mid = nc.createVariable("mid_date", "f8", ("mid_date",))
        mid[:] = (d1 + d2) / 2
        mid.units = "days since 1970-01-01"
        if dates:
            for name, values in (("acquisition_date_img1", d1), ("acquisition_date_img2", d2)):
                var = nc.createVariable(name, "f8", ("mid_date",))
                var[:] = values
                var.units = "days since 1970-01-01"
        ddt = nc.createVariable("date_dt", "f8", ("mid_date",))
        ddt[:] = d2 - d1
        ddt.units = "days"
        sat = nc.createVariable("satellite_img1", str, ("mid_date",))
        sat[:] = np.array(satellites, dtype=object)
        for name, values in (("vx_error", vx_error), ("vy_error", vy_error)):
            if values is not None:
                var = nc.createVariable(name, "f4", ("mid_date",))
                var[:] = values
                var.units = units
        fields = [("vx", vx), ("vy", vy)] + ([("v_error", v_error)] if v_error is not None else [])
        out = {}
        for name, _ in fields + [("v", None)]:
            var = nc.createVariable(name, "i2", ("mid_date", "y", "x"), fill_value=FILL,
                                    zlib=True, complevel=1, chunksizes=chunks)
            var.units = units
            var.grid_mapping = "mapping"
            var.set_auto_maskandscale(False)
            out[name] = var
        for r0 in range(0, rows, chunks[1]):
            r1 = min(rows, r0 + chunks[1])
            strip = {name: np.asarray(f(r0, r1) if callable(f) else np.asarray(f)[:, r0:r1])
                     for name, f in fields}
            strip["v"] = np.hypot(strip["vx"], strip["vy"])
            for name, values in strip.items():
                out[name][:, r0:r1, :] = np.where(np.isfinite(values), np.round(values),
                                                  FILL).astype(np.int16)
    return str(path)
