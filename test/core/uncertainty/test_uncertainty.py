"""Stable-ground uncertainty against injected truth: bias b and noise σ on stable ground."""

import os

import numpy as np
import pytest
from osgeo import gdal
from scipy import optimize, stats

from glacier_velocity.core.io.dates import Interval
from glacier_velocity.core.errors import InputError
from glacier_velocity.core.io.grid import Grid
from glacier_velocity.core.io.products import write_pair_product, write_stack
from glacier_velocity.core.io.raster import write_raster
from glacier_velocity.core.uncertainty.stable_ground import (describe, expected_speed, open_sources,
                                               open_velocity_source, stable_uncertainty)
from glacier_velocity.core.io.vector import rasterize_mask, write_polygons

ROWS, COLS, PIXEL = 200, 200, 30.0
GRID = Grid.from_bounds(500000, 4000000, PIXEL, ROWS, COLS, 32645)
MONTHS = [Interval.month(2020, m) for m in range(1, 13)]
SIGMA, BIAS = 10.0, 3.0


def stable_polygons(folder):
    """Stable ground = the left half of the grid (20,000 pixels), as a polygon layer."""
    x0, y1 = GRID.transform[0], GRID.transform[3]
    ring = np.array([[x0, y1], [x0 + COLS / 2 * PIXEL, y1], [x0 + COLS / 2 * PIXEL, y1 - ROWS * PIXEL],
                     [x0, y1 - ROWS * PIXEL]])
    return write_polygons(os.path.join(folder, "stable.gpkg"), "stable", GRID.crs_wkt,
                          [(ring, {})], {})


def noisy_stack(folder, rng, outliers=0.0, name="stack.tif"):
    """Stable pixels b + N(0, σ); a share ``outliers`` of them replaced by gross errors (+200..+1000);
    the right half is a fast glacier; a few NaN gaps."""
    arr = np.empty((len(MONTHS), ROWS, COLS), np.float32)
    for k in range(len(MONTHS)):
        band = BIAS + rng.normal(0, SIGMA, (ROWS, COLS))
        band[:, COLS // 2:] = 300 + 50 * k
        bad = rng.random((ROWS, COLS // 2)) < outliers
        band[:, :COLS // 2][bad] = BIAS + rng.uniform(200, 1000, bad.sum())
        band[rng.random((ROWS, COLS)) < 0.02] = np.nan
        arr[k] = band
    return write_stack(os.path.join(folder, name), GRID, arr, MONTHS, "landsat"), arr


def band_rows(rows, quantity="v"):
    return [r for r in rows if r["quantity"] == quantity and r["band"] > 0]


def test_e_and_nmad_recover_injected_bias_and_noise(tmp_path):
    rng = np.random.default_rng(0)
    stack, _ = noisy_stack(str(tmp_path), rng)
    stable = stable_polygons(str(tmp_path))
    n = 10000
    rows = stable_uncertainty([stack], polygons=stable, sample_size=n, seed=3)
    per_band = band_rows(rows)
    assert len(per_band) == 12 and all(r["n"] == n == r["n_valid"] for r in per_band)
    expected_e = np.sqrt(BIAS ** 2 + SIGMA ** 2 / n)
    assert np.mean([r["e"] for r in per_band]) == pytest.approx(expected_e, rel=0.10)
    assert np.mean([r["nmad"] for r in per_band]) == pytest.approx(SIGMA, rel=0.10)
    for r in per_band:
        assert r["se"] == pytest.approx(r["std"] / np.sqrt(n))
        assert r["e"] == pytest.approx(np.hypot(r["se"], r["mean"]))
        assert abs(r["mean"] - BIAS) < 4 * SIGMA / np.sqrt(n)
        assert r["std"] == pytest.approx(SIGMA, rel=0.05) and np.isnan(r["incorrect_share"])
    summary = rows[-1]
    assert summary["band"] == 0 and summary["n"] == 12 * n
    assert summary["e"] == pytest.approx(np.mean([r["e"] for r in per_band]))
    # every stable pixel: N is the number of valid stable pixels (about 98 % of 20,000)
    full = band_rows(stable_uncertainty([stack], polygons=stable, summary=False))
    for r in full:
        assert 19000 < r["n"] < 20000
        assert r["e"] == pytest.approx(np.sqrt(BIAS ** 2 + SIGMA ** 2 / r["n"]), rel=0.10)


def test_nmad_with_ten_percent_gross_outliers(tmp_path):
    rng = np.random.default_rng(1)
    stack, _ = noisy_stack(str(tmp_path), rng, outliers=0.10)
    stable = stable_polygons(str(tmp_path))
    rows = band_rows(stable_uncertainty([stack], polygons=stable, threshold=100.0))
    for r in rows:
        assert r["incorrect_share"] == pytest.approx(0.10, abs=0.01)
        assert r["nmad"] == pytest.approx(SIGMA, rel=0.10)
        assert r["e"] == pytest.approx(np.sqrt(BIAS ** 2 + SIGMA ** 2 / r["n"]), rel=0.10)
        assert r["n"] == pytest.approx(0.9 * r["n_valid"], rel=0.02)
    # Without the threshold the outliers stay in: NMAD reads the known contamination bias of the
    # MAD (one-sided 10 %: 1.145 σ) and the standard deviation explodes.
    f = stats.norm.cdf
    m = stats.norm.ppf(0.5 / 0.9)
    d = optimize.brentq(lambda d: 0.9 * (f(m + d) - f(m - d)) - 0.5, 0.1, 3)
    raw = band_rows(stable_uncertainty([stack], polygons=stable))
    assert np.mean([r["nmad"] for r in raw]) == pytest.approx(1.4826 * d * SIGMA, rel=0.03)
    assert min(r["std"] for r in raw) > 10 * SIGMA


def test_pair_product_components_and_rician_speed(tmp_path):
    """vx and vy give the bias and σ; the stable mean of v is the Rician mean, not the bias."""
    rng = np.random.default_rng(2)
    bx, by = 3.0, -4.0
    vx = (bx + rng.normal(0, SIGMA, (ROWS, COLS))).astype(np.float32)
    vy = (by + rng.normal(0, SIGMA, (ROWS, COLS))).astype(np.float32)
    vx[:, COLS // 2:] = 200.0
    pair = write_pair_product(str(tmp_path / "pair.tif"), GRID, vx, vy, np.ones_like(vx),
                              "2020-07-03", "2020-08-04", "landsat")
    rows = stable_uncertainty([pair], polygons=stable_polygons(str(tmp_path)))
    by_q = {r["quantity"]: r for r in rows}
    assert set(by_q) == {"v", "vx", "vy"} and len(rows) == 3  # one band: no summary row
    assert by_q["v"]["interval"] == "2020-07-03/2020-08-04"
    n = by_q["vx"]["n"]
    assert n == ROWS * COLS // 2
    assert by_q["vx"]["mean"] == pytest.approx(bx, abs=4 * SIGMA / np.sqrt(n))
    assert by_q["vy"]["mean"] == pytest.approx(by, abs=4 * SIGMA / np.sqrt(n))
    for q in ("vx", "vy"):
        assert by_q[q]["nmad"] == pytest.approx(SIGMA, rel=0.05)
    rician = stats.rice(np.hypot(bx, by) / SIGMA, scale=SIGMA)
    assert by_q["v"]["mean"] == pytest.approx(rician.mean(), rel=0.03)
    for nu in (0.0, 5.0, 30.0, 60.0):
        assert expected_speed(nu, SIGMA) == pytest.approx(
            stats.rice(nu / SIGMA, scale=SIGMA).mean(), rel=1e-9)
    assert expected_speed(500.0, SIGMA) == pytest.approx(500 + SIGMA ** 2 / 1000, rel=1e-6)
    assert by_q["v"]["mean"] > 2 * np.hypot(bx, by)
    assert by_q["v"]["median"] == pytest.approx(rician.median(), rel=0.03)


def test_mask_raster_on_another_grid_equals_polygons(tmp_path):
    rng = np.random.default_rng(4)
    stack, _ = noisy_stack(str(tmp_path), rng)
    stable = stable_polygons(str(tmp_path))
    fine = Grid.from_bounds(GRID.transform[0], GRID.transform[3], PIXEL / 3, ROWS * 3, COLS * 3,
                            32645)
    mask = np.zeros(fine.shape, np.float32)
    mask[:, :COLS * 3 // 2] = 7  # nonzero = stable
    mask_path = write_raster(str(tmp_path / "mask.tif"), fine, mask)
    by_poly = stable_uncertainty([stack], polygons=stable, sample_size=5000, seed=9)
    by_mask = stable_uncertainty([stack], mask_raster=mask_path, sample_size=5000, seed=9)
    np.testing.assert_equal(by_mask, by_poly)  # NaN == NaN here
    other_seed = stable_uncertainty([stack], mask_raster=mask_path, sample_size=5000, seed=10)
    assert other_seed[0]["mean"] != by_mask[0]["mean"]


def test_units_companions_and_several_products(tmp_path):
    rng = np.random.default_rng(5)
    vx = rng.normal(0.01, 0.03, (3, ROWS, COLS)).astype(np.float32)  # m/day
    vy = rng.normal(-0.02, 0.03, (3, ROWS, COLS)).astype(np.float32)
    months = MONTHS[:3]
    px = write_stack(str(tmp_path / "s_vx.tif"), GRID, vx, months, "x", "vx")
    py = write_stack(str(tmp_path / "s_vy.tif"), GRID, vy, months, "x", "vy")
    pv = write_stack(str(tmp_path / "s_v.tif"), GRID, np.hypot(vx, vy), months, "x", "v")
    stable = stable_polygons(str(tmp_path))
    mask = rasterize_mask(stable, GRID)
    sources = open_sources([pv, pv], [px, px], [py, py], units="m/day")
    rows = stable_uncertainty(sources, polygons=stable, summary=False)
    assert len(rows) == 2 * 3 * 3
    for r in rows:
        arr = {"v": np.hypot(vx, vy), "vx": vx, "vy": vy}[r["quantity"]][r["band"] - 1]
        truth = describe(arr[mask].astype(np.float64) * 365.25)
        for key in ("n", "mean", "std", "median", "nmad", "e"):
            assert r[key] == pytest.approx(truth[key], rel=1e-9)
    # a vx stack alone: rows for vx only; vx + vy without a speed raster: the speed is derived
    assert {r["quantity"] for r in stable_uncertainty([px], polygons=stable)} == {"vx"}
    derived = open_velocity_source(None, px, py, units="m/day")
    assert derived.quantities == ["vx", "vy"]
    with pytest.raises(InputError, match="1 vx companion"):
        open_sources([pv, pv], [px])
    with pytest.raises(InputError, match="Unknown velocity units 'ft/s'"):
        open_sources([pv], units="ft/s")


def test_clear_errors(tmp_path):
    rng = np.random.default_rng(6)
    stack, _ = noisy_stack(str(tmp_path), rng)
    with pytest.raises(InputError, match="No stable ground given"):
        stable_uncertainty([stack])
    far = Grid.from_bounds(600000, 4000000, PIXEL, 10, 10, 32645)
    ring = np.array([[600000, 4000000], [600300, 4000000], [600300, 3999700], [600000, 3999700]])
    poly = write_polygons(str(tmp_path / "far.gpkg"), "far", far.crs_wkt, [(ring, {})], {})
    with pytest.raises(InputError, match="No stable-ground pixel falls on the grid of 'stack'"):
        stable_uncertainty([stack], polygons=poly)
    with pytest.raises(InputError, match="missing.tif' does not exist"):
        stable_uncertainty([str(tmp_path / "missing.tif")], polygons=poly)


@pytest.mark.shared_data
def test_kaskawulsh_matches_independent_numpy(shared_data):
    """The GLAFT Kaskawulsh map (m/day, -9999 NoData) over the rasterised bedrock polygons."""
    folder = os.path.join(shared_data, "kaskawulsh")
    vx_path = os.path.join(folder, "20180304-20180405_velo-raw_vx.tif")
    vy_path = os.path.join(folder, "20180304-20180405_velo-raw_vy.tif")
    bedrock = os.path.join(folder, "bedrock_V2.shp")
    threshold = 1.0 * 365.25  # 1 m/day
    rows = stable_uncertainty([open_velocity_source(None, vx_path, vy_path, units="m/day")],
                              polygons=bedrock, threshold=threshold)
    assert [r["quantity"] for r in rows] == ["vx", "vy"]

    # independently: GDAL arrays in float64, NoData by hand, plain numpy formulas
    def read(path):
        ds = gdal.Open(path)
        band = ds.GetRasterBand(1)
        a = band.ReadAsArray().astype(np.float64)
        a[a == band.GetNoDataValue()] = np.nan
        return a * 365.25

    from glacier_velocity.core.io.raster import raster_grid
    mask = rasterize_mask(bedrock, raster_grid(vx_path))
    vx, vy = read(vx_path)[mask], read(vy_path)[mask]
    ok = np.isfinite(vx) & np.isfinite(vy)
    vx, vy = vx[ok], vy[ok]
    bad = np.hypot(vx, vy) > threshold
    assert mask.sum() > 10000 and 0.01 < bad.mean() < 0.2
    for r, x in zip(rows, (vx[~bad], vy[~bad])):
        n = x.size
        mean, std = x.mean(), x.std(ddof=1)
        se = std / np.sqrt(n)
        med = np.median(x)
        truth = dict(n=n, mean=mean, std=std, se=se, e=np.sqrt(se ** 2 + mean ** 2), median=med,
                     nmad=1.4826 * np.median(np.abs(x - med)), incorrect_share=bad.mean())
        assert r["n_valid"] == ok.sum()
        for key, value in truth.items():
            assert r[key] == pytest.approx(value, rel=1e-6), key


def test_error_columns_check_the_per_pixel_sigma(tmp_path):
    """Stable ground of zero velocity with a per-pixel noise σ (2-30 m/yr) stated as an error
    stack (found by name) or as a pair product's error bands: mean_sigma is the stated σ's mean,
    within_196 95 +- 3 % for a component and the Rayleigh 85.4 % for a speed (measured 95.0-95.1
    % and 85.4 %); a σ twice too small reads 67.7 % (the check catches an uncalibrated error)."""
    from glacier_velocity.core.io.pixel_series import ERROR_SUFFIX
    rng = np.random.default_rng(4)
    sigma = np.broadcast_to(np.linspace(2, 30, COLS, dtype=np.float32), (ROWS, COLS))
    polygons = stable_polygons(str(tmp_path))
    ex = sigma * rng.standard_normal((ROWS, COLS))
    ey = sigma * rng.standard_normal((ROWS, COLS))
    pair = write_pair_product(str(tmp_path / "pair.tif"), GRID, ex, ey, np.ones_like(ex),
                              "2020-01-01", "2020-02-01", errors=(sigma, sigma))
    stack = write_stack(str(tmp_path / "v.tif"), GRID, np.stack([ex, ex]), MONTHS[:2],
                        quantity="vx")
    write_stack(str(tmp_path / f"v{ERROR_SUFFIX}.tif"), GRID, np.stack([sigma, sigma / 2]),
                MONTHS[:2], quantity="vx")
    rows = stable_uncertainty([pair, stack], polygons)
    by = {(r["product"], r["quantity"], r["band"]): r for r in rows}
    stable_mean = float(sigma[:, :COLS // 2].mean())
    for q in ("vx", "vy"):
        r = by[("pair", q, 1)]
        assert abs(r["mean_sigma"] - stable_mean) < 0.01 * stable_mean
        assert 0.92 <= r["within_196"] <= 0.98, (q, r["within_196"])
    assert 0.82 <= by[("pair", "v", 1)]["within_196"] <= 0.89
    assert 0.92 <= by[("v", "vx", 1)]["within_196"] <= 0.98
    assert by[("v", "vx", 2)]["within_196"] < 0.75  # σ stated half as large
    assert np.isfinite(by[("v", "vx", 0)]["within_196"])  # band mean row
    # without an error stack the columns are NaN
    lone = write_stack(str(tmp_path / "lone.tif"), GRID, np.stack([ex]), MONTHS[:1],
                       quantity="vx")
    (r,) = stable_uncertainty([lone], polygons)
    assert np.isnan(r["mean_sigma"]) and np.isnan(r["within_196"])
