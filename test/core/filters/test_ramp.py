"""Ramp removal: a robust plane/quadratic fit on stable ground recovers an injected surface to 1 %
of its amplitude despite gross outliers, on arrays, on files (tiled) and in the clean chain."""

import numpy as np
import pytest

from glacier_velocity.core.filters.clean import clean_pair
from glacier_velocity.core.errors import InputError
from glacier_velocity.core.io.grid import Grid
from glacier_velocity.core.io.pairsource import PairSource
from glacier_velocity.core.io.products import read_pair_info, read_pair_product, write_pair_product
from glacier_velocity.core.filters.ramp import Ramp, fit_components, fit_ramp, remove_ramp_file
from glacier_velocity.core.io.raster import write_raster
from glacier_velocity.core.io.stable import stable_mask
from glacier_velocity.core.sampledata.scene import SceneModel
from glacier_velocity.core.sampledata.raw_pair import make_raw_pair
from glacier_velocity.core.io.vector import write_polygons

GRID = Grid.from_bounds(500000, 4000000, 30, 120, 150, 32645)


def planes(grid):
    xs, ys = grid.centres()
    x = (xs[None, :] - xs.mean()) / 1000.0
    y = (ys[:, None] - ys.mean()) / 1000.0
    px = (12.0 + 8.0 * x - 5.0 * y) * np.ones(grid.shape)
    py = (-7.0 + 3.0 * x + 9.0 * y) * np.ones(grid.shape)
    return px.astype(np.float32), py.astype(np.float32)


def noisy_with_outliers(grid, seed=0):
    """Planes + noise (std 3 m/yr) + 15 % one-sided gross outliers (+60..+400 m/yr)."""
    rng = np.random.default_rng(seed)
    px, py = planes(grid)
    vx = px + rng.normal(0, 3, grid.shape).astype(np.float32)
    vy = py + rng.normal(0, 3, grid.shape).astype(np.float32)
    bad = rng.random(grid.shape) < 0.15
    vx[bad] += rng.uniform(60, 400, bad.sum())
    vy[bad] += rng.uniform(60, 400, bad.sum())
    return px, py, vx, vy


def test_outliers_do_not_tilt_the_plane():
    px, py, vx, vy = noisy_with_outliers(GRID)
    stable = np.ones(GRID.shape, bool)
    stable[30:90, 40:110] = False  # a glacier in the middle
    rx, ry = fit_components(GRID, vx, vy, stable)
    for fitted, true in ((rx, px), (ry, py)):
        err = np.abs(fitted.on_grid(GRID) - true).max()
        assert err <= 0.01 * np.ptp(true), (err, np.ptp(true))
    # plain least squares is pulled away by the one-sided outliers
    xs, ys = GRID.centres()
    rr, cc = np.nonzero(stable)
    a = np.column_stack([np.ones(rr.size), xs[cc], ys[rr]])
    ols = np.linalg.lstsq(a, vx[rr, cc], rcond=None)[0]
    ols_surface = ols[0] + ols[1] * xs[None, :] + ols[2] * ys[:, None]
    assert np.abs(ols_surface - px).max() > 0.1 * np.ptp(px)


def test_quadratic_surface():
    xs, ys = GRID.centres()
    x = (xs[None, :] - xs.mean()) / 1000.0
    y = (ys[:, None] - ys.mean()) / 1000.0
    true = 5.0 + 2.0 * x - 3.0 * y + 1.5 * x * x - 2.0 * x * y + 0.8 * y * y
    rng = np.random.default_rng(2)
    values = true + rng.normal(0, 2, GRID.shape)
    values[rng.random(GRID.shape) < 0.1] = 500.0
    xx, yy = np.meshgrid(xs, ys)
    r = fit_ramp(xx, yy, values, order=2)
    assert np.abs(r.evaluate(xx, yy) - true).max() <= 0.01 * np.ptp(true)
    with pytest.raises(InputError, match="order must be 1"):
        fit_ramp(xx, yy, values, order=3)


def test_too_little_stable_ground_is_a_clear_error():
    px, py, vx, vy = noisy_with_outliers(GRID)
    stable = np.zeros(GRID.shape, bool)
    stable[5, 5:30] = True
    with pytest.raises(InputError, match="Only 25 valid stable-ground pixels"):
        fit_components(GRID, vx, vy, stable)
    stable[5, :] = True  # 150 pixels on one row: cannot constrain a plane
    with pytest.raises(InputError, match="lie on a line"):
        fit_components(GRID, vx, vy, stable)


def test_stable_mask_from_polygons_and_raster(tmp_path):
    x0, y0, x1, y1 = GRID.bounds
    left = np.array([[x0, y1], [x0 + 900, y1], [x0 + 900, y0], [x0, y0]])  # 30 columns
    polygons = write_polygons(str(tmp_path / "s.gpkg"), "stable", GRID.crs_wkt, [(left, {"id": 1})],
                              {"id": "int"})
    raster = np.zeros(GRID.shape, np.float32)
    raster[:10] = 1.0
    path = str(tmp_path / "mask.tif")
    write_raster(path, GRID, raster)
    assert stable_mask(GRID, polygons)[:, :30].all() and not stable_mask(GRID, polygons)[:, 30:].any()
    both = stable_mask(GRID, polygons, path)
    assert both.sum() == 30 * 120 + 10 * 120
    with pytest.raises(InputError, match="No stable ground given"):
        stable_mask(GRID)


def test_file_version_is_tiled_and_keeps_dates(tmp_path):
    px, py, vx, vy = noisy_with_outliers(GRID, seed=4)
    path = str(tmp_path / "pair.tif")
    write_pair_product(path, GRID, vx, vy, np.ones_like(vx), "2021-07-01", "2021-08-02", "landsat")
    stable = np.ones(GRID.shape, bool)
    out = str(tmp_path / "noramp.tif")
    rx, ry = remove_ramp_file(PairSource(path), out, stable, tile=40)
    assert np.abs(rx.on_grid(GRID) - px).max() <= 0.01 * np.ptp(px)
    info, d = read_pair_product(out)
    assert info.sensor == "landsat" and info.baseline_days == 32
    assert "offset" in info.metadata["RAMP_VX"]
    np.testing.assert_allclose(d["vx"], vx - rx.on_grid(GRID), atol=1e-3)
    with pytest.raises(InputError, match="also an input"):
        remove_ramp_file(PairSource(path), path, stable)


def test_chain_recovers_an_injected_plane_within_one_percent(tmp_path):
    rp = make_raw_pair(SceneModel("tiny"), ramp=1.0, outliers=0.10)
    path = str(tmp_path / "raw.tif")
    write_pair_product(path, rp.grid, rp.vx, rp.vy, rp.snr, rp.interval.start, rp.interval.end)
    out = str(tmp_path / "clean.tif")
    _, (rx, ry) = clean_pair(PairSource(path), out, stable=rp.stable)
    for fitted, true in ((rx, rp.ramp_vx), (ry, rp.ramp_vy)):
        assert np.abs(fitted.on_grid(rp.grid) - true).max() <= 0.01 * np.ptp(true)
    meta = read_pair_info(out).metadata
    back = Ramp.from_text(meta["RAMP_VY_SURFACE"])
    np.testing.assert_allclose(back.on_grid(rp.grid), ry.on_grid(rp.grid), atol=1e-3)
    with pytest.raises(InputError, match="is not a ramp surface"):
        Ramp.from_text("1 2 3")
