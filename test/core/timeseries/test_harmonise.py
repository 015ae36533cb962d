"""Harmonisation: nearest-neighbour resampling of pair products and stacks onto a reference grid
(values are inputs, never blends), default 30 m, CRS reprojection with components turned."""

import numpy as np
import pytest
from osgeo import gdal

from glacier_velocity.core.io.dates import Interval
from glacier_velocity.core.errors import InputError
from glacier_velocity.core.io.grid import Grid
from glacier_velocity.core.timeseries.harmonise import harmonise, target_grid
from glacier_velocity.core.io.products import (read_pair_product, read_stack, read_stack_info,
                                            write_pair_product, write_stack)
from glacier_velocity.core.io.raster import open_raster, write_raster

FINE = Grid.from_bounds(420000, 3330000, 15, 80, 100, 32645)


def pair_on(tmp_path, grid=FINE):
    rng = np.random.default_rng(0)
    vx = rng.uniform(-100, 100, grid.shape).astype(np.float32)
    vy = rng.uniform(-100, 100, grid.shape).astype(np.float32)
    snr = rng.uniform(0.5, 1, grid.shape).astype(np.float32)
    path = str(tmp_path / "pair15.tif")
    write_pair_product(path, grid, vx, vy, snr, "2020-07-03", "2020-08-04", "landsat",
                       metadata={"FILTERS": "x"})
    return path, vx, vy, snr


def test_pair_to_default_30m_grid_takes_values_not_blends(tmp_path):
    path, vx, vy, snr = pair_on(tmp_path)
    out = str(tmp_path / "pair30.tif")
    kind, grid = harmonise(path, out)
    assert kind == "pair" and grid.dx == 30 and grid.shape == (40, 50)
    info, d = read_pair_product(out)
    assert info.baseline_days == 32 and info.sensor == "landsat" and info.metadata["FILTERS"] == "x"
    # each 30 m pixel centre is the corner of four 15 m pixels; nearest takes one of them
    blocks = vx.reshape(40, 2, 50, 2).transpose(0, 2, 1, 3).reshape(40, 50, 4)
    assert np.all(np.any(blocks == d["vx"][..., None], axis=-1))
    # vx, vy and snr come from the same source pixel, and v is their magnitude
    bx = blocks == d["vx"][..., None]
    by = vy.reshape(40, 2, 50, 2).transpose(0, 2, 1, 3).reshape(40, 50, 4)
    np.testing.assert_array_equal(by[bx], d["vy"].ravel())
    np.testing.assert_allclose(d["v"], np.hypot(d["vx"], d["vy"]), rtol=1e-6)


def test_onto_a_reference_grid_with_offset_and_outside_nan(tmp_path):
    path, vx, _, _ = pair_on(tmp_path)
    ref = Grid.from_bounds(420000 + 300, 3330000 - 150, 30, 40, 50, 32645)
    out = str(tmp_path / "onref.tif")
    harmonise(path, out, grid=ref)
    _, d = read_pair_product(out)
    assert d["vx"].shape == ref.shape
    # pixel (r, c) of ref has centre at fine pixel (10 + 2r + 1, 20 + 2c + 1) corner: value from
    # one of the four fine pixels around it; beyond the fine raster's extent: NaN
    assert np.isnan(d["vx"][:, -10:]).all() and np.isnan(d["vx"][-5:, :]).all()
    inside = d["vx"][:30, :35]
    blocks = vx[10:70, 20:90].reshape(30, 2, 35, 2).transpose(0, 2, 1, 3).reshape(30, 35, 4)
    assert np.all(np.any(blocks == inside[..., None], axis=-1))


def test_reprojection_turns_vector_components(tmp_path):
    grid = Grid.from_bounds(420000, 3330000, 30, 40, 40, 32645)
    vx = np.zeros(grid.shape, np.float32)
    vy = np.full(grid.shape, 100.0, np.float32)  # due grid north in UTM 45N
    path = str(tmp_path / "north.tif")
    write_pair_product(path, grid, vx, vy, np.ones_like(vx), "2020-07-03", "2020-08-04")
    out = str(tmp_path / "utm44.tif")
    _, g44 = harmonise(path, out, pixel=30, crs=32644)
    assert "32644" in g44.crs_wkt or "zone 44N" in g44.crs_wkt
    _, d = read_pair_product(out)
    ok = np.isfinite(d["vx"])
    assert ok.mean() > 0.5
    np.testing.assert_allclose(d["v"][ok], 100.0, rtol=1e-4)  # speed kept
    bearing = np.degrees(np.arctan2(d["vx"][ok], d["vy"][ok]))
    # grid north of zone 45 at 86.2 E, 30 N is ~3 degrees west of grid north of zone 44
    assert np.all((bearing > -3.3) & (bearing < -2.7))


def test_stack_with_units_and_band_metadata(tmp_path):
    months = [Interval.month(2020, m) for m in (6, 7)]
    arr = np.arange(2 * 80 * 100, dtype=np.float32).reshape(2, 80, 100) / 1000.0
    path = str(tmp_path / "stack.tif")
    write_stack(path, FINE, arr, months, "uav", "v", band_metadata=[{"PAIRS": "a"}, {"PAIRS": "b"}])
    out = str(tmp_path / "stack30.tif")
    with pytest.raises(InputError, match="units are m/yr but m/day was declared"):
        harmonise(path, out, units="m/day")
    kind, grid = harmonise(path, out)
    info, back = read_stack(out)
    assert kind == "stack" and info.intervals == months and info.sensor == "uav"
    assert open_raster(out).GetRasterBand(2).GetMetadataItem("PAIRS") == "b"
    assert back.shape == (2, 40, 50)
    assert np.isin(back, arr).all()
    # an external stack without UNITS metadata in m/day
    ext = str(tmp_path / "external.tif")
    write_stack(ext, FINE, arr, months, "uav", "v")
    ds = gdal.Open(ext, gdal.GA_Update)
    meta = ds.GetMetadata()
    del meta["UNITS"]
    ds.SetMetadata(meta)
    ds = None
    harmonise(ext, str(tmp_path / "ext30.tif"), units="m/day")
    _, conv = read_stack(str(tmp_path / "ext30.tif"))
    assert read_stack_info(str(tmp_path / "ext30.tif")).units == "m/yr"
    assert np.isin(np.round(conv / 365.25, 4), np.round(arr, 4)).all()


def test_bad_inputs(tmp_path):
    plain = str(tmp_path / "plain.tif")
    write_raster(plain, FINE, np.zeros(FINE.shape))
    with pytest.raises(InputError, match="neither a pair product .* nor a velocity stack"):
        harmonise(plain, str(tmp_path / "x.tif"))
    with pytest.raises(InputError, match="pixel size must be positive"):
        target_grid(FINE, 0)
    with pytest.raises(InputError, match="not a projected CRS"):
        target_grid(FINE, 30, 4326)
