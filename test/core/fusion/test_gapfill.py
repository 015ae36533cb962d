"""Sentinel-1-guided gap filling: box sums, guards, errors-in-variables, accuracy on the scene."""

import numpy as np
import pytest
from osgeo import gdal
from scipy import ndimage

from glacier_velocity.core.io.dates import Interval
from glacier_velocity.core.errors import InputError
from glacier_velocity.core.arrays.smoothing import nan_gaussian
from glacier_velocity.core.fusion.gapfill import (CLIP, fill_band, gapfill_stack, local_coefficient,
                                                  neighbour_estimate)
from glacier_velocity.core.io.grid import Grid
from glacier_velocity.core.io.products import read_stack, write_stack
from glacier_velocity.core.io.raster import warp_to_grid


def test_box_sums_match_brute_force():
    rng = np.random.default_rng(0)
    f = rng.uniform(20, 80, (17, 23))
    s = f * rng.uniform(0.8, 1.2, f.shape)
    f[rng.random(f.shape) < 0.3] = np.nan
    s[rng.random(f.shape) < 0.1] = np.nan
    window = 6
    for estimator in ("ls", "ratio"):
        a = local_coefficient(f, s, window, 0.0, estimator, min_count=1, clip=(0, np.inf))
        brute = np.full(f.shape, np.nan)
        for i in range(f.shape[0]):  # window rows i - W//2 .. i + (W-1)//2, clipped at edges
            for j in range(f.shape[1]):
                sl = (slice(max(i - window // 2, 0), i + (window - 1) // 2 + 1),
                      slice(max(j - window // 2, 0), j + (window - 1) // 2 + 1))
                ff, ss = f[sl], s[sl]
                ok = np.isfinite(ff) & np.isfinite(ss)
                if ok.any():
                    brute[i, j] = (np.sum(ff[ok] * ss[ok]) / np.sum(ss[ok] ** 2) if estimator == "ls"
                                   else np.sum(ff[ok]) / np.sum(ss[ok]))
        np.testing.assert_allclose(a, brute, rtol=1e-5)


def test_nan_gaussian_is_normalised_convolution():
    rng = np.random.default_rng(1)
    field = rng.normal(size=(40, 40))
    np.testing.assert_allclose(nan_gaussian(field, 2.0)[10:30, 10:30],
                               ndimage.gaussian_filter(field, 2.0, truncate=4.0)[10:30, 10:30],
                               atol=1e-5)
    flat = np.full((40, 40), 3.0)
    flat[rng.random(flat.shape) < 0.5] = np.nan
    flat[:, 30:] = np.nan
    out = nan_gaussian(flat, 2.0)
    np.testing.assert_allclose(out[:, :30], 3.0, rtol=1e-6)  # holes do not drag the mean down
    assert np.isnan(out[:, 39]).all()  # no value within the Gaussian's support (4 sigma)


def test_least_squares_coefficient_is_attenuated_by_s1_noise():
    """Errors in variables: with S = T + e, ΣFS/ΣS² → T²/(T² + σ²); ΣF/ΣS stays ≈ 1."""
    rng = np.random.default_rng(2)
    truth, sigma = 30.0, 18.0  # a slow glacier margin against Sentinel-1's noise (m/yr)
    fused = truth + rng.normal(0, 2, (200, 200))
    aux = truth + rng.normal(0, sigma, (200, 200))
    ls = local_coefficient(fused, aux, 10, 2.0, "ls")
    ratio = local_coefficient(fused, aux, 10, 2.0, "ratio")
    expected = truth ** 2 / (truth ** 2 + sigma ** 2)  # 0.735
    assert np.nanmean(ls) == pytest.approx(expected, abs=0.02)
    assert np.nanmean(ratio) == pytest.approx(1.0, abs=0.02)


def test_guards_against_coefficient_explosion():
    rng = np.random.default_rng(3)
    fused = rng.uniform(5, 10, (60, 60))
    aux = np.abs(rng.normal(0, 0.05, (60, 60)))  # S1 near zero (stable ground)
    aux[:, 30:] = rng.uniform(1.2, 1.5, (60, 30))  # just above the guard: a = F/S ~ 5..8 → clipped
    fused[::7, :] = np.nan
    fused[40:, :] = np.nan
    fused[38, 5] = 7.0  # a lone fused pixel: too few valid pixels in its windows
    for estimator in ("ls", "ratio"):
        out, a, stats, _ = fill_band(fused, aux, 10, 2.0, estimator)
        assert np.all(np.isnan(a[:30, :20]))  # S1 ~ 0: no coefficient, gaps stay empty
        assert np.nanmax(a) <= CLIP[1] and np.nanmin(a) >= CLIP[0]
        assert np.isnan(out[55:, :20]).all()  # far from any coefficient: stays NaN
        gaps = np.isnan(fused)
        assert stats["filled"] + stats["empty"] == gaps.sum()
        assert stats["filled"] == int((gaps & np.isfinite(out)).sum()) > 0
    # the lone pixel alone makes no coefficient
    lone = np.full((60, 60), np.nan)
    lone[30, 30] = 50.0
    assert np.isnan(local_coefficient(lone, np.full((60, 60), 50.0))).all()



def test_signed_components_are_filled():
    """A vx stack flowing west (negative values) is filled like a speed: the guard is on |mean S|."""
    rng = np.random.default_rng(4)
    truth = np.full((60, 60), -40.0)
    aux = 1.2 * truth + rng.normal(0, 5, truth.shape)  # S1 overestimates by 20 %
    fused = truth.copy()
    fused[20:30, 20:30] = np.nan
    for estimator in ("ls", "ratio"):
        out, a, stats, _ = fill_band(fused, aux, 10, 2.0, estimator)
        assert stats["filled"] == 100 and stats["empty"] == 0
        assert np.mean(out[20:30, 20:30]) == pytest.approx(-40.0, abs=2.0)

def test_gapfill_stack_other_grid_and_errors(tmp_path):
    grid = Grid.from_bounds(500000, 4000000, 30, 20, 20, 32645)
    months = [Interval.month(2020, 1), Interval.month(2020, 2)]
    rng = np.random.default_rng(4)
    truth = rng.uniform(40, 60, (2, 20, 20)).astype(np.float32)
    fused = truth.copy()
    fused[:, 5:9, 5:9] = np.nan
    fpath = write_stack(str(tmp_path / "fused.tif"), grid, fused, months, "fused")
    s30 = write_stack(str(tmp_path / "s30.tif"), grid, truth[:1] * 1.25, months[:1], "sentinel1")
    fine = Grid.from_bounds(500000, 4000000, 10, 60, 60, 32645)
    s10 = write_stack(str(tmp_path / "s10.tif"), fine, warp_to_grid(s30, fine), months[:1],
                      "sentinel1")
    out = str(tmp_path / "filled.tif")
    summary = gapfill_stack(fpath, s10, out, window=10, sigma=2.0)
    info, filled = read_stack(out)
    assert info.intervals == months
    np.testing.assert_allclose(filled[0], truth[0], rtol=1e-5)  # a = 1/1.25 everywhere
    assert np.isnan(filled[1, 5:9, 5:9]).all()  # February has no S1 band: left as it was
    assert summary[0]["filled_share"] == pytest.approx(16 / 400) and summary[0]["empty"] == 0
    assert summary[1]["filled"] == 0 and summary[1]["empty_share"] == pytest.approx(16 / 400)
    ds = gdal.Open(out)
    assert ds.GetRasterBand(1).GetMetadataItem("FILLED_SHARE") == "0.0400"
    assert ds.GetRasterBand(2).GetMetadataItem("EMPTY_SHARE") == "0.0400"
    with pytest.raises(InputError, match="Unknown gap-filling estimator"):
        gapfill_stack(fpath, s30, str(tmp_path / "x.tif"), estimator="median")
    with pytest.raises(InputError, match="also an input"):
        gapfill_stack(fpath, s30, fpath)


@pytest.fixture(scope="module")
def scene_fills(scene_tiny, fused_tiny, tmp_path_factory):
    """Fused tiny scene, gap-filled with the window coefficient alone (each estimator) and
    combined with the temporal one, without the neighbouring months (the Sentinel-1 fills
    alone), and the default (combined, neighbouring months): {'ratio' | 'ls' | 'combined' |
    'neighbours': (fused, filled, summary, error)}."""
    _, manifest, _ = scene_tiny
    p = manifest["paths"]
    fused, fused_error = fused_tiny[0], fused_tiny[3]
    folder = tmp_path_factory.mktemp("gapfill")
    out = {}
    for key, estimator, coefficient in (("ratio", "ratio", "spatial"), ("ls", "ls", "spatial"),
                                        ("combined", "ratio", "combined"),
                                        ("neighbours", "ratio", "combined")):
        path = str(folder / f"filled_{key}.tif")
        error = str(folder / f"filled_{key}_error.tif")
        summary = gapfill_stack(fused, p["sentinel1_v"], path, 10, 2.0, estimator,
                                coefficient=coefficient, fused_error=fused_error,
                                error_output=error, neighbours=key == "neighbours")
        out[key] = (read_stack(fused)[1], read_stack(path)[1], summary, read_stack(error)[1])
    return out


def test_scene_gapfill_coverage_and_accuracy(scene_tiny, scene_fills):
    _, manifest, model = scene_tiny
    p = manifest["paths"]
    info, truth = read_stack(p["truth_v"])
    _, s1 = read_stack(p["sentinel1_v"])
    glacier = np.broadcast_to(model.labels(info.grid) > 0, truth.shape)
    fused, filled, summary, _ = scene_fills["ratio"]
    before = np.isfinite(fused)[glacier].mean()
    after = np.isfinite(filled)[glacier].mean()
    assert before < 0.9 and after >= 0.97  # the paper: 97.9 % and 99.2 %
    # fills made from a Sentinel-1 value of the pixel's own
    new = glacier & np.isnan(fused) & np.isfinite(filled) & np.isfinite(s1)
    rmse_fill = np.sqrt(np.mean((filled[new] - truth[new]) ** 2))
    rmse_s1 = np.sqrt(np.mean((s1[new] - truth[new]) ** 2))
    assert rmse_fill <= 1.15 * rmse_s1
    # no explosion: fills stay within the clip range of the S1 values they come from
    ratio = filled[new] / s1[new]
    assert ratio.min() >= CLIP[0] - 1e-6 and ratio.max() <= CLIP[1] + 1e-6
    assert np.mean((ratio < 0.25) | (ratio > 4.0)) < 0.005
    np.testing.assert_array_equal([s["filled"] for s in summary],
                                  (np.isnan(fused) & np.isfinite(filled)).sum(axis=(1, 2)))


def test_scene_ratio_estimator_is_less_biased_than_least_squares(scene_tiny, scene_fills):
    """The errors-in-variables attenuation on the scene: on glacier fills (true speed > 50 m/yr)
    the least-squares fills come out lower than the ratio's, and further from the truth."""
    _, manifest, model = scene_tiny
    info, truth = read_stack(manifest["paths"]["truth_v"])
    glacier = np.broadcast_to(model.labels(info.grid) > 0, truth.shape)
    bias = {}
    for key, (fused, filled, _, _) in scene_fills.items():
        if key == "neighbours":
            continue
        new = glacier & np.isnan(fused) & np.isfinite(filled) & (truth > 50)
        bias[key] = float(np.mean(filled[new] - truth[new]))
    assert bias["ls"] < bias["ratio"] and abs(bias["ratio"]) < abs(bias["ls"])
    # the pixel's own (temporal) coefficient removes the margin-learnt low bias of the window
    # coefficient: -5.0 m/yr (window, ratio) against +1.1 m/yr (combined)
    assert abs(bias["combined"]) < 0.4 * abs(bias["ratio"])


def test_scene_combined_fills_beat_sentinel1_and_their_error_is_calibrated(scene_tiny,
                                                                          scene_fills):
    """The combined coefficient's fills are closer to the truth than the Sentinel-1 values they
    are made from (the window coefficient's are not), and the truth lies within ±1.96 σ of the
    per-pixel error for about 95 % of the fills and of all glacier pixel-months."""
    from glacier_velocity.core.sampledata.assessment import fills, sigma_coverage

    _, manifest, model = scene_tiny
    info, truth = read_stack(manifest["paths"]["truth_v"])
    _, s1 = read_stack(manifest["paths"]["sentinel1_v"])
    glacier = model.labels(info.grid) > 0
    fused, filled, _, error = scene_fills["combined"]
    f = fills(fused, filled, truth, s1, glacier)
    assert f["rmse"] < 0.9 * f["aux_rmse"] and abs(f["bias"]) < 3.5, f  # 16.4 vs 20.3, +2.8
    spatial = fills(*scene_fills["ratio"][:2], truth, s1, glacier)
    assert f["rmse"] < spatial["rmse"]
    new = np.broadcast_to(glacier, truth.shape) & np.isnan(fused)
    share_fills, n = sigma_coverage(filled, error, truth, new)
    assert n > 5000 and 0.92 <= share_fills <= 0.99, share_fills
    share_all, _ = sigma_coverage(filled, error, truth, glacier)
    assert 0.92 <= share_all <= 0.99, share_all


def test_neighbouring_months_estimate_and_its_error():
    """N = (F_prev + F_next) / 2 with variance (σp² + σn²)/4 + κ N²; with the fused errors, a
    gap between two fused months takes the inverse-variance mean of a·S and N, and N alone
    where no a·S exists (here: no Sentinel-1 value)."""
    prev, nxt = np.array([[40.0, np.nan]]), np.array([[60.0, 60.0]])
    est, var = neighbour_estimate(prev, nxt, np.full((1, 2), 4.0), np.full((1, 2), 2.0), 0.01)
    assert est[0, 0] == pytest.approx(50.0) and np.isnan(est[0, 1])
    assert var[0, 0] == pytest.approx((16 + 4) / 4 + 0.01 * 2500) and np.isnan(var[0, 1])
    truth = np.full((40, 40), 50.0, np.float32)
    fused = truth.copy()
    fused[10:20, 10:20] = np.nan
    aux = truth * 1.25
    aux[15:20, 10:20] = np.nan  # no S1 there: only the neighbours fill
    err = np.full(truth.shape, 3.0, np.float32)
    n_est = np.full(truth.shape, 56.0, np.float32)
    n_var = np.full(truth.shape, 9.0, np.float32)
    out, _, stats, error = fill_band(fused, aux, 10, 2.0, fused_error=err,
                                     neighbour=(n_est, n_var))
    assert stats["filled"] == 100 and stats["empty"] == 0
    np.testing.assert_allclose(out[15:20, 10:20], 56.0)
    np.testing.assert_allclose(error[15:20, 10:20], 3.0)
    # where both exist: between a·S (= 50) and N (= 56), with a smaller error than either
    _, _, _, s1_error = fill_band(fused, aux, 10, 2.0, fused_error=err)
    both = (slice(10, 15), slice(10, 20))
    assert (out[both] > 50.0).all() and (out[both] < 56.0).all()
    assert (error[both] < np.minimum(s1_error[both], 3.0)).all()


def test_scene_neighbouring_months_improve_the_fills(scene_tiny, scene_fills):
    """On the tiny scene the neighbouring months bring the glacier fills closer to the truth
    than the Sentinel-1 fills alone, cover more, and their error stays calibrated."""
    from glacier_velocity.core.sampledata.assessment import fills, sigma_coverage

    _, manifest, model = scene_tiny
    info, truth = read_stack(manifest["paths"]["truth_v"])
    _, s1 = read_stack(manifest["paths"]["sentinel1_v"])
    glacier = model.labels(info.grid) > 0
    base = fills(*scene_fills["combined"][:2], truth, s1, glacier)
    fused, filled, _, error = scene_fills["neighbours"]
    f = fills(fused, filled, truth, s1, glacier)
    assert f["n"] >= base["n"] and f["rmse"] < 0.9 * base["rmse"], (f, base)
    assert abs(f["fast_rel_bias"]) < 0.03, f
    share, _ = sigma_coverage(filled, error, truth, glacier)
    assert 0.92 <= share <= 0.99, share  # 98.2 % (valley scene: 94.8 %)


def test_auxiliary_holes_filled_from_neighbours_without_bias(tmp_path):
    """A glacier whose speed falls across the flow (a trunk at 300 m/yr, margins at 60) with
    Sentinel-1 lost on a margin strip (layover) in every month and the fused stack missing there
    in winter: without AUX_SPREAD the strip stays empty in winter; with it the strip is filled,
    its temporal coefficient learnt against the neighbourhood value in summer, unbiased."""
    rng = np.random.default_rng(3)
    n, months = 60, 24
    grid = Grid.from_bounds(0, n * 30.0, 30.0, n, n, 32645)
    cols = np.arange(n)
    profile = 60.0 + 240.0 * np.exp(-((cols - 30) / 12.0) ** 2)  # m/yr across the glacier
    season = 1.0 + 0.15 * np.sin(2 * np.pi * np.arange(months) / 12.0)
    truth = season[:, None, None] * np.broadcast_to(profile, (n, n))[None]
    ivs = [Interval.month(2015 + m // 12, m % 12 + 1) for m in range(months)]
    fused = truth + rng.normal(0, 5.0, truth.shape)
    winter = np.isin(np.arange(months) % 12, [0, 1, 2, 10, 11])
    strip = np.zeros((n, n), bool)
    strip[:, 8:14] = True  # the layover strip on the margin
    fused[np.ix_(winter, np.ones(n, bool), np.ones(n, bool))] = np.nan  # cloudy winters
    s1 = 1.1 * truth + rng.normal(0, 20.0, truth.shape)
    s1[:, strip] = np.nan
    f = write_stack(str(tmp_path / "fused.tif"), grid, fused, ivs, "fused")
    a = write_stack(str(tmp_path / "s1.tif"), grid, s1, ivs, "sentinel1")
    gaps = np.isnan(fused) & strip[None]
    for spread in (0.0, 3.0):
        out = str(tmp_path / f"filled_{spread:g}.tif")
        gapfill_stack(f, a, out, aux_spread=spread)
        filled = read_stack(out)[1]
        done = gaps & np.isfinite(filled)
        if spread == 0:
            assert not done.any()
        else:
            assert done.sum() == gaps.sum()
            err = filled[done] - truth[done]
            # truth there 79 m/yr on average: bias -0.01, RMSE 2.6 m/yr (Sentinel-1's noise 20)
            assert abs(err.mean()) < 0.01 * truth[done].mean()
            assert np.sqrt(np.mean(err ** 2)) < 4.0


def test_gapfilled_stack_names_its_own_error_stack(tmp_path):
    """The fused stack's ERROR_STACK link is not copied: the gap-filled stack names its own error
    stack (or none), so the trends and the dock read the gap-filled σ, not the fused one."""
    from glacier_velocity.core.io.products import read_stack_info

    grid = Grid.from_bounds(500000, 4000000, 30, 20, 20, 32645)
    months = [Interval.month(2020, 1)]
    v = np.full((1, 20, 20), 50.0, np.float32)
    fpath = write_stack(str(tmp_path / "fused.tif"), grid, v, months, "fused", "v",
                        {"ERROR_STACK": "fused_error.tif"})
    epath = write_stack(str(tmp_path / "fused_error.tif"), grid, v / 10, months, "error", "v",
                        {"ERROR_OF": "fused.tif"})
    s1 = write_stack(str(tmp_path / "s1.tif"), grid, v, months, "sentinel1")
    out, err = str(tmp_path / "filled.tif"), str(tmp_path / "filled_sigma.tif")
    gapfill_stack(fpath, s1, out, fused_error=epath, error_output=err)
    assert read_stack_info(out).metadata["ERROR_STACK"] == "filled_sigma.tif"
    assert read_stack_info(err).metadata["ERROR_OF"] == "filled.tif"
    assert "ERROR_STACK" not in read_stack_info(err).metadata
    bare = str(tmp_path / "bare.tif")
    gapfill_stack(fpath, s1, bare)
    assert "ERROR_STACK" not in read_stack_info(bare).metadata
