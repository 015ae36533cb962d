"""Closure of a triplet of pair products against constructed truth."""

import numpy as np
import pytest

from glacier_velocity.core.correlation.closure import arrange_triplet, triplet_closure
from glacier_velocity.core.errors import InputError
from glacier_velocity.core.io.dates import DAYS_PER_YEAR
from glacier_velocity.core.io.grid import Grid
from glacier_velocity.core.io.products import write_pair_product
from glacier_velocity.core.io.raster import read_band

PIXEL = 10.0  # image pixel (m); products at step 4


def triplet(tmp_path, error_px=(0.0, 0.0), nan_share=0.0):
    """Products A->B (10 d), B->C (20 d), A->C (30 d) of a flow of 365.25 m/yr east, 0 north
    on the west half (ice), zero on the east half; A->C carries ``error_px`` (east, north) more
    displacement, and ``nan_share`` of B->C is missing."""
    grid = Grid.from_bounds(500000, 5000000, 4 * PIXEL, 40, 60, 32632)
    ice = np.zeros(grid.shape, bool)
    ice[:, :30] = True
    rng = np.random.default_rng(0)
    paths = []
    for name, start, end in (("ab", "2020-01-01", "2020-01-11"), ("bc", "2020-01-11", "2020-01-31"),
                             ("ac", "2020-01-01", "2020-01-31")):
        days = {"ab": 10, "bc": 20, "ac": 30}[name]
        vx = np.where(ice, 365.25, 0.0)
        vy = np.zeros(grid.shape)
        if name == "ac":
            vx = vx + error_px[0] * PIXEL / (days / DAYS_PER_YEAR)
            vy = vy + error_px[1] * PIXEL / (days / DAYS_PER_YEAR)
        if name == "bc" and nan_share:
            vx[rng.random(grid.shape) < nan_share] = np.nan
        path = str(tmp_path / f"{name}.tif")
        write_pair_product(path, grid, vx, vy, np.ones(grid.shape), start, end, "sentinel2",
                           {"PIXEL_M": f"{PIXEL:g}"})
        paths.append(path)
    return paths, ice


def test_closure_measures_what_does_not_add_up(tmp_path):
    paths, ice = triplet(tmp_path, error_px=(0.06, -0.08), nan_share=0.25)
    out = str(tmp_path / "closure.tif")
    rows, info = triplet_closure(paths[::-1], out, region=ice)  # any order
    assert info["ac"].endswith("ac.tif") and info["ab"].endswith("ab.tif")
    every, inside, outside = rows
    assert [r["region"] for r in rows] == ["all", "region", "outside"]
    assert every["windows"] == 2400 and inside["windows"] == 1200
    assert every["valid_share"] == pytest.approx(0.75, abs=0.03)
    assert inside["median_closure_px"] == pytest.approx(0.1, abs=1e-4)
    assert inside["median_closure_m"] == pytest.approx(1.0, abs=1e-3)
    assert inside["mean_east_px"] == pytest.approx(0.06, abs=1e-4)
    assert inside["mean_north_px"] == pytest.approx(-0.08, abs=1e-4)
    assert inside["nmad_east_px"] == pytest.approx(0.0, abs=1e-4)
    # projected on the A->C motion on the ice, (30.6, -0.8) m: (0.6 x 30.6 + 0.64) / 30.61 m
    flow = np.array([30.6, -0.8]) / np.hypot(30.6, -0.8)
    assert inside["median_along_flow_px"] == pytest.approx(flow @ [0.06, -0.08], abs=1e-4)
    closure = read_band(out, 3)
    assert np.isnan(closure).mean() == pytest.approx(0.25, abs=0.03)
    assert np.nanmedian(closure) == pytest.approx(1.0, abs=1e-3)  # metres


def test_a_closed_triplet_has_zero_closure(tmp_path):
    paths, _ = triplet(tmp_path)
    rows, _ = triplet_closure(paths)
    assert rows[0]["valid_share"] == 1.0
    assert rows[0]["median_closure_px"] == pytest.approx(0.0, abs=1e-4)


def test_products_that_do_not_chain_are_refused(tmp_path):
    paths, _ = triplet(tmp_path)
    with pytest.raises(InputError, match="triplet"):
        arrange_triplet([paths[0], paths[0], paths[2]])
    with pytest.raises(InputError, match="exactly three"):
        arrange_triplet(paths[:2])
