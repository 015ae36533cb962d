"""Pixel trends: calibrated significance on simulated series, exact estimators (against scipy and
a direct implementation of Hirsch & Slack), annual means, FDR, rasters and the sample scene."""

import itertools

import numpy as np
import pytest
from osgeo import gdal
from scipy import stats

from glacier_velocity.core.io.dates import Interval
from glacier_velocity.core.errors import InputError
from glacier_velocity.core.io.grid import Grid
from glacier_velocity.core.io.products import StackFile, write_stack
from glacier_velocity.core.io.raster import read_band
from glacier_velocity.core.trends.pixel import (DEFAULT_METHOD, Calendar, bh_adjust, bh_threshold,
                                                pixel_trends, seasonal_mk_trend, series_trends,
                                                significance_mask, year_month_means)
from glacier_velocity.test.helpers import simulate_monthly_series

ALPHA = 0.05
# Noise: AR(1) phi = 0.6 with a marginal sd of 10 % of the mean (10 m/yr on a 100 m/yr glacier,
# a good monthly product); the +20 %/decade trend then moves the annual mean by a fifth of the
# monthly noise per year, so detection is neither trivial nor hopeless.
SIGMA = 0.10


def share(method, trend, seed, sigma=SIGMA, n=1000):
    values, intervals = simulate_monthly_series(n, sigma=sigma, trend=trend, seed=seed)
    return float(np.mean(series_trends(values, intervals, method, ALPHA)["p"] < ALPHA))


@pytest.mark.parametrize("method", [DEFAULT_METHOD, "sen_annual", "seasonal_mk"])
def test_calibrated_on_trend_free_series(method):
    """1,000 trend-free series, 30 % seasonal cycle, AR(1) phi 0.6: 2-8 % declared significant."""
    assert 0.02 <= share(method, 0.0, seed=11) <= 0.08


def test_default_detects_a_20_percent_per_decade_trend():
    assert share(DEFAULT_METHOD, 0.2, seed=12) >= 0.70


def test_plain_monthly_ols_is_miscalibrated():
    """The baseline the methods replace: liberal when the AR(1) noise dominates the seasonal
    cycle, while the default keeps its level on the same series."""
    assert share("ols_monthly", 0.0, seed=13, sigma=0.2) > 0.12
    assert share(DEFAULT_METHOD, 0.0, seed=13, sigma=0.2) < 0.08


def test_estimators_match_scipy():
    """Complete monthly series: annual means are plain means, so OLS and Theil-Sen on them must
    equal scipy's linregress and theilslopes, and the MK p its normal approximation."""
    values, intervals = simulate_monthly_series(5, sigma=0.2, trend=0.3, seed=3)
    cal = Calendar(intervals)
    ols = series_trends(values, intervals, "ols_annual")
    sen = series_trends(values, intervals, "sen_annual")
    years = cal.cell_times.reshape(-1, 12).mean(1)
    for k in range(values.shape[1]):
        annual = values[:, k].astype(float).reshape(-1, 12).mean(1)
        lr = stats.linregress(years, annual)
        half = stats.t.ppf(1 - ALPHA / 2, len(years) - 2) * lr.stderr
        assert ols["trend"][k] == pytest.approx(10 * lr.slope, rel=1e-6)
        assert ols["p"][k] == pytest.approx(lr.pvalue, rel=1e-6)
        assert ols["ci_low"][k] == pytest.approx(10 * (lr.slope - half), rel=1e-6)
        ts = stats.theilslopes(annual, years, alpha=1 - ALPHA)
        assert sen["trend"][k] == pytest.approx(10 * ts[0], rel=1e-6)
        assert (sen["ci_low"][k], sen["ci_high"][k]) == pytest.approx(
            (10 * ts[2], 10 * ts[3]), rel=1e-6)
        s = sum(np.sign(annual[j] - annual[i]) for i, j in itertools.combinations(range(10), 2))
        z = (s - np.sign(s)) / np.sqrt(10 * 9 * 25 / 18)
        assert sen["p"][k] == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-9)
        assert ols["sen"][k] == sen["trend"][k] and sen["ols"][k] == ols["trend"][k]


def reference_csmk(x):
    """Hirsch & Slack (1984) correlated seasonal MK, a direct loop over seasons and years.

    ``x``: (years, seasons) with NaN missing. Returns (S, Var(S))."""
    n, g = x.shape
    sgn = np.zeros((n, n, g))
    for i in range(n):
        for j in range(n):
            d = x[j] - x[i]
            sgn[i, j] = np.where(np.isfinite(d), np.sign(d), 0)
    n_g = np.isfinite(x).sum(0)
    ranks = (n_g + 1 + sgn.sum(0)) / 2  # R_jg: sum over i of sgn(x_jg - x_ig)
    s, var = 0.0, 0.0
    for a in range(g):
        s += sum(sgn[i, j, a] for i in range(n) for j in range(i + 1, n))
        var += n_g[a] * (n_g[a] - 1) * (2 * n_g[a] + 5) / 18
        for b in range(g):
            if a != b:
                k = sum(sgn[i, j, a] * sgn[i, j, b] for i in range(n) for j in range(i + 1, n))
                var += (k + 4 * np.sum(ranks[:, a] * ranks[:, b]) - n * (n_g[a] + 1) * (
                    n_g[b] + 1)) / 3
    return s, var


def test_correlated_seasonal_mann_kendall_matches_direct_formula():
    values, intervals = simulate_monthly_series(3, years=8, sigma=0.2, trend=0.2, seed=5)
    values[np.random.default_rng(0).random(values.shape) < 0.2] = np.nan  # gaps
    cal = Calendar(intervals)
    ym = year_month_means(values, cal)
    slope, lo, hi, p = seasonal_mk_trend(ym, cal, ALPHA)
    for k in range(3):
        s, var = reference_csmk(ym[:, :, k])
        z = (s - np.sign(s)) / np.sqrt(var)
        assert p[k] == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-9)
        x = ym[:, :, k]
        pairs = [(x[j, m] - x[i, m]) / (cal.cell_times[12 * j + m] - cal.cell_times[12 * i + m])
                 for m in range(12) for i in range(8) for j in range(i + 1, 8)]
        assert slope[k] == pytest.approx(np.nanmedian(pairs))
        assert lo[k] <= slope[k] <= hi[k]


def test_annual_means_remove_the_seasonal_cycle_before_averaging():
    """A noise-free series missing its winters: the deseasonalised annual means give the exact
    trend; plain means of the observed months would mix the cycle with the gaps."""
    values, intervals = simulate_monthly_series(2, sigma=0.0, trend=0.25, seed=0)
    values[[i for i, iv in enumerate(intervals) if iv.start.month in (11, 12, 1, 2)
            and iv.start.year % 3 == 0], 0] = np.nan
    res = series_trends(values, intervals, "ols_annual")
    assert res["trend"] == pytest.approx([25.0, 25.0], rel=2e-3)
    assert res["mean"] == pytest.approx([100.0, 100.0], rel=5e-3)


def test_valid_years_and_months():
    values, intervals = simulate_monthly_series(3, sigma=0.1, seed=1)
    values[:72, 0] = np.nan  # 4 years left: below MIN_YEARS = 5
    for y in range(10):  # column 1: every year has only 3 valid months, so no year counts
        values[12 * y + 3:12 * y + 12, 1] = np.nan
    res = series_trends(values, intervals, min_years=5, min_months=4)
    assert list(res["n_years"]) == [4, 0, 10]
    assert np.isnan(res["trend"][:2]).all() and np.isfinite(res["trend"][2])
    assert np.isfinite(series_trends(values, intervals, min_years=4)["p"][0])
    with pytest.raises(InputError, match="MIN_YEARS"):
        series_trends(values, intervals, min_years=2)
    with pytest.raises(InputError, match="METHOD"):
        series_trends(values, intervals, method="magic")


def test_sub_monthly_bands_give_the_same_annual_trend():
    """Two bands per month (half-month intervals) are averaged into their month first."""
    values, intervals = simulate_monthly_series(4, sigma=0.1, trend=0.2, seed=2)
    halves, doubled = [], []
    for iv, row in zip(intervals, values):
        mid = iv.start.replace(day=15)
        halves += [Interval(iv.start, mid), Interval(mid.replace(day=16), iv.end)]
        doubled += [row, row]
    a = series_trends(values, intervals)
    b = series_trends(np.array(doubled), halves)
    np.testing.assert_allclose(b["trend"], a["trend"], rtol=2e-3)


def test_benjamini_hochberg():
    q = bh_adjust([0.01, 0.04, 0.03, 0.005, np.nan])
    np.testing.assert_allclose(q[:4], [0.02, 0.04, 0.04, 0.02])
    assert np.isnan(q[4])
    # 9,000 null p-values and 1,000 strong signals: few false discoveries
    rng = np.random.default_rng(0)
    p = np.concatenate([rng.random(9000), stats.norm.sf(rng.normal(4.5, 1, 1000)) * 2])
    mask, threshold = significance_mask(p, ALPHA)
    false = mask[:9000].sum() / max(mask.sum(), 1)
    assert false < ALPHA and mask[9000:].mean() > 0.8
    assert threshold == bh_threshold(p, ALPHA)
    np.testing.assert_array_equal(mask == 1, bh_adjust(p) <= ALPHA)
    assert bh_threshold(np.array([0.5, 0.9]), ALPHA) == -np.inf


def test_pixel_trend_rasters(tmp_path):
    """A stack whose left half has a +30 %/decade trend, right half none, a corner without data."""
    values, intervals = simulate_monthly_series(40 * 30, first_year=2012, sigma=0.1, seed=4)
    stack = values.reshape(-1, 40, 30).copy()
    t = np.array([iv.decimal_year for iv in intervals])
    stack[:, :, :15] += (100 * 0.3 * (t - t.mean()) / 10)[:, None, None].astype(np.float32)
    stack[:, :5, -5:] = np.nan
    grid = Grid.from_bounds(500000, 4000000, 30, 40, 30, 32645)
    path = str(tmp_path / "stack.tif")
    write_stack(path, grid, stack, intervals, "test")
    out = {k: str(tmp_path / f"{k}.tif") for k in ("trend", "p", "significant", "ci_low",
                                                   "ci_high", "sen", "n_years")}
    summary = pixel_trends(path, out)
    trend, sig = read_band(out["trend"]), read_band(out["significant"])
    lo, hi = read_band(out["ci_low"]), read_band(out["ci_high"])
    assert summary["computable"] == 40 * 30 - 25
    assert np.isnan(trend[:5, -5:]).all() and np.isnan(sig[:5, -5:]).all()
    assert np.nanmean(trend[:, :15]) == pytest.approx(30.0, abs=1.0)
    assert np.nanmean(trend[:, 15:]) == pytest.approx(0.0, abs=1.0)
    truth = np.where(np.arange(30) < 15, 30.0, 0.0)[None, :]
    coverage = np.mean(((lo <= truth) & (truth <= hi))[np.isfinite(lo)])
    assert 0.90 <= coverage <= 0.99
    assert np.nanmean(sig[:, :15]) > 0.9
    assert np.nansum(sig[:, 15:]) / np.nansum(sig) < 0.05  # false discoveries under control
    assert set(np.unique(sig[np.isfinite(sig)])) <= {0.0, 1.0}
    assert np.nanmax(read_band(out["n_years"])) == 10
    with pytest.raises(InputError, match="also an input"):
        pixel_trends(path, {"trend": path})
    # a striped (untiled) copy is read in row blocks; small budgets split it: same result
    striped = str(tmp_path / "striped.tif")
    gdal.Translate(striped, path, creationOptions=["TILED=NO"])
    with StackFile(striped) as stack:
        windows = stack.windows(budget_mb=0.2)
    assert len(windows) > 1 and sum(w[2] for w in windows) == 40
    pixel_trends(striped, {"trend": str(tmp_path / "t2.tif")})
    np.testing.assert_array_equal(read_band(str(tmp_path / "t2.tif")), trend)


def test_scene_pixel_trends(scene_tiny, tmp_path):
    """Sentinel-2-like stack of the sample scene (noise, gaps, outliers) against the true trend."""
    _, manifest, model = scene_tiny
    out = {k: str(tmp_path / f"{k}.tif") for k in ("trend", "ci_low", "ci_high", "significant")}
    pixel_trends(manifest["paths"]["sentinel2_v"], out)
    truth = read_band(manifest["paths"]["true_trend"])
    trend = read_band(out["trend"])
    on = model.labels(model.grid()) > 0
    assert np.sqrt(np.nanmean((trend - truth)[on] ** 2)) < 6.0  # m/yr per decade
    covered = (read_band(out["ci_low"]) <= truth) & (truth <= read_band(out["ci_high"]))
    assert 0.92 <= covered[on].mean() <= 0.98
    sig = read_band(out["significant"])
    assert np.nansum(sig[truth == 0]) / np.nansum(sig) < 0.05  # realised false discoveries


def test_stack_opened_once_per_run(tmp_path, monkeypatch):
    """Window by window over a stack (4 windows here), each run opens the file once."""
    from glacier_velocity.core.io import products
    from glacier_velocity.core.trends.glaciers import monthly_trend_table, seasonal_cycle_table
    from glacier_velocity.core.trends.seasonal import monthly_trend_raster, seasonal_cycle_rasters

    values, intervals = simulate_monthly_series(64 * 64, years=4, sigma=0.1, seed=6)
    path = str(tmp_path / "stack.tif")
    write_stack(path, Grid.from_bounds(500000, 4000000, 30, 64, 64, 32645),
                values.reshape(-1, 64, 64), intervals, "test")
    opened = []
    real = products.open_raster
    monkeypatch.setattr(products, "open_raster", lambda p, *a: opened.append(p) or real(p, *a))
    monkeypatch.setattr(products.StackFile, "windows",
                        lambda self, budget_mb=128: [(r, c, 32, 32) for r in (0, 32) for c in (0, 32)])
    runs = {"pixel_trends": lambda: pixel_trends(path, {"trend": str(tmp_path / "t.tif")},
                                                 min_years=3),
            "monthly_trend_raster": lambda: monthly_trend_raster(path, str(tmp_path / "m.tif"),
                                                                 min_years=3),
            "seasonal_cycle_rasters": lambda: seasonal_cycle_rasters(path, str(tmp_path / "s.tif")),
            "monthly_trend_table": lambda: monthly_trend_table(path, min_years=3),
            "seasonal_cycle_table": lambda: seasonal_cycle_table(path)}
    for name, run in runs.items():
        opened.clear()
        run()
        assert opened == [path], name
