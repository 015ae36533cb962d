"""Raster I/O, the pair-product and stack formats, tiling, and the input checks."""

import numpy as np
import pytest
from osgeo import gdal

from glacier_velocity.core.io.dates import Interval
from glacier_velocity.core.errors import InputError
from glacier_velocity.core.io.grid import Grid, require_overlap, require_projected, require_same_crs
from glacier_velocity.core.io.products import (read_pair_product, read_stack, read_stack_info,
                                            to_m_per_yr, write_pair_product, write_stack)
from glacier_velocity.core.io.raster import (iter_tiles, raster_grid, read_band, warp_to_grid,
                                             write_raster, RasterWriter)

GRID = Grid.from_bounds(500000, 4000000, 30, 20, 30, 32645)


def test_pair_product_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    vx, vy = rng.normal(size=(2, 20, 30)).astype(np.float32) * 50
    snr = rng.random((20, 30)).astype(np.float32)
    vx[3, 4] = np.nan
    path = str(tmp_path / "pair.tif")
    write_pair_product(path, GRID, vx, vy, snr, "2020-07-03", "2020-08-04", "landsat")
    info, data = read_pair_product(path)
    assert info.start.isoformat() == "2020-07-03" and info.baseline_days == 32
    assert info.sensor == "landsat" and info.grid.same_as(GRID)
    np.testing.assert_array_equal(data["vx"], vx)
    np.testing.assert_allclose(data["v"], np.hypot(vx, vy), rtol=1e-6)
    assert np.isnan(data["v"][3, 4])
    ds = gdal.Open(path)
    assert [ds.GetRasterBand(i + 1).GetDescription() for i in range(4)] == ["vx", "vy", "v", "snr"]
    assert ds.GetMetadataItem("UNITS") == "m/yr" and ds.GetRasterBand(1).DataType == gdal.GDT_Float32
    _, per_day = read_pair_product(path, units="m/day")
    np.testing.assert_allclose(per_day["vx"], vx * 365.25, rtol=1e-6)
    with pytest.raises(InputError, match="second date must be after the first"):
        write_pair_product(str(tmp_path / "bad.tif"), GRID, vx, vy, snr, "2020-08-04", "2020-07-03")


def test_stack_round_trip_and_missing_dates(tmp_path):
    months = [Interval.month(2020, m) for m in (1, 2, 3)]
    arr = np.arange(3 * 20 * 30, dtype=np.float32).reshape(3, 20, 30)
    path = str(tmp_path / "stack.tif")
    write_stack(path, GRID, arr, months, "sentinel2", "v")
    info, back = read_stack(path)
    assert info.intervals == months and info.sensor == "sentinel2" and info.quantity == "v"
    np.testing.assert_array_equal(back, arr)
    nodates = str(tmp_path / "nodates.tif")
    write_raster(nodates, GRID, arr)
    with pytest.raises(InputError, match="Band 1 of velocity stack .*nodates.tif.* no date interval"):
        read_stack_info(nodates)
    with pytest.raises(InputError, match="3 bands needs as many date intervals; 2 given"):
        write_stack(str(tmp_path / "x.tif"), GRID, arr, months[:2])


def test_nodata_value_becomes_nan(tmp_path):
    path = str(tmp_path / "nodata.tif")
    ds = gdal.GetDriverByName("GTiff").Create(path, 4, 3, 1, gdal.GDT_Int16)
    ds.SetGeoTransform(GRID.transform)
    ds.GetRasterBand(1).SetNoDataValue(-9999)
    ds.GetRasterBand(1).WriteArray(np.array([[1, -9999, 3, 4]] * 3, np.int16))
    ds = None
    a = read_band(path)
    assert a.dtype == np.float32 and np.isnan(a[0, 1]) and a[0, 2] == 3
    assert read_band(path, window=(1, 2, 2, 2)).shape == (2, 2)


def test_clear_errors(tmp_path):
    with pytest.raises(InputError, match="'.*missing.tif' does not exist"):
        read_band(str(tmp_path / "missing.tif"))
    junk = tmp_path / "junk.tif"
    junk.write_text("not a raster")
    with pytest.raises(InputError, match="junk.tif' cannot be read"):
        read_band(str(junk))
    nocrs = Grid(GRID.transform, GRID.shape, "")
    with pytest.raises(InputError, match="'b' has no coordinate reference system"):
        require_same_crs(GRID, nocrs, "a", "b")
    other = Grid.from_bounds(500000, 4000000, 30, 20, 30, 32646)
    with pytest.raises(InputError, match="'a' is in EPSG:32645 but 'b' is in EPSG:32646"):
        require_same_crs(GRID, other, "a", "b")
    far = Grid.from_bounds(600000, 4000000, 30, 20, 30, 32645)
    with pytest.raises(InputError, match="'a' and 'b' do not overlap"):
        require_overlap(GRID, far, "a", "b")
    geo = Grid.from_bounds(10, 50, 0.001, 20, 30, 4326)
    with pytest.raises(InputError, match="not a projected CRS in metres"):
        require_projected(geo, "geo.tif")
    src = str(tmp_path / "in.tif")
    write_raster(src, GRID, np.zeros((20, 30)))
    with pytest.raises(InputError, match="is also an input"):
        write_raster(src, GRID, np.zeros((20, 30)), inputs=[src])


def test_tiles_cover_raster_exactly_once():
    count = np.zeros((1000, 700), int)
    for read, core, inner in iter_tiles(count.shape, tile=256, halo=5):
        r0, c0, nr, nc = read
        block = np.zeros((nr, nc), int)
        block[inner] = 1
        count[r0:r0 + nr, c0:c0 + nc] += block
        assert core[2] == block[inner].shape[0] and core[3] == block[inner].shape[1]
    assert np.all(count == 1)


def test_tiled_write_then_windowed_read(tmp_path):
    """A raster written tile by tile reads back identical, window by window (bounded memory)."""
    big = Grid.from_bounds(0, 0, 10, 700, 900, 32645)
    path = str(tmp_path / "tiled.tif")
    with RasterWriter(path, big, 1) as w:
        for _, (r0, c0, nr, nc), _ in iter_tiles(big.shape, tile=256):
            rr, cc = np.mgrid[r0:r0 + nr, c0:c0 + nc]
            w.write(1, rr * 1000.0 + cc, r0, c0)
    block = read_band(path, window=(300, 400, 10, 20))
    rr, cc = np.mgrid[300:310, 400:420]
    np.testing.assert_array_equal(block, rr * 1000.0 + cc)
    assert raster_grid(path).same_as(big)


def test_warp_nearest_keeps_values(tmp_path):
    src = str(tmp_path / "src.tif")
    fine = Grid.from_bounds(500000, 4000000, 10, 60, 90, 32645)
    vals = np.repeat(np.repeat(np.arange(20 * 30, dtype=np.float32).reshape(20, 30), 3, 0), 3, 1)
    write_raster(src, fine, vals)
    out = warp_to_grid(src, GRID, "nearest")[0]
    np.testing.assert_array_equal(out, np.arange(20 * 30, dtype=np.float32).reshape(20, 30))


def test_units():
    assert to_m_per_yr(np.array([1.0]), "m/day")[0] == pytest.approx(365.25)
    with pytest.raises(InputError, match="Unknown velocity units 'km/h'"):
        to_m_per_yr(1.0, "km/h")


def test_unique_names_suffix_repeats_in_order():
    from glacier_velocity.core.io.names import unique_name, unique_names

    assert unique_names(["/a/x.tif", "/b/x.tif", "/c/y.tif", "/d/x.tif", "e.gpkg|layername=x"]) == [
        "x", "x_2", "y", "x_3", "e"]
    used = {"p", "p_2"}
    assert unique_name("p", used) == "p_3" and "p_3" in used
    assert unique_name("q", used) == "q"


def test_stack_windows_group_small_blocks(tmp_path):
    """A stack stored in small blocks (a NetCDF cube's 10 x 10 chunks, here a 16 px tiled
    GeoTIFF) is read in windows of many whole blocks, not block by block."""
    from glacier_velocity.core.io.products import StackFile

    grid = Grid.from_bounds(500000, 5000000, 30.0, 600, 600, 32632)
    intervals = [Interval.month(2020, m) for m in (1, 2)]
    src = write_stack(str(tmp_path / "s.tif"), grid, np.ones((2, 600, 600), np.float32), intervals)
    small = str(tmp_path / "small.tif")
    gdal.Translate(small, src, creationOptions=["TILED=YES", "BLOCKXSIZE=16", "BLOCKYSIZE=16"])
    with StackFile(small) as stack:
        windows = stack.windows()
    assert max(w[2] for w in windows) == max(w[3] for w in windows) == 256
    assert sum(w[2] * w[3] for w in windows) == 600 * 600 and len(windows) == 9
