"""Weighted multi-sensor fusion: the per-pixel rule, months, counts, accuracy against truth."""

import numpy as np
import pytest
from osgeo import gdal

from glacier_velocity.core.io.dates import Interval
from glacier_velocity.core.errors import InputError
from glacier_velocity.core.fusion.weighted import (format_subset_weights, format_weights,
                                                   fuse_band, fuse_stacks, parse_class_weights,
                                                   parse_subset_weights, parse_weights)
from glacier_velocity.core.io.grid import Grid
from glacier_velocity.core.io.products import read_stack, read_stack_info, write_stack
from glacier_velocity.core.io.raster import read_bands, warp_to_grid, write_raster

GRID = Grid.from_bounds(500000, 4000000, 30, 4, 5, 32645)
NAN = np.nan


def test_fuse_band_rule():
    # pixels: both primaries, one primary, only the auxiliary, none, a zero-weight primary alone
    a = np.array([[10.0, 10.0, NAN, NAN, NAN]])
    b = np.array([[20.0, NAN, NAN, NAN, 50.0]])
    s1 = np.array([[40.0, 40.0, 40.0, NAN, 40.0]])
    fused, count = fuse_band([a, b, s1], [0.5, 0.3, 0.2], 2)
    np.testing.assert_allclose(fused[0, :2], [(5 + 6 + 8) / 1.0, (5 + 8) / 0.7], rtol=1e-6)
    assert np.isnan(fused[0, 2]) and np.isnan(fused[0, 3])  # S1 alone never makes a fused value
    assert fused[0, 4] == pytest.approx((0.3 * 50 + 0.2 * 40) / 0.5)
    np.testing.assert_array_equal(count[0], [3, 2, 0, 0, 2])
    fused0, count0 = fuse_band([a, b, s1], [0.5, 0.0, 0.5], 2)  # b weighs nothing: ignored
    assert np.isnan(fused0[0, 4]) and count0[0, 4] == 0 and fused0[0, 0] == pytest.approx(25.0)
    # per-pixel weights (per class)
    w = np.broadcast_to(np.array([0.5, 0.5, 0.0])[:, None, None], (3, 1, 5)).copy()
    w[:, 0, 0] = [0.0, 1.0, 0.0]
    fused_c, _ = fuse_band([a, b, s1], w, 2)
    assert fused_c[0, 0] == pytest.approx(20.0) and fused_c[0, 1] == pytest.approx(10.0)


def test_fused_error_propagates_the_weights():
    """1 σ of the renormalised weighted mean of independent errors: sqrt(Σ w² σ²) / Σ w."""
    a = np.array([[10.0, 10.0, NAN]])
    b = np.array([[20.0, NAN, 30.0]])
    s1 = np.array([[40.0, 40.0, 40.0]])
    fused, _, err = fuse_band([a, b, s1], [0.5, 0.3, 0.2], 2, errors=[10.0, 5.0, 20.0])
    assert err[0, 0] == pytest.approx(np.sqrt(25 + 2.25 + 16))
    assert err[0, 1] == pytest.approx(np.sqrt(25 + 16) / 0.7)
    assert err[0, 2] == pytest.approx(np.sqrt(2.25 + 16) / 0.5)
    # a Monte Carlo of the same rule agrees
    rng = np.random.default_rng(0)
    n = 20000
    va = 10 + 10 * rng.standard_normal((1, n))
    vb = 10 + 5 * rng.standard_normal((1, n))
    f, _, e = fuse_band([va, vb], [0.25, 0.75], 2, errors=[10.0, 5.0])
    assert np.std(f - 10) == pytest.approx(e[0, 0], rel=0.03)


def test_scene_fused_error_is_calibrated(scene_tiny, fused_tiny):
    """The fused error from the sensors' RMSE against the UAV covers the truth on the glaciers:
    about 95 % of the glacier pixel-months within ±1.96 σ."""
    from glacier_velocity.core.sampledata.assessment import aligned, sigma_coverage

    _, manifest, model = scene_tiny
    tinfo, truth = read_stack(manifest["paths"]["truth_v"])
    _, fused, true = aligned(fused_tiny[0], tinfo, truth)
    _, err, _ = aligned(fused_tiny[3], tinfo, truth)
    share, n = sigma_coverage(fused, err, true, model.labels(tinfo.grid) > 0)
    assert n > 10000 and 0.92 <= share <= 0.99, share


def test_value_shares():
    from glacier_velocity.core.fusion.weighted import value_shares

    a = np.array([[10.0, 10.0, NAN]])
    b = np.array([[20.0, NAN, 30.0]])
    valid = np.array([[True, True, True]])
    shares = value_shares([a, b, None], [0.25, 0.75, 0.5], valid)
    np.testing.assert_allclose(shares, [(0.25 + 1 + 0) / 3, (0.75 + 0 + 1) / 3, 0.0])


def test_weight_strings():
    assert format_weights([0.25, 0.5, 0.25]) == "0.25,0.5,0.25"
    np.testing.assert_allclose(parse_weights("1, 2,1", 3), [0.25, 0.5, 0.25])
    with pytest.raises(InputError, match="holds 2 weight.* but 3 stack"):
        parse_weights("0.5,0.5", 3)
    with pytest.raises(InputError, match="not a comma-separated list"):
        parse_weights("0.5,x", 2)
    with pytest.raises(InputError, match="non-negative"):
        parse_weights("-0.5,1.5", 2)
    cw = parse_class_weights("1:0.2,0.8;2:1,0", 2)
    np.testing.assert_allclose(cw[1.0], [0.2, 0.8])
    np.testing.assert_allclose(cw[2.0], [1.0, 0.0])


def test_months_are_the_union_and_grids_are_harmonised(tmp_path):
    rng = np.random.default_rng(0)
    months = [Interval.month(2020, m) for m in range(1, 5)]
    a = rng.uniform(50, 100, (3, 4, 5)).astype(np.float32)
    b = rng.uniform(50, 100, (3, 4, 5)).astype(np.float32)
    pa = write_stack(str(tmp_path / "a.tif"), GRID, a, months[:3], "landsat")
    pb = write_stack(str(tmp_path / "b.tif"), GRID, b, months[1:], "sentinel2")
    # the auxiliary on a 10 m grid (a nearest copy): harmonised back exactly
    fine = Grid.from_bounds(500000, 4000000, 10, 12, 15, 32645)
    s = rng.uniform(50, 100, (4, 4, 5)).astype(np.float32)
    ps = write_stack(str(tmp_path / "s.tif"), fine, warp_to_grid(
        write_stack(str(tmp_path / "s30.tif"), GRID, s, months, "sentinel1"), fine), months,
        "sentinel1")
    out, cnt = str(tmp_path / "fused.tif"), str(tmp_path / "count.tif")
    summary = fuse_stacks([pa, pb], out, "0.5,0.3,0.2", ps, cnt)
    info, fused = read_stack(out)
    assert info.intervals == months and info.sensor == "fused" and info.grid.same_as(GRID)
    np.testing.assert_allclose(fused[0], (0.5 * a[0] + 0.2 * s[0]) / 0.7, rtol=1e-6)
    np.testing.assert_allclose(fused[1], 0.5 * a[1] + 0.3 * b[0] + 0.2 * s[1], rtol=1e-6)
    np.testing.assert_allclose(fused[3], (0.3 * b[2] + 0.2 * s[3]) / 0.5, rtol=1e-6)
    np.testing.assert_array_equal(read_bands(cnt)[:, 0, 0], [2, 3, 3, 2])
    assert [x["stacks"] for x in summary] == [2, 3, 3, 2]
    ds = gdal.Open(out)
    assert ds.GetMetadataItem("WEIGHTS") == "0.5,0.3,0.2"
    assert ds.GetRasterBand(1).GetMetadataItem("VALID_SHARE") == "1.0000"
    with pytest.raises(InputError, match="holds 2 weight"):
        fuse_stacks([pa, pb], str(tmp_path / "x.tif"), "0.5,0.5", ps)
    with pytest.raises(InputError, match="also an input"):
        fuse_stacks([pa, pb], pa, "0.5,0.5")
    vx = write_stack(str(tmp_path / "vx.tif"), GRID, a, months[:3], "landsat", "vx")
    with pytest.raises(InputError, match="different quantities"):
        fuse_stacks([pa, vx], str(tmp_path / "x.tif"), "0.5,0.5")
    nodates = write_raster(str(tmp_path / "nodates.tif"), GRID, a)
    with pytest.raises(InputError, match="nodates.tif.* no date interval"):
        fuse_stacks([pa, nodates], str(tmp_path / "x.tif"), "0.5,0.5")


def test_per_class_weights(tmp_path):
    months = [Interval.month(2020, 1)]
    a = np.full((1, 4, 5), 10.0, np.float32)
    b = np.full((1, 4, 5), 20.0, np.float32)
    pa = write_stack(str(tmp_path / "a.tif"), GRID, a, months)
    pb = write_stack(str(tmp_path / "b.tif"), GRID, b, months)
    cls = np.ones((4, 5), np.float32)
    cls[:, 3:] = 2
    pc = write_raster(str(tmp_path / "cls.tif"), GRID, cls)
    out = str(tmp_path / "f.tif")
    fuse_stacks([pa, pb], out, "0.5,0.5", classes=pc, class_weights=parse_class_weights("2:1,0", 2))
    _, fused = read_stack(out)
    np.testing.assert_allclose(fused[0, :, :3], 15.0)
    np.testing.assert_allclose(fused[0, :, 3:], 10.0)
    with pytest.raises(InputError, match="also an input"):  # the class raster is an input too
        fuse_stacks([pa, pb], pc, "0.5,0.5", classes=pc, class_weights={2.0: [1, 0]})


def test_subset_weights(tmp_path):
    """Weights per set of valid stacks: a pixel where exactly a listed set is valid takes that
    set's weights; a stack the global weights ignore then contributes where the others miss."""
    from glacier_velocity.core.fusion.calibration import simplex_lsq, subset_weights

    # calibration: A is exact, B and C noisy and independent; the global fit takes A alone,
    # without A the fit uses both B and C (about inverse variance), C alone is no primary set
    rng = np.random.default_rng(1)
    truth = rng.uniform(0, 300, 4000)
    X = np.column_stack([truth, truth + 10 * rng.standard_normal(truth.size),
                         truth + 20 * rng.standard_normal(truth.size)])
    subsets = subset_weights(X, truth, 2)
    assert len(subsets) == 6 and (False, False, True) not in subsets
    np.testing.assert_allclose(subsets[(True, True, True)], simplex_lsq(X, truth))
    assert subsets[(True, True, True)][0] > 0.99
    w_bc = subsets[(False, True, True)]
    assert w_bc[0] == 0 and w_bc[2] == pytest.approx(0.2, abs=0.03)  # 1/20² : 1/10² -> 0.8/0.2
    text = format_subset_weights(subsets)
    assert text.startswith("100:1,0,0;010:0,1,0;")
    parsed = parse_subset_weights(text, 3)
    for mask, w in subsets.items():
        np.testing.assert_allclose(parsed[mask], w, atol=1e-7)
    for bad in ("11:1,0", "102:1,0,0", "000:1,0,0", "100:0.5,0.5,0"):
        with pytest.raises(InputError, match="SUBSET_WEIGHTS"):
            parse_subset_weights(bad, 3)
    # fusion: pixels with A, B, C valid / B and C / B alone / C alone
    months = [Interval.month(2020, 1)]
    a = np.full((1, 4, 5), NAN, np.float32)
    a[0, 0] = 10.0
    b = np.full((1, 4, 5), 20.0, np.float32)
    b[0, 3] = NAN
    c = np.full((1, 4, 5), 40.0, np.float32)
    c[0, 2] = NAN
    paths = [write_stack(str(tmp_path / f"{n}.tif"), GRID, v, months) for n, v in
             (("a", a), ("b", b), ("c", c))]
    out, err = str(tmp_path / "f.tif"), str(tmp_path / "e.tif")
    fuse_stacks(paths[:2], out, "1,0,0", paths[2], subset_weights="111:1,0,0;011:0,0.8,0.2;"
                "010:0,1,0", errors="1,10,20", error_output=err)
    fused, error = read_stack(out)[1][0], read_stack(err)[1][0]
    np.testing.assert_allclose(fused[0], 10.0)
    np.testing.assert_allclose(fused[1], 0.8 * 20 + 0.2 * 40, rtol=1e-6)
    np.testing.assert_allclose(error[1], np.hypot(0.8 * 10, 0.2 * 20), rtol=1e-6)
    np.testing.assert_allclose(fused[2], 20.0)
    assert np.isnan(fused[3]).all()  # the auxiliary alone never makes a fused value
    without = str(tmp_path / "g.tif")
    fuse_stacks(paths[:2], without, "1,0,0", paths[2])
    assert np.isnan(read_stack(without)[1][0, 1:]).all()  # global weights: A or nothing


def test_fused_scene_beats_every_sensor_on_glaciers(scene_tiny, fused_tiny):
    _, manifest, model = scene_tiny
    p = manifest["paths"]
    out, cnt, summary, _ = fused_tiny
    _, truth = read_stack(p["truth_v"])
    stacks = {s: read_stack(p[f"{s}_v"])[1] for s in ("landsat", "sentinel2", "sentinel1")}
    info, fused = read_stack(out)
    assert info.count == truth.shape[0] == len(summary)
    glacier = np.broadcast_to(model.labels(info.grid) > 0, truth.shape)
    every = glacier & np.all([np.isfinite(a) for a in stacks.values()], axis=0)
    assert every.sum() > 10000

    def rmse(a):
        return float(np.sqrt(np.mean((a[every] - truth[every]) ** 2)))

    best = min(rmse(a) for a in stacks.values())
    assert best == pytest.approx(rmse(stacks["sentinel2"]))
    assert rmse(fused) <= 0.85 * best  # at least 15 % lower than the best single sensor
    # a fused value exactly where a primary sensor is valid
    primary = np.isfinite(stacks["landsat"]) | np.isfinite(stacks["sentinel2"])
    np.testing.assert_array_equal(np.isfinite(fused), primary)
    count = read_bands(cnt)
    expect = sum(np.isfinite(a).astype(np.float32) for a in stacks.values()) * primary
    np.testing.assert_array_equal(count, expect)
    assert summary[0]["valid_share"] == pytest.approx(float(primary[0].mean()))


def pixel_error_stacks(tmp_path, seed=2):
    """Two sensors over 12 months (truth 300 m/yr): each has an error of 1 σ c_k (6 and 4 m/yr)
    that no error stack states (what a calibration against the UAV finds, e.g. window smoothing)
    plus per-pixel noise of a known 1 σ (2-40 m/yr, heavy-tailed across pixels) stated in its
    error stack beside it (``<stem>_error.tif``)."""
    rng = np.random.default_rng(seed)
    grid = Grid.from_bounds(500000, 4000000, 30, 40, 50, 32645)
    months = [Interval.month(2020, m) for m in range(1, 13)]
    paths, errors = [], []
    for name, c in (("a", 6.0), ("b", 4.0)):
        e = np.clip(rng.lognormal(np.log(8), 0.8, (12,) + grid.shape), 2, 40).astype(np.float32)
        v = 300 + c * rng.standard_normal(e.shape) + e * rng.standard_normal(e.shape)
        paths.append(write_stack(str(tmp_path / f"{name}.tif"), grid, v, months, name, "v",
                                 {"ERROR_STACK": f"{name}_err.tif"}))
        write_stack(str(tmp_path / f"{name}_err.tif"), grid, e, months, "error", "v")
        errors.append(e)
    return paths, errors


def test_per_pixel_errors_are_calibrated_and_weigh(tmp_path):
    """With the error stacks, the fused 1 σ covers the truth (|error| <= 1.96 σ) for 95 +- 3 %
    of pixel-months overall and on the noisiest quarter (measured 95.0 and 95.5 %; 94.8 and
    94.8 % with inverse-variance weights); one σ per sensor (its RMSE) covers 94.1 % overall but
    80.0 % of the noisiest quarter. Inverse-variance weights lower the RMSE from 10.5 to
    7.9 m/yr."""
    paths, e = pixel_error_stacks(tmp_path)
    rmse = [float(np.hypot(c, np.sqrt(np.mean(x ** 2)))) for c, x in zip((6.0, 4.0), e)]
    out = {}
    for name, kw in (("global", {"errors": format_weights(rmse)}),
                     ("pixel", {"errors": "6,4", "error_stacks": [
                         str(tmp_path / "a_err.tif"), str(tmp_path / "b_err.tif")]}),
                     ("ivw", {"errors": "6,4", "inverse_variance": True, "error_stacks": [
                         str(tmp_path / "a_err.tif"), str(tmp_path / "b_err.tif")]})):
        f, err = str(tmp_path / f"{name}.tif"), str(tmp_path / f"{name}_error.tif")
        fuse_stacks(paths, f, "0.4,0.6", error_output=err, **kw)
        out[name] = read_stack(f)[1] - 300, read_stack(err)[1]
    assert read_stack_info(f).metadata["ERROR_STACK"] == "ivw_error.tif"
    assert read_stack_info(err).metadata["ERROR_OF"] == "ivw.tif"
    noisy = np.hypot(0.4 * e[0], 0.6 * e[1]) > np.percentile(np.hypot(0.4 * e[0], 0.6 * e[1]), 75)
    cover = {k: (np.mean(np.abs(d) <= 1.96 * s), np.mean(np.abs(d[noisy]) <= 1.96 * s[noisy]))
             for k, (d, s) in out.items()}
    rms = {k: float(np.sqrt(np.mean(d ** 2))) for k, (d, _) in out.items()}
    for k in ("pixel", "ivw"):
        assert 0.92 <= cover[k][0] <= 0.98 and 0.92 <= cover[k][1] <= 0.98, (k, cover[k])
    assert cover["global"][1] < 0.85, cover
    assert rms["ivw"] < 0.8 * rms["pixel"], rms
    np.testing.assert_allclose(rms["pixel"], rms["global"], rtol=1e-6)  # same weights


def test_fused_value_shares_read_back(tmp_path):
    """Each stack's share of all fused values, from the band metadata: month 1 a alone (share
    1, 0), month 2 both at weights 0.25 / 0.75 on half of the pixels: (1·1 + 0.25·0.5) / 1.5."""
    from glacier_velocity.core.fusion.weighted import fused_value_shares

    months = [Interval.month(2020, 1), Interval.month(2020, 2)]
    a = np.full((2, 4, 5), 10.0, np.float32)
    a[1, 2:] = np.nan
    b = np.full((2, 4, 5), 20.0, np.float32)
    b[0] = np.nan
    b[1, 2:] = np.nan
    pa = write_stack(str(tmp_path / "a.tif"), GRID, a, months)
    pb = write_stack(str(tmp_path / "b.tif"), GRID, b, months)
    out = str(tmp_path / "f.tif")
    fuse_stacks([pa, pb], out, "0.25,0.75")
    np.testing.assert_allclose(fused_value_shares(out), [1.125 / 1.5, 0.375 / 1.5], rtol=1e-5)
