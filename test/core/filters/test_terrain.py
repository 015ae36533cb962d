"""SAR layover/shadow mask from a DEM: analytic slopes, window contamination, the valley scene's
own truth mask (hit rate, false alarms) and the layover bias removed from a monthly stack."""

import datetime as dt

import numpy as np
import pytest

from glacier_velocity.core.errors import InputError
from glacier_velocity.core.filters.clean import clean_pair
from glacier_velocity.core.filters.terrain import (SarTerrainMask, contaminated, layover_shadow,
                                                   window_footprint_m)
from glacier_velocity.core.io.grid import Grid
from glacier_velocity.core.io.pairsource import PairSource
from glacier_velocity.core.io.products import write_pair_product
from glacier_velocity.core.io.raster import read_band, write_raster
from glacier_velocity.core.sampledata.scene import scene_model
from glacier_velocity.core.timeseries.monthly import monthly_stacks


def _plane(slope_deg, bearing_deg, n=20, pixel=10.0):
    """A DEM rising at ``slope_deg`` towards ``bearing_deg``."""
    y, x = np.mgrid[0:n, 0:n] * pixel
    north = -y  # rows run south
    b = np.radians(bearing_deg)
    return np.tan(np.radians(slope_deg)) * (x * np.sin(b) + north * np.cos(b))


@pytest.mark.parametrize("slope, rises_to, lay, shadow", [
    (35, 90, False, False),   # faces the sensor (east), gentler than the incidence
    (45, 90, True, False),    # faces it, steeper than 39 degrees: layover
    (45, 270, False, False),  # faces away, gentler than 90 - 39 = 51
    (55, 270, False, True),   # faces away, steeper: shadow
    (60, 0, False, False),    # across the look direction: neither
])
def test_planes_against_the_geometry(slope, rises_to, lay, shadow):
    lo, sh = layover_shadow(_plane(slope, rises_to), 10.0, 10.0, look_bearing=90.0, incidence=39.0)
    assert lo.all() == lay and lo.any() == lay
    assert sh.all() == shadow and sh.any() == shadow


def test_window_contamination_share():
    mask = np.zeros((40, 40), bool)
    mask[:, :10] = True  # a 10-column strip
    bad = contaminated(mask, 10, share=0.2)
    # a 10-wide window centred on column c covers 10 - (c - 4) strip columns (c >= 5)
    assert bad[20, :12].all() and not bad[20, 13:].any()


def test_geometry_and_window_errors(tmp_path):
    with pytest.raises(InputError, match="INCIDENCE"):
        layover_shadow(np.zeros((4, 4)), 10, 10, incidence=95)
    with pytest.raises(InputError, match="LOOK_BEARING"):
        layover_shadow(np.zeros((4, 4)), 10, 10, look_bearing=-5)
    with pytest.raises(InputError, match="WINDOW and PIXEL_M"):
        window_footprint_m({}, "p.tif")
    assert window_footprint_m({"WINDOW": "64x64", "PIXEL_M": "10"}, "p.tif") == 640.0
    dem = str(tmp_path / "dem.tif")
    write_raster(dem, Grid.from_bounds(0, 1000, 10, 100, 100, 32645), np.zeros((1, 100, 100)))
    far = Grid.from_bounds(50000, 60000, 30, 10, 10, 32645)
    with pytest.raises(InputError, match="does not overlap"):
        SarTerrainMask(dem).on(far, 640)


@pytest.fixture(scope="module")
def valley(tmp_path_factory):
    """The tiny valley scene's model and its DEM written at 30 m (a user's DEM)."""
    model = scene_model("valley", "tiny", 2015, 1)
    g30 = model.grid(30.0)
    path = str(tmp_path_factory.mktemp("dem") / "dem.tif")
    write_raster(path, g30, model.dem(g30)[None])
    return model, path


def test_mask_against_the_valley_truth(valley):
    model, dem = valley
    g10 = model.grid(10.0)
    truth = model.terrain_sar_mask(g10)  # what the scene's Sentinel-1 images lose (10 m)
    mine = SarTerrainMask(dem, share=0.0).on(g10, 10.0)
    hit, false = mine[truth].mean(), mine[~truth].mean()
    # a 30 m DEM does not resolve the 10 m slopes: 70 % found, 11 % false alarms on the tiny
    # scene's rough walls (60 % and 4 % on the small scene's)
    assert hit > 0.65 and false < 0.12, (hit, false)
    g30 = model.grid(30.0)  # at the DEM's own resolution the geometry is the scene's exactly
    same = SarTerrainMask(dem, share=0.0).on(g30, 30.0)
    assert (same == model.terrain_sar_mask(g30)).mean() > 0.999


def test_layover_bias_removed_from_a_monthly_stack(valley, tmp_path):
    """Pairs whose vectors are +30 m/yr wrong where their 640 m window sees layover: the masked
    stack keeps the true speed elsewhere, the unmasked one carries the bias."""
    model, dem = valley
    grid = model.grid(30.0)
    terrain = SarTerrainMask(dem)
    bad = terrain.on(grid, 640.0)
    rng = np.random.default_rng(0)
    vx = np.full(grid.shape, 100.0, np.float32)
    paths = []
    for k, day in enumerate((1, 7, 13)):
        noise = rng.normal(0, 2.0, grid.shape).astype(np.float32)
        wrong = vx + noise + np.where(bad, 30.0, 0.0).astype(np.float32)
        paths.append(write_pair_product(
            tmp_path / f"s1_{k}.tif", grid, wrong, np.zeros_like(vx), np.full_like(vx, 0.9),
            dt.date(2015, 7, day), dt.date(2015, 7, day + 12), "sentinel1",
            {"WINDOW": "64x64", "PIXEL_M": "10"}))
    for masked in (False, True):
        out = str(tmp_path / f"v_{masked}.tif")
        monthly_stacks(paths, grid, {"v": out}, mask=terrain.for_pair if masked else None)
        v = read_band(out)
        err = v[np.isfinite(v)] - 100.0
        if masked:
            assert abs(err.mean()) < 0.5 and np.isnan(v[bad]).all()
        else:
            assert err.mean() > 0.1 * 30.0 * bad.mean()


def test_clean_pair_drops_the_layover(valley, tmp_path):
    model, dem = valley
    grid = model.grid(30.0)
    bad = SarTerrainMask(dem).on(grid, 640.0)
    vx = np.full(grid.shape, 50.0, np.float32)
    path = write_pair_product(tmp_path / "s1.tif", grid, vx, np.zeros_like(vx),
                              np.full_like(vx, 0.9), dt.date(2015, 7, 1), dt.date(2015, 7, 13),
                              "sentinel1", {"WINDOW": "64x64", "PIXEL_M": "10"})
    out = str(tmp_path / "clean.tif")
    report, _ = clean_pair(PairSource(path), out, drop=bad)
    assert report.removed["layover/shadow"] == bad.sum() > 0
    kept = read_band(out)
    assert np.isnan(kept[bad]).all() and np.isfinite(kept[~bad]).mean() > 0.95


def test_geographic_dem_gives_the_projected_mask(valley, tmp_path):
    """A DEM in degrees (EPSG:4326) is refined by its pixel in metres, not in degrees (which
    asked for a grid 10^5 times finer: a MemoryError): nearly the projected DEM's mask."""
    from osgeo import gdal

    model, dem = valley
    geo = str(tmp_path / "dem4326.tif")
    gdal.Warp(geo, dem, dstSRS="EPSG:4326", resampleAlg="bilinear")
    g30 = model.grid(30.0)
    terrain = SarTerrainMask(geo)
    assert 20.0 < terrain.dem_pixel < 40.0
    projected = SarTerrainMask(dem).on(g30, 640.0)
    mine = terrain.on(g30, 640.0)
    # 40.9 % against 42.1 % of the grid, 94 % of pixels alike (the DEM resampled twice)
    assert abs(mine.mean() - projected.mean()) < 0.02 and (mine == projected).mean() > 0.92


def test_refinement_follows_the_dem_within_the_pixel_budget(tmp_path):
    """A 1 m DEM refines a 30 m grid 30 times when small; on a 1000 x 1000 grid the refined grid
    stays within MAX_FINE_PIXELS (4 x, 16 Mpx) instead of 900 Mpx."""
    from glacier_velocity.core.filters.terrain import MAX_FINE_PIXELS

    dem = str(tmp_path / "dem1m.tif")
    write_raster(dem, Grid.from_bounds(0, 100, 1, 100, 100, 32645), np.zeros((1, 100, 100)))
    terrain = SarTerrainMask(dem)
    assert terrain.refinement(Grid.from_bounds(0, 300, 30, 10, 10, 32645)) == 30
    big = Grid.from_bounds(0, 30000, 30, 1000, 1000, 32645)
    k = terrain.refinement(big)
    assert k == 4 and (k * 1000) ** 2 <= MAX_FINE_PIXELS


def test_dem_missing_part_of_the_grid_is_measured(valley, tmp_path):
    """A DEM over the western half of the grid: the mask knows it misses half the grid (the
    algorithms warn with that share), and the covered half's mask is the full DEM's."""
    model, dem = valley
    g30 = model.grid(30.0)
    west = Grid((g30.transform[0], g30.dx, 0.0, g30.transform[3], 0.0, -g30.dy),
                (g30.rows, g30.cols // 2), g30.crs_wkt)
    half = str(tmp_path / "dem_west.tif")
    write_raster(half, west, model.dem(g30)[None, :, :g30.cols // 2])
    full, partial = SarTerrainMask(dem), SarTerrainMask(half)
    assert partial.uncovered == 0.0
    a, b = full.on(g30, 640.0), partial.on(g30, 640.0)
    assert full.uncovered == 0.0
    assert abs(partial.uncovered - 0.5) < 0.03
    inner = slice(0, g30.cols // 2 - 25)  # away from the DEM's edge and the window's reach
    assert (a[:, inner] == b[:, inner]).mean() > 0.99
