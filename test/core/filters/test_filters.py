"""Quality filters: each filter against known truth, the default chain on a synthetic raw pair
(wrong-vector share, survival of correct glacier vectors) and on the real Kaskawulsh map."""

import os

import numpy as np
import pytest
from osgeo import ogr

from glacier_velocity.core.filters import quality as F
from glacier_velocity.core.filters.clean import FilterSettings, apply_filters, clean_pair
from glacier_velocity.core.errors import InputError
from glacier_velocity.core.filters.flowdir import FlowlineDirection, RasterDirection
from glacier_velocity.core.io.grid import Grid
from glacier_velocity.core.io.pairsource import PairSource, dates_from_name
from glacier_velocity.core.io.products import read_pair_info, read_pair_product, write_pair_product
from glacier_velocity.core.io.raster import write_raster
from glacier_velocity.core.io.stable import stable_mask
from glacier_velocity.core.sampledata.scene import SceneModel
from glacier_velocity.core.sampledata.raw_pair import make_raw_pair
from glacier_velocity.core.io.vector import rasterize_mask

GRID = Grid.from_bounds(500000, 4000000, 30, 60, 80, 32645)


def smooth_field(shape=(60, 80)):
    """A smooth flow (m/yr): 100-200 m/yr towards the north-east, varying slowly."""
    r, c = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    speed = 100 + 100 * c / shape[1]
    return speed * np.sin(np.deg2rad(45)), speed * np.cos(np.deg2rad(45))


def test_snr_and_speed_filters_count_what_they_remove():
    vx, vy = smooth_field()
    snr = np.full(vx.shape, 0.95, np.float32)
    snr[:10, :] = 0.5
    snr[10, :5] = np.nan  # unknown SNR is kept
    ox, oy, removed = F.snr_filter(vx, vy, snr, 0.9)
    assert removed.sum() == 10 * 80 and np.isnan(ox[:10]).all() and np.isfinite(ox[10:]).all()
    fast = vx.copy()
    fast[30, 40] = 5000.0
    ox, oy, removed = F.speed_filter(fast, vy, F.DEFAULT_MAX_SPEED)
    assert removed.sum() == 1 and np.isnan(oy[30, 40])
    # a pixel already NaN is not counted again
    _, _, again = F.speed_filter(ox, oy, F.DEFAULT_MAX_SPEED)
    assert again.sum() == 0


def test_median_test_finds_isolated_outliers_and_keeps_a_sheared_field():
    vx, vy = smooth_field()
    rng = np.random.default_rng(1)
    vx = vx + rng.normal(0, 2, vx.shape)
    vy = vy + rng.normal(0, 2, vx.shape)
    bad = np.zeros(vx.shape, bool)
    bad[5::7, 3::9] = True
    vx[bad] += rng.choice([-1, 1], bad.sum()) * rng.uniform(60, 300, bad.sum())
    ox, oy, removed = F.normalised_median_test(vx, vy, epsilon=5.0)
    assert (removed & bad).sum() == bad.sum()  # every outlier found
    assert (removed & ~bad).sum() <= 0.01 * (~bad).sum()  # <1 % of good vectors lost
    # isolated vectors (no valid neighbour) cannot be checked and go
    lone = np.full((5, 5), np.nan, np.float32)
    lone[2, 2] = 10.0
    assert F.normalised_median_test(lone, lone, 5.0)[2][2, 2]
    with pytest.raises(InputError, match="epsilon must be positive"):
        F.normalised_median_test(vx, vy, 0.0)


def test_speckle_filter_removes_small_coherent_islands_only():
    vx, vy = smooth_field()
    vx, vy = vx.copy(), vy.copy()
    vx[10:16, 10:16] += 400.0  # 36-pixel island, coherent inside
    vx[30:45, 40:60] += 400.0  # 300-pixel region: larger than the limit, kept
    vx[48:58, 58:68] = np.nan  # 3-pixel gaps around a 4x4 patch: nothing near to disagree with
    vx[51:55, 61:65] = 0.0
    ox, oy, removed = F.speckle_filter(vx, vy, max_diff=20.0, max_size=100)
    assert removed.sum() == 36 and removed[10:16, 10:16].all()
    assert np.isfinite(ox[30:45, 40:60]).all() and np.isfinite(ox[51:55, 61:65]).all()


def test_directional_filter_against_a_raster_and_flowlines(tmp_path):
    vx, vy = smooth_field()  # bearing 45 degrees everywhere
    vx, vy = vx.copy(), vy.copy()
    vx[20, 20], vy[20, 20] = -vy[20, 20], vx[20, 20]  # turned by -90 degrees
    vx[21, 21], vy[21, 21] = 3.0, -3.0  # slower than min_speed: not tested
    ref = np.full(vx.shape, 50.0, np.float32)  # 5 degrees off the field: all pass at +-20
    ref[:, 70:] = np.nan  # unknown direction: no test
    ox, _, removed = F.directional_filter(vx, vy, ref, 20.0, min_speed=10.0)
    assert removed.sum() == 1 and removed[20, 20]
    assert F.directional_filter(vx, vy, np.full(vx.shape, 80.0), 20.0, 10.0)[2].sum() \
        == np.isfinite(vx).sum() - 1  # 35 degrees off: all but the slow vector removed

    # the same reference from a raster file and from flowlines drawn north-east
    path = str(tmp_path / "flow.tif")
    write_raster(path, GRID, ref)
    np.testing.assert_array_equal(RasterDirection(path, GRID).window((0, 0, 60, 80)), ref)
    gpkg = str(tmp_path / "lines.gpkg")
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(gpkg)
    layer = ds.CreateLayer("flowlines", GRID.srs(), ogr.wkbLineString)
    x0, y0 = 500000.0, 4000000.0 - 1800.0
    for start in (0.0, 600.0, 1200.0):
        line = ogr.Geometry(ogr.wkbLineString)
        line.AddPoint_2D(x0 + start, y0)
        line.AddPoint_2D(x0 + start + 1500.0, y0 + 1500.0)  # bearing 45
        f = ogr.Feature(layer.GetLayerDefn())
        f.SetGeometry(line)
        layer.CreateFeature(f)
    ds = None
    flow = FlowlineDirection(gpkg, GRID, max_distance=300.0).window((0, 0, 60, 80))
    near = np.isfinite(flow)
    assert 0.3 < near.mean() < 1.0  # pixels beyond 300 m get no direction
    np.testing.assert_allclose(flow[near], 45.0, atol=1e-4)


def test_median3x3_is_nan_aware_and_keeps_gaps():
    a = np.arange(25, dtype=np.float32).reshape(5, 5)
    a[2, 2] = np.nan
    a[0, 0] = 1000.0
    m = F.median3x3(a)
    assert np.isnan(m[2, 2])
    assert m[0, 0] == np.median([1000.0, 1, 5, 6])  # corner: 4 values
    assert m[1, 1] == np.median([1000.0, 1, 2, 5, 6, 7, 10, 11])  # NaN ignored


def test_default_chain_on_synthetic_raw_pair(tmp_path):
    """Wrong vectors (error > 1 px) fall >= 5-fold; >= 95 % of correct glacier vectors survive."""
    rp = make_raw_pair(SceneModel("tiny"), outliers=0.10)
    path = str(tmp_path / "raw.tif")
    write_pair_product(path, rp.grid, rp.vx, rp.vy, rp.snr, rp.interval.start, rp.interval.end,
                       "landsat")
    valid0 = np.isfinite(rp.vx)
    wrong0 = rp.wrong(rp.vx, rp.vy)
    correct_glacier = valid0 & ~wrong0 & rp.glacier
    share0 = wrong0.sum() / valid0.sum()
    assert share0 > 0.08
    flow = str(tmp_path / "flow.tif")
    write_raster(flow, rp.grid, SceneModel("tiny").flow_direction(rp.grid))
    for settings, direction in ((None, None),
                                (FilterSettings(direction="given"), RasterDirection(flow, rp.grid))):
        out = str(tmp_path / "clean.tif")
        report, ramps = clean_pair(PairSource(path), out, settings, direction, stable=rp.stable,
                                   tile=64)
        _, d = read_pair_product(out)
        valid = np.isfinite(d["vx"])
        share = rp.wrong(d["vx"], d["vy"]).sum() / valid.sum()
        survived = (valid & ~rp.wrong(d["vx"], d["vy"]) & correct_glacier).sum()
        assert share <= share0 / 5, (share, share0)
        assert survived >= 0.95 * correct_glacier.sum()
        assert report.valid_before == valid0.sum() and report.valid_after == valid.sum()
        assert report.removed["snr"] > 0 and report.removed["median test"] > 0
        assert report.removed["speckle"] > 0 and "direction" in report.removed
        assert "median test" in read_pair_info(out).metadata["FILTERS"]


@pytest.mark.parametrize("settings", [None, FilterSettings(direction="none", median=False)])
def test_chain_does_not_depend_on_tiling(tmp_path, settings):
    rp = make_raw_pair(SceneModel("tiny"), outliers=0.10, seed=3)
    path = str(tmp_path / "raw.tif")
    write_pair_product(path, rp.grid, rp.vx, rp.vy, rp.snr, rp.interval.start, rp.interval.end)
    results = []
    for tile in (48, 1024):
        out = str(tmp_path / f"clean_{tile}.tif")
        report, _ = clean_pair(PairSource(path), out, settings, tile=tile)
        results.append((report.removed, read_pair_product(out)[1]["vx"]))
    assert results[0][0] == results[1][0]
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_component_rasters_units_and_dates(tmp_path):
    vx, vy = smooth_field()
    for name, arr in (("vx", vx / 365.25), ("vy", vy / 365.25)):
        write_raster(str(tmp_path / f"20180304-20180405_{name}.tif"), GRID, arr)
    src = PairSource(str(tmp_path / "20180304-20180405_vx.tif"),
                     str(tmp_path / "20180304-20180405_vy.tif"), "m/day")
    assert (src.start.isoformat(), src.end.isoformat()) == ("2018-03-04", "2018-04-05")
    rx, _, snr = src.read()
    np.testing.assert_allclose(rx, vx, rtol=1e-5)
    assert np.isnan(snr).all() and not src.has_snr
    np.testing.assert_array_equal(src.warp(GRID, (5, 6, 10, 12))[1], src.read((5, 6, 10, 12))[1])
    assert dates_from_name("x_2019-06-03_2019-07-05.tif")[1].isoformat() == "2019-07-05"
    write_raster(str(tmp_path / "vx.tif"), GRID, vx)
    write_raster(str(tmp_path / "vy.tif"), GRID, vy)
    with pytest.raises(InputError, match="No dates for .*vx.tif.*Give the start and end dates"):
        PairSource(str(tmp_path / "vx.tif"), str(tmp_path / "vy.tif"))
    ok = PairSource(str(tmp_path / "vx.tif"), str(tmp_path / "vy.tif"), start="2020-01-01",
                    end="2020-02-01")
    assert ok.baseline_years == pytest.approx(31 / 365.25)
    with pytest.raises(InputError, match="needs its vy raster"):
        PairSource(str(tmp_path / "vx.tif"))
    pair = str(tmp_path / "pair.tif")
    write_pair_product(pair, GRID, vx, vy, np.ones_like(vx), "2020-01-01", "2020-02-01")
    with pytest.raises(InputError, match="units are m/yr but m/day was declared"):
        PairSource(pair, units="m/day")


def test_apply_filters_needs_flow_for_given_direction():
    vx, vy = smooth_field()
    resolved = FilterSettings(nmt_epsilon=5.0, speckle_diff=10.0, min_speed=10.0,
                              direction="given")
    with pytest.raises(InputError, match="needs a flow direction"):
        apply_filters(vx, vy, np.ones_like(vx), resolved)


KASKA = "kaskawulsh"
VX, VY = "20180304-20180405_velo-raw_vx.tif", "20180304-20180405_velo-raw_vy.tif"


@pytest.mark.shared_data
def test_default_chain_on_kaskawulsh(shared_data, tmp_path):
    """Real map (m/day): bedrock std <= 0.20 m/day, stable speeds > 0.5 m/day <= 1 %, stable median
    within 0.005 m/day of zero, >= 95 % of glacier pixels kept."""
    folder = os.path.join(shared_data, KASKA)
    src = PairSource(os.path.join(folder, VX), os.path.join(folder, VY), "m/day")
    stable = stable_mask(src.grid, os.path.join(folder, "bedrock_V2.shp"))
    glacier = rasterize_mask(os.path.join(folder, "glacier_V1_Kaskawulsh_s_inwardBuffer600m.shp"),
                             src.grid)
    out = str(tmp_path / "kaskawulsh_clean.tif")
    clean_pair(src, out, stable=stable)
    raw_x, raw_y, _ = src.read()
    info, d = read_pair_product(out)
    assert info.start.isoformat() == "2018-03-04" and info.metadata["UNITS"] == "m/yr"

    def stats(vx, vy):
        x, y = vx[stable] / 365.25, vy[stable] / 365.25
        ok = np.isfinite(x) & np.isfinite(y)
        x, y = x[ok], y[ok]
        return x.std(), y.std(), np.mean(np.hypot(x, y) > 0.5), np.median(x), np.median(y)

    before, after = stats(raw_x, raw_y), stats(d["vx"], d["vy"])
    assert before[0] > 0.35 and before[1] > 0.35 and before[2] > 0.03  # the raw map's figures
    assert after[0] <= 0.20 and after[1] <= 0.20
    assert after[2] <= 0.01
    assert abs(after[3]) <= 0.005 and abs(after[4]) <= 0.005
    valid_before = glacier & np.isfinite(raw_x)
    kept = (valid_before & np.isfinite(d["vx"])).sum() / valid_before.sum()
    assert kept >= 0.95
