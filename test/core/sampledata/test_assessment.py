"""assess_chain, the figures of issue 15's targets, on the tiny scene's stacks: every figure
against a direct computation from the truth."""

import numpy as np

from glacier_velocity.core.io.products import read_stack
from glacier_velocity.core.sampledata.assessment import (assess_chain, format_assessment,
                                                         seasonal_amplitudes, trend_classes)

SENSORS = ("landsat", "sentinel2", "sentinel1")


def test_assessment_of_the_tiny_scene_chain(scene_tiny, fused_tiny, tmp_path):
    from glacier_velocity.core.fusion.gapfill import gapfill_stack

    _, manifest, model = scene_tiny
    p = manifest["paths"]
    fused, _, _, fused_err = fused_tiny
    filled, error = str(tmp_path / "filled.tif"), str(tmp_path / "filled_error.tif")
    gapfill_stack(fused, p["sentinel1_v"], filled, fused_error=fused_err, error_output=error)
    info, truth = read_stack(p["truth_v"])
    labels = model.labels(info.grid)
    glacier = np.broadcast_to(labels > 0, truth.shape)
    rows = [{"id": g["gid"], "class": c} for g, c in zip(
        manifest["glaciers"], ("significantly accelerating", "no significant trend",
                               "no significant trend", "significantly decelerating"))]
    res = assess_chain(p["truth_v"], labels, {s: p[f"{s}_v"] for s in SENSORS}, fused, filled,
                       p["sentinel1_v"], error, rows, manifest["glaciers"])
    # each sensor on its own valid glacier pixel-months
    for s in SENSORS:
        data = read_stack(p[f"{s}_v"])[1]
        ok = glacier & np.isfinite(data)
        e = res["sensors"][s]
        assert e["n"] == ok.sum()
        np.testing.assert_allclose(e["rmse"], np.sqrt(np.mean((data - truth)[ok] ** 2)), 1e-5)
        np.testing.assert_allclose(e["share"], ok.sum() / glacier.sum(), 1e-9)
    g = read_stack(filled)[1]
    f = read_stack(fused)[1]
    assert res["filled"]["share"] > res["fused"]["share"]
    # the fills alone: valid after, not before, on the glaciers; the fast ones above 100 m/yr
    new = glacier & np.isnan(f) & np.isfinite(g)
    fl = res["fills"]
    assert fl["n"] == new.sum() and fl["fast_n"] == (new & (truth > 100)).sum() > 0
    fast = new & (truth > 100)
    np.testing.assert_allclose(fl["fast_rel_bias"],
                               np.mean((g - truth)[fast]) / np.mean(truth[fast]), 1e-5)
    # where every sensor is valid, the gap-filled product is the fused one (no fills there)
    every = glacier.copy()
    for s in SENSORS:
        every &= np.isfinite(read_stack(p[f"{s}_v"])[1])
    assert res["all_valid_n"] == every.sum()
    np.testing.assert_allclose(res["all_valid"]["filled"],
                               np.sqrt(np.mean((f - truth)[every] ** 2)), 1e-5)
    # every glacier gets an amplitude; the truth's own amplitude is the scene's 25 % of the mean
    assert set(res["amplitudes"]) == {g["gid"] for g in manifest["glaciers"]}
    exact = seasonal_amplitudes(truth, truth, labels, info.intervals)
    for gid, (prod, true) in exact.items():
        mean = truth[:, labels == gid].mean()
        assert abs(prod - true) < 1e-6 and abs(true / mean - 0.25) < 0.02, (gid, true, mean)
    share, n = res["sigma_coverage"]
    assert n == np.isfinite(g)[glacier].sum() and 0.9 < share < 0.99
    assert [r for *_, r in res["trend_classes"].values()] == [True, False, True, False]
    text = "\n".join(format_assessment(res))
    assert "trend classes right: 2 of 4" in text and "within 10 % of the truth for" in text


def test_trend_classes_match_expected_names():
    glaciers = [{"gid": 1, "expected_class": "accelerating"},
                {"gid": 2, "expected_class": "no significant trend"},
                {"gid": 3, "expected_class": "decelerating"}]
    rows = [{"id": "1", "class": "significantly accelerating"},
            {"id": "2.0", "class": "significantly decelerating"},
            {"id": "3", "class": "not computable"}]
    assert trend_classes(rows, glaciers) == {
        1: ("significantly accelerating", "accelerating", True),
        2: ("significantly decelerating", "no significant trend", False),
        3: ("not computable", "decelerating", False)}
