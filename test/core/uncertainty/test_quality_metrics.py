"""Coverage, smoothness and agreement with a reference, against constructed truth."""

import datetime as dt
import os

import numpy as np
import pytest

from glacier_velocity.core.io.dates import Interval
from glacier_velocity.core.errors import InputError
from glacier_velocity.core.io.grid import Grid
from glacier_velocity.core.io.products import write_stack
from glacier_velocity.core.uncertainty.quality_metrics import (MEDIAN_RESIDUAL_FACTOR, coverage,
                                                   nan_median_filter, reference_agreement,
                                                   smoothness)
from glacier_velocity.core.io.raster import read_bands
from glacier_velocity.core.io.vector import write_polygons

ROWS, COLS, PIXEL = 120, 150, 30.0
GRID = Grid.from_bounds(500000, 4000000, PIXEL, ROWS, COLS, 32645)
MONTHS = [Interval.month(2020, m) for m in range(1, 13)]


def rectangle(folder, r0, r1, c0, c1, grid=GRID, name="glacier"):
    """A polygon layer covering pixel rows r0..r1-1 and columns c0..c1-1 of ``grid``."""
    x0, y0, p = grid.transform[0], grid.transform[3], grid.dx
    ring = np.array([[x0 + c0 * p, y0 - r0 * p], [x0 + c1 * p, y0 - r0 * p],
                     [x0 + c1 * p, y0 - r1 * p], [x0 + c0 * p, y0 - r1 * p]])
    return write_polygons(os.path.join(folder, f"{name}.gpkg"), name, grid.crs_wkt, [(ring, {})], {})


def test_coverage_counts_valid_pixels_and_months(tmp_path):
    glacier = rectangle(str(tmp_path), 20, 100, 30, 130)  # 80 x 100 = 8000 pixels
    rng = np.random.default_rng(0)
    gappy = rng.normal(100, 5, (12, ROWS, COLS)).astype(np.float32)
    inside = np.zeros((ROWS, COLS), bool)
    inside[20:100, 30:130] = True
    for k in range(12):  # band k misses its first 5·k glacier rows: ratio 1 - 5k/80
        gappy[k, 20:20 + 5 * k, 30:130] = np.nan
    gappy[:, :20] = np.nan  # gaps outside the glacier do not count
    filled = np.where(np.isnan(gappy), 90.0, gappy).astype(np.float32)
    p1 = write_stack(str(tmp_path / "gappy.tif"), GRID, gappy, MONTHS, "landsat")
    p2 = write_stack(str(tmp_path / "filled.tif"), GRID, filled, MONTHS, "fused")
    out = str(tmp_path / "months.tif")
    rows = coverage([p1, p2], glacier, out)
    gappy_rows = [r for r in rows if r["product"] == "gappy" and r["band"] > 0]
    for k, r in enumerate(gappy_rows):
        assert r["mask_pixels"] == 8000 and r["interval"] == str(MONTHS[k])
        assert r["valid_pixels"] == 8000 - 500 * k
        assert r["valid_ratio"] == pytest.approx(1 - 5 * k / 80)
    total = [r for r in rows if r["band"] == 0]
    assert total[0]["valid_ratio"] == pytest.approx(np.mean([1 - 5 * k / 80 for k in range(12)]))
    assert total[1]["valid_ratio"] == 1.0
    months = read_bands(out)
    expect = np.isfinite(gappy).sum(axis=0).astype(np.float32)
    np.testing.assert_array_equal(months[0][inside], expect[inside])
    assert np.isnan(months[0][~inside]).all() and (months[1][inside] == 12).all()


def test_nan_median_filter_matches_numpy():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(40, 50)).astype(np.float32)
    a[rng.random(a.shape) < 0.3] = np.nan
    for size in (3, 5):
        med = nan_median_filter(a, size)
        h = size // 2
        padded = np.pad(a, h, constant_values=np.nan)
        for r, c in [(0, 0), (10, 10), (39, 49), (20, 3), (5, 30)]:
            win = padded[r:r + size, c:c + size]
            if np.isfinite(win).sum() >= (size * size + 1) // 2:
                assert med[r, c] == pytest.approx(np.nanmedian(win))
            else:
                assert np.isnan(med[r, c])


@pytest.mark.parametrize("window", [3, 5])
def test_smoothness_separates_noise_from_gradient(tmp_path, window):
    """Spatial variance grows with the real gradient; the median-residual noise does not."""
    glacier = rectangle(str(tmp_path), 10, 110, 10, 140)
    rng = np.random.default_rng(2)
    sigma = 6.0
    rr, cc = np.mgrid[0:ROWS, 0:COLS]
    stacks = []
    for name, slope, outliers in (("flat", 0.0, 0), ("steep", 4.0, 0), ("steep_outliers", 4.0, 0.02)):
        clean = 50 + slope * cc + 0.5 * slope * rr  # a linear ramp: its local median is itself
        noisy = clean + rng.normal(0, sigma, (3, ROWS, COLS))
        noisy[rng.random(noisy.shape) < outliers] *= 2.5  # gross errors in 2 % of the pixels
        noisy[:, 40:50, 40:60] = np.nan
        stacks.append(write_stack(str(tmp_path / f"{name}.tif"), GRID, noisy.astype(np.float32),
                                  MONTHS[:3], name))
    stacks.append(write_stack(str(tmp_path / "ramp.tif"), GRID,
                              np.repeat((50 + 4.0 * cc + 2.0 * rr)[None], 3, 0).astype(np.float32),
                              MONTHS[:3], "ramp"))
    rows = {r["product"]: r for r in smoothness(stacks, glacier, window) if r["band"] == 0}
    inside = np.zeros((ROWS, COLS), bool)
    inside[10:110, 10:140] = True
    inside[40:50, 40:60] = False
    ramp_var = np.var((4.0 * cc + 2.0 * rr)[inside])
    assert rows["flat"]["spatial_var"] == pytest.approx(sigma ** 2, rel=0.05)
    assert rows["steep"]["spatial_var"] == pytest.approx(ramp_var + sigma ** 2, rel=0.05)
    assert rows["steep"]["spatial_var"] > 100 * rows["flat"]["spatial_var"]
    for name in ("flat", "steep"):
        assert rows[name]["noise_std"] == pytest.approx(sigma, rel=0.05)
        assert rows[name]["residual_var"] == pytest.approx(
            MEDIAN_RESIDUAL_FACTOR[window] * sigma ** 2, rel=0.08)
    for name in ("flat", "steep", "steep_outliers"):
        assert rows[name]["noise_nmad"] == pytest.approx(sigma, rel=0.06)
    assert rows["steep_outliers"]["noise_std"] > 3 * sigma  # the variance is not robust
    # a pure ramp leaves residuals only where the window is cut by the mask edge or the gap
    assert rows["ramp"]["residual_var"] < 1e-4 * rows["ramp"]["spatial_var"]
    assert rows["flat"]["n"] == 3 * inside.sum()


def test_agreement_with_reference_matched_by_interval(tmp_path):
    """A UAV-like reference on a finer grid, summer intervals, is matched with calendar months."""
    rng = np.random.default_rng(3)
    rr, cc = np.mgrid[0:ROWS, 0:COLS]
    product = np.stack([100 + 10 * k + 0.5 * cc + 0.2 * rr for k in range(12)]).astype(np.float32)
    product[6, 50, 60] = np.nan  # a gap inside the footprint: not compared
    stack = write_stack(str(tmp_path / "landsat_v.tif"), GRID, product, MONTHS, "landsat")
    # reference: 10 m grid over product rows 40..60, cols 50..80
    fine = Grid.from_bounds(GRID.transform[0] + 50 * PIXEL, GRID.transform[3] - 40 * PIXEL,
                            PIXEL / 3, 60, 90, 32645)
    fr, fc = np.mgrid[0:60, 0:90]
    under = product[:, 40 + fr // 3, 50 + fc // 3]  # the product pixel under each reference pixel
    survey = [Interval(dt.date(2020, 6, 28), dt.date(2020, 7, 30)),
              Interval(dt.date(2020, 8, 3), dt.date(2020, 9, 2)),
              Interval(dt.date(2021, 7, 1), dt.date(2021, 7, 31))]
    bias = 2.0
    ref = np.stack([under[6] - bias + rng.normal(0, 0.5, fr.shape),
                    under[7] - bias + rng.normal(0, 0.5, fr.shape),
                    under[6]]).astype(np.float32)
    ref[:, :5] = np.nan
    uav = write_stack(str(tmp_path / "uav_v.tif"), fine, ref, survey, "uav")
    rows = reference_agreement([stack], uav)
    assert [(r["ref_band"], r["band"]) for r in rows] == [(1, 7), (2, 8), (3, 0), (0, 0)]
    july, aug, unmatched, pooled = rows
    assert july["interval"] == "2020-07-01/2020-07-31" and july["overlap_days"] == 30
    assert july["n"] == 55 * 90 - 9 and aug["n"] == 55 * 90  # the gap is 3x3 reference pixels
    for r in (july, aug, pooled):
        assert r["bias"] == pytest.approx(bias, abs=0.05)
        assert r["nmad"] == pytest.approx(0.5, rel=0.1)
        assert r["rmse"] == pytest.approx(np.hypot(bias, 0.5), rel=0.02)
        assert r["e"] == pytest.approx(np.hypot(r["bias"], r["std"] / np.sqrt(r["n"])))
    assert unmatched["n"] == 0 and np.isnan(unmatched["bias"])
    assert pooled["n"] == july["n"] + aug["n"]
    with pytest.raises(InputError, match="has no date intervals"):
        from glacier_velocity.core.io.raster import write_raster
        plain = write_raster(str(tmp_path / "plain.tif"), GRID, product[0])
        reference_agreement([stack], plain)


def test_agreement_checks_the_products_sigma(tmp_path):
    """A product = reference + N(0, σ) with σ (3-25 m/yr) stated in its error stack (given):
    95 +- 3 % of the reference within ±1.96σ, band by band and pooled (measured 94.9, 95.4,
    95.1 %)."""
    from glacier_velocity.core.io.dates import Interval
    from glacier_velocity.core.io.products import write_stack
    from glacier_velocity.core.uncertainty.stable_ground import open_velocity_source
    rng = np.random.default_rng(9)
    grid = Grid.from_bounds(500000, 4000000, PIXEL, 80, 80, 32645)
    months = [Interval.month(2021, m) for m in (6, 7)]
    truth = np.stack([np.full((80, 80), 150.0), np.full((80, 80), 220.0)]).astype(np.float32)
    sigma = np.broadcast_to(np.linspace(3, 25, 80, dtype=np.float32), (2, 80, 80))
    ref = write_stack(str(tmp_path / "uav.tif"), grid, truth, months, "uav")
    product = write_stack(str(tmp_path / "fused.tif"), grid,
                          truth + sigma * rng.standard_normal(truth.shape), months, "fused")
    errors = write_stack(str(tmp_path / "fused_sigma.tif"), grid, sigma, months, "error")
    rows = reference_agreement([open_velocity_source(product, error=errors)], ref)
    assert len(rows) == 3
    for r in rows:
        assert 0.92 <= r["within_196"] <= 0.98, r
        assert abs(r["mean_sigma"] - 14.0) < 0.1
