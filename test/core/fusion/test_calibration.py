"""UAV calibration of the fusion weights: exact constrained optimum, matching, statistics, errors."""

import itertools

import numpy as np
import pytest
from scipy.optimize import nnls

from glacier_velocity.core.fusion.calibration import (calibrate, fit_stats, inverse_variance_weights,
                                               simplex_lsq)
from glacier_velocity.core.io.dates import Interval
from glacier_velocity.core.errors import InputError
from glacier_velocity.core.io.grid import Grid
from glacier_velocity.core.io.products import read_stack, read_stack_info, write_stack
from glacier_velocity.core.io.raster import warp_to_grid, write_raster


def objective(X, y, w):
    return float(np.sum((y - X @ w) ** 2))


def simplex_by_elimination(X, y):
    """Independent formulation: enumerate supports; on each, eliminate the last weight
    (w_last = 1 − Σ others) and solve the unconstrained least squares; keep the best feasible."""
    best, best_obj = None, np.inf
    k = X.shape[1]
    for size in range(1, k + 1):
        for support in itertools.combinations(range(k), size):
            s = list(support)
            last = X[:, s[-1]]
            w = np.zeros(k)
            if size == 1:
                w[s[0]] = 1.0
            else:
                A = X[:, s[:-1]] - last[:, None]
                sol = np.linalg.lstsq(A, y - last, rcond=None)[0]
                w[s[:-1]] = sol
                w[s[-1]] = 1.0 - sol.sum()
            if np.all(w >= -1e-12) and objective(X, y, w) < best_obj:
                best, best_obj = w, objective(X, y, w)
    return best


def simplex_by_nnls(X, y):
    """Another independent formulation: NNLS with Σw = 1 imposed by a heavily weighted row."""
    big = 1e4 * np.sqrt(np.sum(y ** 2))
    A = np.vstack([X, np.full((1, X.shape[1]), big)])
    return nnls(A, np.concatenate([y, [big]]), maxiter=10000)[0]


@pytest.mark.parametrize("case", range(8))
def test_simplex_lsq_is_the_exact_constrained_optimum(case):
    rng = np.random.default_rng(case)
    k = 2 + case % 4
    truth = rng.normal(100, 40, 300)
    X = truth[:, None] + rng.normal(0, 1, (300, k)) * rng.uniform(2, 30, k) \
        + rng.normal(0, 8, k)  # noise and bias per source
    if case == 6:  # optimum outside the simplex's interior: one source far better
        X[:, 0] = truth + rng.normal(0, 0.1, 300)
    if case == 7:  # collinear sources (singular KKT systems)
        X[:, 1] = X[:, 0]
    w = simplex_lsq(X, truth)
    assert np.all(w >= 0) and abs(w.sum() - 1) < 1e-12
    ref = simplex_by_elimination(X, truth)
    assert objective(X, truth, w) <= objective(X, truth, ref) * (1 + 1e-10)
    if case != 7:  # unique optimum
        np.testing.assert_allclose(w, ref, atol=1e-6)
        np.testing.assert_allclose(w, simplex_by_nnls(X, truth), atol=1e-4)
    if case == 6:
        assert w[0] > 0.99


def test_fit_stats_and_inverse_variance():
    u = np.linspace(0, 100, 101)
    v = 2.0 * u + 3.0
    st = fit_stats(v, u)
    assert st["n"] == 101 and st["slope"] == pytest.approx(2.0) and st["r2"] == pytest.approx(1.0)
    assert st["bias"] == pytest.approx(np.mean(u) + 3.0)
    assert st["rmse"] == pytest.approx(np.sqrt(np.mean((u + 3.0) ** 2)))
    X = np.column_stack([u + 2.0, u - 4.0])  # mean squared residuals 4 and 16
    np.testing.assert_allclose(inverse_variance_weights(X, u), [0.8, 0.2])


def test_scene_weights_are_the_constrained_optimum_and_favour_sentinel2(calibration_tiny, scene_tiny):
    cal = calibration_tiny
    s = cal.samples
    # enough matched samples on the tiny scene: 6 UAV bands x a 250-pixel footprint, minus gaps
    assert s.uav.size > 500
    assert cal.names == ["landsat_v", "sentinel2_v", "sentinel1_v"]
    assert cal.roles == ["primary", "primary", "auxiliary"]
    assert cal.sensors == ["landsat", "sentinel2", "sentinel1"]
    np.testing.assert_allclose(cal.weights, simplex_by_elimination(s.values, s.uav), atol=1e-4)
    np.testing.assert_allclose(cal.weights, simplex_by_nnls(s.values, s.uav), atol=1e-4)
    assert np.argmax(cal.weights) == 1 and cal.weights[1] > 0.6  # sentinel2: sigma 8 m/yr
    # bands matched by the largest overlap: UAV 28 Jun-30 Jul -> July, 3 Aug-2 Sep -> August
    uav_iv, matched = cal.matches[0]
    assert str(uav_iv) == "2019-06-28/2019-07-30"
    assert all(m == Interval.month(2019, 7) for m in matched)
    assert all(m == Interval.month(2019, 8) for m in cal.matches[1][1])
    # the samples are the stacks' own values at the matched bands (nearest, unsmoothed)
    _, manifest, _ = scene_tiny
    _, uav = read_stack(manifest["paths"]["uav_v"], bands=[1])
    _, landsat = read_stack(manifest["paths"]["landsat_v"], bands=[55])  # July 2019
    first = s.interval == "2019-06-28/2019-07-30"
    np.testing.assert_array_equal(s.uav[first], uav[0][s.row[first], s.col[first]])
    np.testing.assert_array_equal(s.values[first, 0], landsat[0][s.row[first], s.col[first]])


def test_table_rows_statistics(calibration_tiny):
    cal = calibration_tiny
    rows = cal.table_rows()
    assert [r["source"] for r in rows] == cal.names + ["combined"]
    assert [r["role"] for r in rows] == ["primary", "primary", "auxiliary", "combined"]
    s = cal.samples
    for k, r in enumerate(rows[:3]):
        d = s.values[:, k] - s.uav
        assert r["n"] == s.uav.size and r["weight"] == pytest.approx(cal.weights[k])
        assert r["bias"] == pytest.approx(d.mean()) and r["rmse"] == pytest.approx(np.sqrt(np.mean(d ** 2)))
        assert r["r2"] == pytest.approx(np.corrcoef(s.values[:, k], s.uav)[0, 1] ** 2)
        assert r["slope"] == pytest.approx(np.polyfit(s.uav, s.values[:, k], 1)[0])
    combined = rows[-1]
    assert combined["rmse"] < min(r["rmse"] for r in rows[:3])  # least squares minimises it
    assert combined["weight"] == pytest.approx(1.0)
    samples = cal.sample_rows(max_rows=100)
    assert len(samples) == 100 and list(samples[0]) == cal.sample_columns()
    assert cal.sample_columns() == ["interval", "row", "col", "uav", "v_landsat_v", "v_sentinel2_v",
                                    "v_sentinel1_v", "v_combined"]
    for r in samples[:10]:
        expect = sum(cal.weights[k] * r[f"v_{n}"] for k, n in enumerate(cal.names))
        assert r["v_combined"] == pytest.approx(expect)
    assert len(cal.sample_rows()) == s.uav.size  # under the 20,000-row cap: all of them


def test_inverse_variance_and_harmonisation_on_another_grid(scene_tiny, tmp_path, calibration_tiny):
    _, manifest, _ = scene_tiny
    p = manifest["paths"]
    # Landsat on a 15 m grid: nearest-neighbour harmonisation onto the UAV grid gives back the
    # very same samples, hence the same weights
    info = read_stack_info(p["landsat_v"])
    fine = Grid.from_bounds(info.grid.bounds[0], info.grid.bounds[3], 15.0, info.grid.rows * 2,
                            info.grid.cols * 2, info.grid.crs_wkt)
    fine_path = str(tmp_path / "landsat_15m.tif")
    write_stack(fine_path, fine, warp_to_grid(p["landsat_v"], fine, "nearest"), info.intervals,
                "landsat")
    cal = calibrate(p["uav_v"], [fine_path, p["sentinel2_v"]], p["sentinel1_v"],
                    method="inverse_variance")
    np.testing.assert_array_equal(cal.samples.values, calibration_tiny.samples.values)
    rows = cal.table_rows()
    products = [r["weight"] * r["rmse"] ** 2 for r in rows[:3]]
    np.testing.assert_allclose(products, products[0], rtol=1e-9)  # w ∝ 1 / residual variance
    assert np.argmax(cal.weights) == 1


def test_weights_per_class(scene_tiny, tmp_path, calibration_tiny):
    _, manifest, _ = scene_tiny
    p = manifest["paths"]
    grid = read_stack_info(p["uav_v"]).grid
    split = np.median(calibration_tiny.samples.col)  # two halves of the UAV footprint
    classes = np.where(np.arange(grid.cols)[None, :] < split, 1.0, 2.0) * np.ones(grid.shape)
    classes[:5] = np.nan  # no class
    cpath = write_raster(str(tmp_path / "classes.tif"), grid, classes.astype(np.float32))
    cal = calibrate(p["uav_v"], [p["landsat_v"], p["sentinel2_v"]], p["sentinel1_v"], classes=cpath)
    np.testing.assert_allclose(cal.weights, calibration_tiny.weights, atol=1e-12)
    s = cal.samples
    assert set(cal.class_weights) == {1.0, 2.0}
    for value, w in cal.class_weights.items():
        sel = s.classes == value
        np.testing.assert_allclose(w, simplex_by_elimination(s.values[sel], s.uav[sel]), atol=1e-4)
    rows = cal.table_rows()
    assert len(rows) == 12 and {r["class"] for r in rows} == {"all", "1", "2"}
    assert cal.class_weight_string().startswith("1:") and ";2:" in cal.class_weight_string()


def test_bad_input_is_a_clear_error(scene_tiny, tmp_path):
    _, manifest, _ = scene_tiny
    p = manifest["paths"]
    info = read_stack_info(p["landsat_v"])
    _, arr = read_stack(p["landsat_v"], bands=[1, 2])
    nodates = write_raster(str(tmp_path / "nodates.tif"), info.grid, arr)
    with pytest.raises(InputError, match="nodates.tif.* no date interval"):
        calibrate(p["uav_v"], [nodates, p["sentinel2_v"]])
    late = write_stack(str(tmp_path / "late.tif"), info.grid, arr,
                       [Interval.month(2030, 1), Interval.month(2030, 2)], "landsat")
    with pytest.raises(InputError, match="late.tif.*no temporal overlap"):
        calibrate(p["uav_v"], [p["sentinel2_v"], late])
    # valid values, but only outside the UAV footprint
    uav_info, uav = read_stack(p["uav_v"])
    outside = np.where(np.isfinite(uav), np.nan, 100.0).astype(np.float32)
    elsewhere = write_stack(str(tmp_path / "elsewhere.tif"), info.grid, outside,
                            uav_info.intervals, "landsat")
    with pytest.raises(InputError, match="No pixel is valid in the UAV stack"):
        calibrate(p["uav_v"], [elsewhere, p["sentinel2_v"]])
    # speeds against east components: weights of different quantities mean nothing
    vx = write_stack(str(tmp_path / "vx.tif"), uav_info.grid, uav, uav_info.intervals, "uav", "vx")
    with pytest.raises(InputError, match="different quantities"):
        calibrate(vx, [p["sentinel2_v"]])
    with pytest.raises(InputError, match="Unknown calibration method"):
        calibrate(p["uav_v"], [p["sentinel2_v"]], method="median")
