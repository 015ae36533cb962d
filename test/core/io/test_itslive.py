"""ITS_LIVE granules and cubes (written here with netCDF4 to the published conventions) imported
as pair products, and stacks exported as cubes read back by netCDF4, xarray and GDAL."""

import datetime as dt
import json
import os
import sys

import numpy as np
import pytest
from osgeo import gdal, osr

from glacier_velocity.core.errors import InputError
from glacier_velocity.core.io.cubes import read_cube_info, subdataset_name
from glacier_velocity.core.io.dates import Interval
from glacier_velocity.core.io.grid import Grid, same_crs
from glacier_velocity.core.io.itslive import export_stacks, import_itslive, sensor_name
from glacier_velocity.core.io.pixel_series import StackPixelReader
from glacier_velocity.core.io.products import (pair_band_index, read_band, read_pair_product,
                                               read_stack, read_stack_info, write_stack)
from glacier_velocity.core.sampledata.itslive import FILL, write_cube, write_granule

netCDF4 = pytest.importorskip("netCDF4")
xr = pytest.importorskip("xarray")

GT = (400000.0, 120.0, 0.0, 3300000.0, 0.0, -120.0)
EPSG = 32645


def _utm_wkt():
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(EPSG)
    return srs.ExportToWkt()


@pytest.fixture
def granule(tmp_path):
    rng = np.random.default_rng(3)
    vx, vy = rng.normal(120, 40, (20, 30)), rng.normal(-60, 20, (20, 30))
    vx[3, 4] = vy[3, 4] = np.nan
    err = np.full((20, 30), 9.0)
    path = write_granule(str(tmp_path / "LC08_X_20180103_20180119_G0120V02_P050.nc"), vx, vy,
                         dt.datetime(2018, 1, 3, 4, 6, 59), dt.datetime(2018, 1, 19, 4, 7, 0), GT,
                         EPSG, mission="L", satellite="8", v_error=err)
    return path, vx, vy, err


def _cube_arrays(n=30, rows=40, cols=50, seed=5):
    rng = np.random.default_rng(seed)
    vx = rng.normal(150, 50, (n, rows, cols))
    vy = rng.normal(20, 10, (n, rows, cols))
    vx[::7, 5, 6] = vy[::7, 5, 6] = np.nan
    starts = [dt.datetime(2018, 1, 1) + dt.timedelta(days=7 * i) for i in range(n)]
    ends = [s + dt.timedelta(days=(12, 16, 48)[i % 3]) for i, s in enumerate(starts)]
    sats = [("1A", "2A", "8", "2B", "9")[i % 5] for i in range(n)]
    return vx, vy, starts, ends, sats


@pytest.fixture
def cube(tmp_path):
    vx, vy, starts, ends, sats = _cube_arrays()
    path = write_cube(str(tmp_path / "cube.nc"), vx, vy, starts, ends, sats, GT, EPSG,
                      vx_error=np.arange(len(starts), dtype=float) + 1, vy_error=None)
    return path, vx, vy, starts, ends, sats


# ---------------------------------------------------------------------------- granules

def test_granule_round_trip(granule, tmp_path):
    path, vx, vy, err = granule
    out = import_itslive(path, str(tmp_path / "out"))
    assert [os.path.basename(p) for p in out] == ["landsat_20180103_20180119.tif"]
    info, data = read_pair_product(out[0])
    assert (info.start, info.end, info.sensor) == (dt.date(2018, 1, 3), dt.date(2018, 1, 19),
                                                   "landsat")
    assert info.grid.transform == GT and same_crs(info.grid.crs_wkt, _utm_wkt())
    ok = np.isfinite(vx)
    np.testing.assert_array_equal(data["vx"][ok], np.round(vx[ok]))  # int16 m/yr as stored
    np.testing.assert_array_equal(data["vy"][ok], np.round(vy[ok]))
    np.testing.assert_array_equal(data["v"][ok], np.round(np.hypot(vx, vy))[ok])  # ITS_LIVE's v
    assert np.isnan(data["vx"][3, 4]) and np.isnan(data["v"][3, 4])  # fill -32767 -> NaN
    assert np.isnan(data["snr"]).all()
    assert pair_band_index(out[0], "v_error") == 5
    np.testing.assert_array_equal(read_band(out[0], 5), err.astype(np.float32))
    meta = info.metadata
    assert (float(meta["VX_ERROR"]), float(meta["VY_ERROR"])) == (3.5, 4.5)
    assert float(meta["V_ERROR"]) == pytest.approx(np.sqrt((3.5 ** 2 + 4.5 ** 2) / 2))
    assert meta["SATELLITE"] == "L8" and abs(float(meta["DATE_DT"]) - 16.0) < 1e-3
    assert not [f for f in os.listdir(tmp_path / "out") if "part" in f]


def test_granule_grid_from_geotransform_alone(tmp_path):
    vx = np.arange(12.0).reshape(3, 4)
    path = write_granule(str(tmp_path / "g.nc"), vx, vx, dt.datetime(2020, 5, 1),
                         dt.datetime(2020, 5, 6), GT, EPSG, "S", "2A", write_xy=False)
    out = import_itslive(path, str(tmp_path / "out"))
    info, data = read_pair_product(out[0])
    assert info.grid.transform == GT and info.sensor == "sentinel2"
    np.testing.assert_array_equal(data["vx"], vx)


def test_south_up_granule_and_cube_are_flipped_north_up(granule, cube, tmp_path):
    """Rows stored south to north (y ascending, no GeoTransform) give the same products."""
    for path, window in ((granule[0], None), (cube[0], (GT[0] + 240, GT[3] - 1200,
                                                        GT[0] + 1200, GT[3] - 360, ""))):
        flipped = str(tmp_path / ("flipped_" + os.path.basename(path)))
        with xr.open_dataset(path, mask_and_scale=False, decode_times=False) as ds:
            up = ds.isel(y=slice(None, None, -1))
            del up["mapping"].attrs["GeoTransform"]
            up.to_netcdf(flipped)
        a = import_itslive(path, str(tmp_path / "a"), extent=window)
        b = import_itslive(flipped, str(tmp_path / "b"), extent=window)
        assert len(a) == len(b) > 0
        for pa, pb in zip(a, b):
            ia, da = read_pair_product(pa)
            ib, db = read_pair_product(pb)
            assert ia.grid == ib.grid and ia.interval == ib.interval
            for q in ("vx", "vy", "v"):
                np.testing.assert_array_equal(da[q], db[q])


def test_granule_folder_filters_and_extent(tmp_path):
    folder = tmp_path / "granules"
    folder.mkdir()
    vx = np.full((10, 10), 50.0)
    for k, (mission, sat, days) in enumerate((("S", "2A", 10), ("S", "1B", 12), ("L", "9", 32))):
        start = dt.datetime(2019, 6, 1) + dt.timedelta(days=40 * k)
        write_granule(str(folder / f"g{k}.nc"), vx + k, vx, start,
                      start + dt.timedelta(days=days), GT, EPSG, mission, sat)
    logged = []
    out = import_itslive(str(folder), str(tmp_path / "o1"), sensors=["sentinel1", "landsat"],
                         max_days=20, log=logged.append)
    assert [os.path.basename(p) for p in out] == ["sentinel1_20190711_20190723.tif"]
    assert len(logged) == 3 and any("sensor sentinel2" in m for m in logged)
    assert logged[-1] == "3 granule(s): 1 written, 2 skipped."
    # an extent in geographic coordinates, 30 m inside rows 2-5 and columns 2-5 (the grid
    # convergence tilts the box by less than that): exactly those 4 x 4 pixels, on the grid
    ct = osr.CoordinateTransformation(Grid(GT, (10, 10), _utm_wkt()).srs(), _wgs84())
    lon0, lat0, _ = ct.TransformPoint(GT[0] + 2 * 120 + 30, GT[3] - 6 * 120 + 30)
    lon1, lat1, _ = ct.TransformPoint(GT[0] + 6 * 120 - 30, GT[3] - 2 * 120 - 30)
    out = import_itslive(str(folder), str(tmp_path / "o2"), start="2019-06-01", end="2019-07-01",
                         extent=(lon0, lat0, lon1, lat1, _wgs84().ExportToWkt()))
    info, data = read_pair_product(out[0])
    assert len(out) == 1 and info.grid.shape == (4, 4)
    assert info.grid.transform == (GT[0] + 240, 120.0, 0.0, GT[3] - 240, 0.0, -120.0)
    assert np.all(data["vx"] == 50.0)


def _wgs84():
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


@pytest.mark.parametrize("sabotage, expected", [
    ({"mapping": False}, "no grid mapping"),
    ({"dates": False}, "no acquisition dates"),
    ({"units": "cm/s"}, "'cm/s', not m/yr"),
])
def test_granule_bad_input(tmp_path, sabotage, expected):
    path = write_granule(str(tmp_path / "bad.nc"), np.ones((3, 3)), np.ones((3, 3)),
                         dt.datetime(2020, 1, 1), dt.datetime(2020, 1, 17), GT, EPSG, **sabotage)
    with pytest.raises(InputError, match=expected) as err:
        import_itslive(path, str(tmp_path / "out"))
    assert "bad.nc" in str(err.value)


def test_nothing_matches_is_an_error(granule, tmp_path):
    with pytest.raises(InputError, match="outside START_DATE/END_DATE"):
        import_itslive(granule[0], str(tmp_path / "out"), start="2021-01-01")
    with pytest.raises(InputError, match="outside EXTENT"):
        import_itslive(granule[0], str(tmp_path / "out"), extent=(0, 0, 10, 10, _utm_wkt()))


@pytest.mark.parametrize("code, name", [
    ("S2A", "sentinel2"), ("S2B", "sentinel2"), ("2A", "sentinel2"), ("S1A", "sentinel1"),
    ("1B", "sentinel1"), ("L8", "landsat"), ("L9", "landsat"), ("8.", "landsat"),
    ("LC08", "landsat"), ("7", "landsat"), ("Pleiades", "pleiades")])
def test_sensor_names(code, name):
    assert sensor_name(code) == name


# ---------------------------------------------------------------------------- cubes

def test_cube_round_trip_window_dates_and_sensors(cube, tmp_path):
    path, vx, vy, starts, ends, sats = cube
    x0, y0 = GT[0] + 10 * 120, GT[3] - 4 * 120  # the window: rows 4..11, cols 10..24
    out = import_itslive(path, str(tmp_path / "out"), extent=(x0, y0 - 8 * 120, x0 + 15 * 120, y0,
                                                              _utm_wkt()),
                         start="2018-02-01", end="2018-06-30", min_days=13,
                         sensors=["sentinel2", "landsat"])
    expected = [i for i in range(len(starts))
                if starts[i] >= dt.datetime(2018, 2, 1) and ends[i] <= dt.datetime(2018, 6, 30)
                and (ends[i] - starts[i]).days >= 13 and sats[i] in ("2A", "2B", "8", "9")]
    assert len(out) == len(expected) > 3
    for i, p in zip(expected, out):
        info, data = read_pair_product(p)
        assert os.path.basename(p) == (f"{sensor_name(sats[i])}_{starts[i]:%Y%m%d}_"
                                       f"{ends[i]:%Y%m%d}.tif")
        assert (info.start, info.end) == (starts[i].date(), ends[i].date())
        assert info.grid.transform == (x0, 120.0, 0.0, y0, 0.0, -120.0)
        assert info.grid.shape == (8, 15) and same_crs(info.grid.crs_wkt, _utm_wkt())
        truth = np.round(vx[i, 4:12, 10:25])
        np.testing.assert_array_equal(data["vx"], truth.astype(np.float32))
        np.testing.assert_array_equal(data["vy"], np.round(vy[i, 4:12, 10:25]).astype(np.float32))
        assert float(info.metadata["VX_ERROR"]) == i + 1 and "VY_ERROR" not in info.metadata
        assert float(info.metadata["V_ERROR"]) == i + 1
        assert int(info.metadata["CUBE_LAYER"]) == i


def test_cube_fill_and_small_read_budget(cube, tmp_path):
    """Blocks of 3 layers (a tiny budget) give the same products as one read."""
    from glacier_velocity.core.io import cubes

    path, vx = cube[0], cube[1]
    info = read_cube_info(path)
    ds = cubes.open_dataset(path)
    window = (2, 3, 10, 10)
    layers = np.arange(0, info.count, 2)
    budget = 3 * 10 * 10 * 4 * len(info.variables)
    got = {i: d for i, d in cubes.iter_window(ds, info, layers, window, budget=budget)}
    ds.close()
    assert sorted(got) == list(layers)
    for i, d in got.items():
        truth = np.round(vx[i, 2:12, 3:13]).astype(np.float32)
        np.testing.assert_array_equal(d["vx"], truth)  # NaN (fill) where the truth is NaN
    assert np.isnan(got[14]["vx"][3, 3])  # vx[14, 5, 6] was fill


def test_zarr_cube_imports_like_netcdf(cube, tmp_path):
    pytest.importorskip("zarr")
    path = cube[0]
    zpath = str(tmp_path / "cube.zarr")
    with xr.open_dataset(path, mask_and_scale=False, decode_times=False) as ds:
        ds.to_zarr(zpath, consolidated=True)  # the same variables, encodings and attributes
    a = import_itslive(path, str(tmp_path / "nc"), sensors=["sentinel1"])
    b = import_itslive(os.path.join(zpath, ".zmetadata"), str(tmp_path / "zarr"),
                       sensors=["sentinel1"])
    assert [os.path.basename(p) for p in a] == [os.path.basename(p) for p in b]
    for pa, pb in zip(a, b):
        ia, da = read_pair_product(pa)
        ib, db = read_pair_product(pb)
        assert ia.grid == ib.grid and ia.interval == ib.interval
        np.testing.assert_array_equal(da["vx"], db["vx"])


def test_cube_bad_input(cube, tmp_path):
    path = cube[0]
    with pytest.raises(InputError, match="no layer in the requested dates") as err:
        import_itslive(path, str(tmp_path / "o"), start="2030-01-01")
    assert "cube.nc" in str(err.value)
    with pytest.raises(InputError, match="does not overlap"):
        import_itslive(path, str(tmp_path / "o"), extent=(0, 0, 100, 100, _utm_wkt()))
    vx, vy, starts, ends, sats = _cube_arrays(4, 8, 8)
    nodates = write_cube(str(tmp_path / "nodates.nc"), vx, vy, starts, ends, sats, GT, dates=False)
    with pytest.raises(InputError, match="no pair dates") as err:
        import_itslive(nodates, str(tmp_path / "o"))
    assert "nodates.nc" in str(err.value)
    units = write_cube(str(tmp_path / "units.nc"), vx, vy, starts, ends, sats, GT, units="m/d")
    with pytest.raises(InputError, match="'m/d', not m/yr"):
        import_itslive(units, str(tmp_path / "o"))


def test_speed_only_cube_cannot_become_pairs(stacks, tmp_path):
    out = export_stacks(str(tmp_path / "v.nc"), {"v": stacks[0]["v"]})
    with pytest.raises(InputError, match="has no vx or vy") as err:
        import_itslive(out, str(tmp_path / "o"))
    assert "v.nc" in str(err.value)


def test_missing_netcdf4_is_a_clear_error(granule, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "netCDF4", None)  # import netCDF4 now raises ImportError
    with pytest.raises(InputError, match="netCDF4") as err:
        import_itslive(granule[0], str(tmp_path / "out"))
    assert "python3-netcdf4" in str(err.value)


# ---------------------------------------------------------------------------- export

@pytest.fixture
def stacks(tmp_path):
    rng = np.random.default_rng(11)
    grid = Grid.from_bounds(500000, 3200000, 30, 23, 31, EPSG)
    months = [Interval.month(2016 + m // 12, m % 12 + 1) for m in range(15)]
    vx = rng.normal(80, 30, (15, 23, 31)).astype(np.float32)
    vy = rng.normal(-40, 10, (15, 23, 31)).astype(np.float32)
    vx[4, 2, 3] = vy[4, 2, 3] = np.nan
    v = np.hypot(vx, vy)
    err = np.abs(rng.normal(5, 1, (15, 23, 31))).astype(np.float32)
    paths = {q: write_stack(str(tmp_path / f"{q}.tif"), grid, a, months, "fused",
                            quantity=q if q != "v_error" else "v")
             for q, a in (("v", v), ("vx", vx), ("vy", vy), ("v_error", err))}
    return paths, grid, months, {"v": v, "vx": vx, "vy": vy, "v_error": err}


def test_export_netcdf_read_back_by_netcdf4_and_xarray(stacks, tmp_path):
    paths, grid, months, arrays = stacks
    out = export_stacks(str(tmp_path / "cube.nc"), paths)
    days = lambda d: (d - dt.date(1970, 1, 1)).days  # noqa: E731
    with netCDF4.Dataset(out) as nc:
        assert nc.Conventions == "CF-1.8" and nc.dimensions["mid_date"].size == 15
        for q, a in arrays.items():
            var = nc[q]
            assert var.dimensions == ("mid_date", "y", "x") and var.units == "meter/year"
            assert var.grid_mapping == "mapping"
            np.testing.assert_array_equal(np.ma.filled(var[:], np.nan), a)
            assert var.chunking() == [15, 10, 10] and var.filters()["zlib"]
        np.testing.assert_array_equal(nc["acquisition_date_img1"][:],
                                      [days(iv.start) for iv in months])
        np.testing.assert_array_equal(nc["acquisition_date_img2"][:],
                                      [days(iv.end) for iv in months])
        np.testing.assert_array_equal(nc["date_dt"][:], [iv.days for iv in months])
        np.testing.assert_array_equal(nc["mid_date"][:],
                                      [days(iv.start) + iv.days / 2 for iv in months])
        assert nc["mid_date"].units == "days since 1970-01-01"
        gt = tuple(float(v) for v in nc["mapping"].GeoTransform.split())
        assert gt == grid.transform and int(nc["mapping"].spatial_epsg) == EPSG
        assert same_crs(nc["mapping"].crs_wkt, grid.crs_wkt)
        np.testing.assert_array_equal(nc["x"][:], grid.centres()[0])
        np.testing.assert_array_equal(nc["y"][:], grid.centres()[1])
    with xr.open_dataset(out) as ds:  # CF decoding: datetimes and TICOI's generic names
        assert str(ds["date1"].values[0])[:10] == "2016-01-01"
        assert str(ds["date2"].values[-1])[:10] == "2017-03-31"
        assert ds.attrs["proj4"].startswith("+proj=utm +zone=45")
        np.testing.assert_array_equal(ds["vx"].values, arrays["vx"])


def test_export_in_a_crs_without_epsg_code(tmp_path):
    """A custom CRS (no EPSG code: 'Unsupported SRS' to GDAL's identification) is exported by
    its WKT and read back the same."""
    srs = osr.SpatialReference()
    srs.ImportFromProj4("+proj=tmerc +lon_0=95.3 +k=1 +x_0=0 +y_0=0 +ellps=WGS84 +units=m")
    grid = Grid((10000.0, 30.0, 0.0, 20000.0, 0.0, -30.0), (6, 7), srs.ExportToWkt())
    months = [Interval.month(2020, m) for m in (1, 2, 3)]
    values = np.arange(3 * 6 * 7, dtype=np.float32).reshape(3, 6, 7)
    stack = write_stack(str(tmp_path / "v.tif"), grid, values, months, "landsat")
    out = export_stacks(str(tmp_path / "cube.nc"), {"v": stack})
    with netCDF4.Dataset(out) as nc:
        assert "spatial_epsg" not in nc["mapping"].ncattrs()
        assert same_crs(nc["mapping"].crs_wkt, grid.crs_wkt)
        np.testing.assert_array_equal(nc["v"][:], values)
    assert read_cube_info(out).grid.same_as(grid)


def test_export_zarr_read_back(stacks, tmp_path):
    pytest.importorskip("zarr")
    paths, grid, months, arrays = stacks
    out = export_stacks(str(tmp_path / "cube.zarr"), {"v": paths["v"], "vx": paths["vx"]})
    meta = json.load(open(os.path.join(out, "vx", ".zarray")))
    assert meta["chunks"] == [15, 10, 10] and meta["compressor"]["id"] == "zlib"
    with xr.open_zarr(out) as ds:
        np.testing.assert_array_equal(ds["vx"].values, arrays["vx"])
        assert [str(d)[:10] for d in ds["acquisition_date_img1"].values] == [
            iv.start.isoformat() for iv in months]
    info = read_cube_info(out)  # and our own reader gives the grid and dates back
    assert info.grid.same_as(grid) and info.intervals == months
    assert not [f for f in os.listdir(tmp_path) if "part" in f]


def test_exported_cube_is_a_stack(stacks, tmp_path):
    """As NETCDF:"cube.nc":v the cube reads like the GeoTIFF stack (grid, dates, values, pixels)."""
    paths, grid, months, arrays = stacks
    out = export_stacks(str(tmp_path / "cube.nc"), paths)
    source = subdataset_name(out, "vx")
    info = read_stack_info(source)
    assert info.grid.same_as(grid) and info.intervals == months and info.quantity == "vx"
    assert info.sensor == "fused"
    g = gdal.Open(source)  # GDAL's own view of the cube agrees with ours
    assert Grid.from_dataset(g).same_as(grid)
    np.testing.assert_array_equal(read_stack(source)[1], arrays["vx"])
    a, b = StackPixelReader(source), StackPixelReader(paths["vx"])
    x, y = grid.centres()[0][3], grid.centres()[1][2]
    sa, sb = a.read(x, y), b.read(x, y)
    assert sa.intervals == sb.intervals and (sa.row, sa.col) == (2, 3)
    np.testing.assert_array_equal(sa.values, sb.values)
    assert np.isnan(sa.values[4])


def test_pair_cube_out_of_date_order_is_not_a_stack(tmp_path):
    vx, vy, starts, ends, sats = _cube_arrays(6, 8, 8)
    path = write_cube(str(tmp_path / "pairs.nc"), vx, vy, starts[::-1], ends[::-1], sats, GT)
    with pytest.raises(InputError, match="out of date order") as err:
        read_stack_info(subdataset_name(path, "vx"))
    assert "Import ITS_LIVE" in str(err.value)


def test_cancelled_export_leaves_nothing(stacks, tmp_path):
    from glacier_velocity.core.errors import Cancelled
    from glacier_velocity.core.progress import Progress

    with pytest.raises(Cancelled):
        export_stacks(str(tmp_path / "c.nc"), stacks[0],
                      progress=Progress(is_cancelled=lambda: True))
    assert not [f for f in os.listdir(tmp_path) if f.endswith((".nc", ".part"))]


def test_export_refuses_mismatched_stacks(stacks, tmp_path):
    paths, grid, months, arrays = stacks
    other = write_stack(str(tmp_path / "short.tif"), grid, arrays["vx"][:5], months[:5], "x",
                        quantity="vx")
    with pytest.raises(InputError, match="different band dates"):
        export_stacks(str(tmp_path / "c.nc"), {"v": paths["v"], "vx": other})
    with pytest.raises(InputError, match="NetCDF file"):
        export_stacks(str(tmp_path / "c.tif"), {"v": paths["v"]})
    assert not os.path.exists(tmp_path / "c.nc")


def test_fill_value_is_its_live(granule):
    with netCDF4.Dataset(granule[0]) as nc:
        assert nc["vx"]._FillValue == FILL and nc["vx"].dtype == np.int16
