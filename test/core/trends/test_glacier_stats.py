"""Per-glacier statistics on the sample scene (known trends, slopes, aspects), the ratio estimator,
month-resolved trends, the seasonal cycle, terrain and correlations."""

import numpy as np
import pytest
from scipy import stats

from glacier_velocity.core.trends.attributes import (attribute_correlations, correlation,
                                              glacier_attributes, within_glacier)
from glacier_velocity.core.io.dates import Interval
from glacier_velocity.core.errors import InputError
from glacier_velocity.core.trends.glaciers import (CLASSES, class_summary, glacier_trends,
                                                 monthly_trend_table, region_series,
                                                 seasonal_cycle_table)
from glacier_velocity.core.io.grid import Grid
from glacier_velocity.core.io.products import write_stack
from glacier_velocity.core.trends.seasonal import monthly_trend_raster, seasonal_cycle_rasters
from glacier_velocity.core.io.raster import read_band, read_bands
from glacier_velocity.core.trends.terrain import aspect_sector, circular_mean, terrain
from glacier_velocity.test.helpers import simulate_monthly_series

MIN_AREA = 0.05  # the tiny scene's glaciers: three of ~0.4 km², one of 0.07 km²


def seasonal_factor(model, month):
    """(1 + seasonal cycle) averaged over a calendar month: the steady glacier's time factor."""
    return model.time_factor(model.glaciers[2], Interval.month(model.first_year, month))


@pytest.mark.parametrize("stack", ["sentinel2_v", "landsat_v", "sentinel1_v"])
def test_glacier_classes_and_trends_match_the_truth(scene_tiny, stack):
    """Noisy, gappy sensor stacks: every class right, every true mean trend inside its CI."""
    _, manifest, _ = scene_tiny
    rows, summary, series = glacier_trends(manifest["paths"][stack], manifest["paths"]["glaciers"],
                                           manifest["paths"]["dem"], min_area=MIN_AREA)
    assert len(rows) == 4 and series.shape == (120, 4)
    for row, g in zip(rows, manifest["glaciers"]):
        assert row["id"] == g["gid"] and row["name"] == g["name"]
        assert row["class"].replace("significantly ", "") == g["expected_class"]
        assert row["ci_low"] <= g["true_trend_mean"] <= row["ci_high"]
        assert row["area_km2"] == pytest.approx(g["area_km2"], rel=0.01)
        assert abs((row["aspect_deg"] - g["bearing"] + 180) % 360 - 180) < 3
        assert row["n_years"] == 10 and row["year_first"] == 2015 and row["year_last"] == 2024
    assert summary[0]["n_glaciers"] == 4 and summary[0]["share_no_trend_pct"] == 50.0


def test_glacier_trends_on_the_true_stack(scene_tiny):
    """The true stack: trends equal the true per-glacier mean trends (the mean over pixels)."""
    _, manifest, _ = scene_tiny
    rows, _, _ = glacier_trends(manifest["paths"]["truth_v"], manifest["paths"]["glaciers"],
                                min_area=MIN_AREA, method="sen_annual")
    for row, g in zip(rows, manifest["glaciers"]):
        assert row["trend"] == pytest.approx(g["true_trend_mean"], rel=0.01, abs=0.01)
        assert row["aspect_deg"] == g["bearing"]  # from the polygons' aspect field (no DEM)
        assert row["trend_pct"] == pytest.approx(100 * g["trend"], abs=0.5)


def test_min_area(scene_tiny):
    _, manifest, _ = scene_tiny
    rows, _, _ = glacier_trends(manifest["paths"]["truth_v"], manifest["paths"]["glaciers"],
                                min_area=0.4)
    assert [r["id"] for r in rows] == [1, 2]
    with pytest.raises(InputError, match="MIN_AREA"):
        glacier_trends(manifest["paths"]["truth_v"], manifest["paths"]["glaciers"])  # 1 km²


def test_ratio_estimator_fills_what_gaps_hide(tmp_path):
    """A glacier whose fast centre is hidden every other month: the series still follows the
    whole-glacier mean (to the small bias of the hidden pixels' own means), where the plain
    mean of the visible pixels is ~30 % low in those months."""
    yy, xx = np.mgrid[-10:11, -10:11]
    r2 = (xx ** 2 + yy ** 2) / 100.0
    labels = (r2 < 1).astype(np.int32)
    speed = 100 * np.clip(1 - r2, 0, None)
    factor = 1 + 0.2 * np.sin(np.arange(24) / 3.0)
    stack = speed[None] * factor[:, None, None]
    stack[::2][:, r2 < 0.3] = np.nan
    grid = Grid.from_bounds(500000, 4000000, 30, 21, 21, 32645)
    intervals = [Interval.month(2020 + m // 12, m % 12 + 1) for m in range(24)]
    path = str(tmp_path / "s.tif")
    write_stack(path, grid, stack.astype(np.float32), intervals)
    series, coverage = region_series(path, labels, 1, min_coverage=0.3)
    true = speed[labels == 1].mean() * factor
    np.testing.assert_allclose(series[:, 0], true, rtol=5e-3)
    visible = np.nanmean(stack[::2][:, labels == 1], axis=1)
    assert np.all(visible < 0.75 * true[::2])
    assert coverage[0, 0] == pytest.approx(np.mean(r2[labels == 1] >= 0.3)) and coverage[1, 0] == 1
    series, _ = region_series(path, labels, 1, min_coverage=0.9)
    assert np.isnan(series[::2, 0]).all() and np.isfinite(series[1::2, 0]).all()


def test_class_summary_by_aspect_sector():
    rows = [{"class": c, "aspect_sector": s} for c, s in [
        (CLASSES[0], "N"), (CLASSES[0], "N"), (CLASSES[1], "E"), (CLASSES[2], "S"),
        (CLASSES[2], "N"), ("not computable", "W")]]
    summary = {r["group"]: r for r in class_summary(rows)}
    assert summary["all"]["n_glaciers"] == 5
    assert summary["all"]["share_accelerating_pct"] == pytest.approx(40.0)
    assert summary["N"]["share_accelerating_pct"] == pytest.approx(200 / 3)
    assert summary["E"]["share_decelerating_pct"] == 100.0
    assert summary["W"]["n_glaciers"] == 0 and np.isnan(summary["W"]["share_no_trend_pct"])


def test_month_resolved_trends(scene_tiny, tmp_path):
    """True stack: each month's trend = the glacier's mean trend x that month's seasonal factor."""
    _, manifest, model = scene_tiny
    rows = monthly_trend_table(manifest["paths"]["truth_v"], manifest["paths"]["glaciers"],
                               min_area=MIN_AREA)
    assert len(rows) == 48
    for row in rows:
        g = manifest["glaciers"][int(row["id"]) - 1]
        expected = g["true_trend_mean"] * seasonal_factor(model, row["month"])
        assert row["trend"] == pytest.approx(expected, rel=0.02, abs=0.05)
        assert row["n_years"] == 10
    # a mask (one area) and the whole raster are regions too; per-pixel raster agrees
    mask_rows = monthly_trend_table(manifest["paths"]["sentinel2_v"],
                                    mask_path=manifest["paths"]["glaciers"], method="sen")
    assert [r["id"] for r in mask_rows] == ["mask"] * 12
    path = str(tmp_path / "monthly.tif")
    monthly_trend_raster(manifest["paths"]["truth_v"], path, p_output=str(tmp_path / "p.tif"))
    july = read_band(path, 7)
    truth = read_band(manifest["paths"]["true_trend"]) * seasonal_factor(model, 7)
    assert np.nanmax(np.abs(july - truth)) < 0.02 * np.abs(truth).max() + 0.01


def test_seasonal_cycle(scene_tiny, tmp_path):
    _, manifest, model = scene_tiny
    rows, anomalies, regions = seasonal_cycle_table(manifest["paths"]["truth_v"],
                                                    manifest["paths"]["glaciers"],
                                                    min_area=MIN_AREA)
    for g in model.glaciers:  # true monthly means: the time factor averaged over the years
        factors = np.array([[model.time_factor(g, Interval.month(model.first_year + y, m))
                             for m in range(1, 13)] for y in range(model.years)]).mean(0)
        true_pct = 100 * (factors / factors.mean() - 1)
        for row in rows[12 * (g.gid - 1):12 * g.gid]:
            assert row["anomaly_pct"] == pytest.approx(true_pct[row["month"] - 1], abs=0.3)
    assert anomalies.shape == (120, 4) and len(regions) == 4
    np.testing.assert_allclose(np.nanmean(anomalies.reshape(10, 12, 4), axis=0), 0, atol=1e-6)
    mean_path, anom_path = str(tmp_path / "mean.tif"), str(tmp_path / "anom.tif")
    seasonal_cycle_rasters(manifest["paths"]["sentinel2_v"], mean_path, anom_path)
    means = read_bands(mean_path)
    on = model.labels(model.grid()) == 1
    assert np.nanmean(means[6][on]) > 1.3 * np.nanmean(means[0][on])  # July fast, January slow
    assert read_bands(anom_path).shape == (120, 100, 100)


def test_terrain_of_inclined_planes():
    grid = Grid.from_bounds(500000, 4000000, 30, 40, 50, 32645)
    x, y = np.meshgrid(*grid.centres())
    for bearing in (0, 45, 90, 200, 315):
        b = np.radians(bearing)
        z = 3000 - np.tan(np.radians(12)) * (x * np.sin(b) + y * np.cos(b))  # downhill at bearing
        slope, aspect = terrain(z, grid.dx, grid.dy)
        np.testing.assert_allclose(slope, 12, atol=1e-6)
        np.testing.assert_allclose((aspect - bearing + 180) % 360 - 180, 0, atol=1e-6)
    assert np.isnan(terrain(np.ones((5, 5)), 30, 30)[1]).all()  # flat: no aspect


def test_circular_mean_and_sectors():
    labels = np.array([1, 1, 2, 2, 0])
    mean = circular_mean(np.array([350.0, 10.0, 80.0, 100.0, 180.0]), labels, 2)
    np.testing.assert_allclose((mean + 180) % 360 - 180, [0.0, 90.0], atol=1e-9)
    assert [aspect_sector(a) for a in (0, 44.9, 45, 134, 135, 224, 225, 314, 315, 359)] == \
        ["N", "N", "E", "E", "S", "S", "W", "W", "N", "N"]
    assert aspect_sector(np.nan) == ""


def test_correlations_against_scipy_and_a_known_partial_relation():
    rng = np.random.default_rng(0)
    n = 60
    log_area = rng.normal(0, 0.5, n)
    slope = rng.normal(15, 4, n)
    northness = 0.15 * (slope - 15) + rng.normal(0, 0.3, n)  # steep glaciers face north here
    v = 50 + 40 * log_area + 3 * slope + rng.normal(0, 5, n)  # aspect has no own effect
    res = correlation(v, northness)
    r, p = stats.pearsonr(v, northness)
    rho, p_s = stats.spearmanr(v, northness)
    assert (res["pearson_r"], res["pearson_p"]) == pytest.approx((r, p))
    assert (res["spearman_rho"], res["spearman_p"]) == pytest.approx((rho, p_s))
    assert res["pearson_p"] < 0.01  # the raw correlation is confounded by slope...
    partial = correlation(v, northness, (log_area, slope))
    assert abs(partial["pearson_r"]) < 0.25 and partial["pearson_p"] > 0.05  # ...the partial not
    v2 = v + 30 * northness  # now aspect matters on its own
    assert correlation(v2, northness, (log_area, slope))["pearson_p"] < 1e-6
    # small samples: Spearman p is exact (4 glaciers in perfect order: 2/24)
    assert correlation([1, 2, 3, 4], [2, 4, 6, 9])["spearman_p"] == pytest.approx(1 / 12)


def test_glacier_attributes_on_the_scene(scene_tiny):
    _, manifest, model = scene_tiny
    rows, pixels = glacier_attributes(manifest["paths"]["truth_v"], manifest["paths"]["dem"],
                                      manifest["paths"]["glaciers"], min_area=MIN_AREA)
    grid = model.grid()
    for row, g, spec in zip(rows, manifest["glaciers"], model.glaciers):
        # margins: central differences reach into the blend zone around the glacier
        assert row["slope_mean"] == pytest.approx(g["slope"], abs=0.7)
        assert abs((row["aspect_deg"] - g["bearing"] + 180) % 360 - 180) < 2
        assert row["northness"] == pytest.approx(np.cos(np.radians(g["bearing"])), abs=0.04)
        true_mean = model.base_speed(spec, grid)[model.labels(grid) == g["gid"]].mean()
        assert row["v_mean"] == pytest.approx(true_mean, rel=0.03)
        assert row["v_max"] <= spec.vmax * 1.3
    table = attribute_correlations(rows)
    assert {(r["y"], r["x"], r["controls"]) for r in table} >= {
        ("v_mean", "log10_area", ""), ("v_mean", "northness", "log10_area, slope_mean")}
    partial = [r for r in table if r["controls"]][0]
    assert partial["n"] == 4 and np.isnan(partial["pearson_r"])  # 4 glaciers: not enough


def test_within_glacier_velocity_slope():
    rng = np.random.default_rng(1)
    slope = rng.uniform(5, 25, (30, 30))
    labels = np.ones((30, 30), np.int32)
    velocity = 10 + 4 * slope + rng.normal(0, 2, slope.shape)
    row, fit = within_glacier({"labels": labels, "velocity": velocity, "slope": slope}, 1, "g")
    assert fit == pytest.approx(4.0, abs=0.1) and row["pearson_r"] > 0.9 and row["n"] == 900
    with pytest.raises(InputError, match="GLACIER_ID"):
        within_glacier({"labels": labels, "velocity": velocity, "slope": slope}, 2)


def test_simulated_series_have_the_stated_properties():
    """The calibration series: AR(1) lag-one correlation phi, sd sigma x mean, given trend."""
    values, intervals = simulate_monthly_series(2000, sigma=0.1, phi=0.6, trend=0.2, seed=0)
    t = np.array([iv.decimal_year for iv in intervals])
    clean = 100 * (1 + 0.3 * np.sin(2 * np.pi * t) + 0.2 * (t - t.mean()) / 10)
    noise = values - clean[:, None]
    assert noise.std() == pytest.approx(10, rel=0.03)
    assert np.corrcoef(noise[1:].ravel(), noise[:-1].ravel())[0, 1] == pytest.approx(0.6, abs=0.02)


def test_glacier_outside_the_stack_is_not_computable(scene_tiny, tmp_path):
    from glacier_velocity.core.io.vector import write_polygons

    _, manifest, model = scene_tiny
    g = model.glaciers[0]
    far = model.outline(g) + np.array([50000.0, 0.0])  # 50 km east of the scene
    polys = [(model.outline(g), {"id": 1, "name": "inside"}), (far, {"id": 2, "name": "outside"})]
    path = write_polygons(str(tmp_path / "g.gpkg"), "glaciers", model.crs_wkt, polys,
                          {"id": "int", "name": "str"})
    rows, summary, _ = glacier_trends(manifest["paths"]["truth_v"], path, manifest["paths"]["dem"],
                                      min_area=MIN_AREA)
    assert rows[1]["class"] == "not computable" and rows[1]["n_pixels"] == 0
    assert rows[0]["class"] == CLASSES[0] and summary[0]["n_glaciers"] == 1
