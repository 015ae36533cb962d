"""The sample scene: deterministic, and its files agree with the analytic truth."""

import json
import os

import numpy as np
import pytest
from scipy import ndimage

from glacier_velocity.core.io.dates import Interval
from glacier_velocity.core.io.products import read_stack
from glacier_velocity.core.io.raster import raster_grid, read_band
from glacier_velocity.core.sampledata.scene import (SceneModel, band_limited_noise, generate_scene,
                                             render_pair_images)
from glacier_velocity.core.io.vector import rasterize_ids, rasterize_mask


def test_scene_is_deterministic(tmp_path, scene_tiny):
    folder, manifest, _ = scene_tiny
    again = str(tmp_path / "again")
    generate_scene(again, "tiny", 2015, 10, seed=0)
    for key in ("landsat_v", "dem"):
        a = read_band(manifest["paths"][key], 5 if key.endswith("_v") else 1)
        b = read_band(os.path.join(again, os.path.relpath(manifest["paths"][key], folder)),
                      5 if key.endswith("_v") else 1)
        np.testing.assert_array_equal(a, b)
    with open(os.path.join(again, "scene.json")) as f:
        assert json.load(f)["glaciers"] == manifest["glaciers"]


def test_glaciers_vectors_and_truth(scene_tiny):
    folder, manifest, model = scene_tiny
    grid = raster_grid(manifest["paths"]["reference_grid"])
    assert grid.dx == 30 and grid.shape == (100, 100)
    labels, feats = rasterize_ids(manifest["paths"]["glaciers"], grid)
    assert [f["id"] for f in feats] == [1, 2, 3, 4]
    for f, g in zip(feats, manifest["glaciers"]):
        assert f["area_km2"] == pytest.approx(g["area_km2"], rel=0.01)  # 96-gon vs ellipse
    # rasterised outlines match the analytic labels except along the margins
    assert np.mean(labels == model.labels(grid)) > 0.98
    stable = rasterize_mask(manifest["paths"]["stable"], grid)
    assert not np.any(stable & (model.labels(grid) > 0))
    assert stable.mean() > 0.4
    # truth stack = analytic model; trend of glacier 1 > 0, 2 < 0, 3 = 0
    info, v = read_stack(manifest["paths"]["truth_v"])
    assert info.count == 120
    vx, vy = model.velocity(grid, info.intervals[66])
    np.testing.assert_allclose(v[66], np.hypot(vx, vy), atol=1e-3)
    trend = read_band(manifest["paths"]["true_trend"])
    lab = model.labels(grid)
    assert trend[lab == 1].mean() > 5 and trend[lab == 2].mean() < -5
    assert np.all(trend[lab == 3] == 0) and np.all(trend[lab == 0] == 0)
    # per-glacier yearly means follow the trend: decade change ~= trend fraction
    yearly = np.array([np.nanmean(v[12 * y:12 * y + 12][:, lab == 1]) for y in range(10)])
    slope = np.polyfit(np.arange(10), yearly, 1)[0] * 10
    assert slope == pytest.approx(manifest["glaciers"][0]["true_trend_mean"], rel=0.02)
    # seasonal cycle peaks in summer
    month_means = v[:12][:, lab == 3].mean(axis=1)
    assert int(np.argmax(month_means)) in (5, 6, 7)


def test_dem_aspect_and_slope_follow_flow(scene_tiny):
    _, manifest, model = scene_tiny
    grid = raster_grid(manifest["paths"]["dem"])
    dem = read_band(manifest["paths"]["dem"], dtype=np.float64)
    dzdy, dzdx = np.gradient(dem, -grid.dy, grid.dx)
    lab = model.labels(grid)
    for g in model.glaciers[:3]:
        inner = ndimage.binary_erosion(lab == g.gid, iterations=2)  # margins mix in the background
        aspect = np.degrees(np.arctan2(-dzdx[inner].mean(), -dzdy[inner].mean())) % 360
        slope = np.degrees(np.arctan(np.hypot(dzdx[inner].mean(), dzdy[inner].mean())))
        assert abs((aspect - g.bearing + 180) % 360 - 180) < 3
        assert slope == pytest.approx(g.slope, abs=1.5)


def test_sensor_stacks_have_their_noise_and_gaps(scene_tiny):
    _, manifest, model = scene_tiny
    _, truth = read_stack(manifest["paths"]["truth_v"])
    gaps = {}
    for sensor in ("landsat", "sentinel2", "sentinel1"):
        _, v = read_stack(manifest["paths"][f"{sensor}_v"])
        gaps[sensor] = np.isnan(v).mean()
        err = (v - truth)[:, model.labels(raster_grid(manifest["paths"]["dem"])) == 1]
        err = err[np.isfinite(err)]
        mad = 1.4826 * np.median(np.abs(err - np.median(err)))
        sigma = manifest["sensor_noise"][sensor]["sigma"]
        assert 0.6 * sigma < mad < 1.4 * sigma, sensor
    assert gaps["landsat"] > gaps["sentinel2"] > gaps["sentinel1"] > 0.01
    info, uav = read_stack(manifest["paths"]["uav_v"])
    assert info.count == 6 and 0.01 < np.isfinite(uav[0]).mean() < 0.3


def test_rendering_is_an_exact_shift():
    """An integer displacement (3 fine pixels = 1 pixel) reproduces the reference exactly."""
    t = band_limited_noise((300, 300), np.random.default_rng(0), 0.1)
    a, b = render_pair_images(t, np.full(t.shape, 3.0), np.full(t.shape, -6.0))
    np.testing.assert_allclose(b[8:-12, 11:-9], a[10:-10, 10:-10], atol=1e-9)


def test_image_pairs_move_by_the_true_displacement(scene_tiny):
    """On each glacier's fastest pixel, the sub-pixel shift that best maps the reference onto the
    secondary (SSD over a 15x15 window, quintic-spline shifts on a 0.05 px lattice) is the truth."""
    _, manifest, model = scene_tiny
    for pair in manifest["pairs"]:
        if pair["sensor"] == "sentinel1" or pair["start"][5:7] != "07":
            continue  # speckle and clouds would need a real correlator (tested in its own issue)
        a = read_band(pair["reference"], dtype=np.float64)
        b = read_band(pair["secondary"], dtype=np.float64)
        grid = raster_grid(pair["reference"])
        iv = Interval.parse(f"{pair['start']}/{pair['end']}")
        vx, vy = model.velocity(grid, iv)
        years = iv.days / 365.25
        for g in model.glaciers[:3]:
            speed = np.hypot(vx, vy) * (model.labels(grid) == g.gid)
            r, c = np.unravel_index(np.argmax(speed), speed.shape)
            win = (slice(r - 7, r + 8), slice(c - 7, c + 8))
            crop = (slice(r - 12, r + 13), slice(c - 12, c + 13))  # shift a crop: cheap
            inner = (slice(5, 20), slice(5, 20))
            # the best single shift of a window is its mean displacement (speed peaks at r, c)
            true = np.array([-vy[win].mean() * years / grid.dy, vx[win].mean() * years / grid.dx])
            best, best_ssd = None, np.inf
            for dr in np.arange(-0.5, 0.51, 0.05) + true[0]:
                for dc in np.arange(-0.5, 0.51, 0.05) + true[1]:
                    moved = ndimage.shift(a[crop], (dr, dc), order=5, mode="mirror")
                    ssd = np.sum((moved[inner] - b[win]) ** 2)
                    if ssd < best_ssd:
                        best, best_ssd = np.array([dr, dc]), ssd
            assert np.all(np.abs(best - true) < 0.08), (pair["sensor"], g.gid, best, true)
            assert np.hypot(*true) > 0.2


def test_model_rejects_bad_arguments():
    with pytest.raises(ValueError, match="Unknown scene size 'huge'"):
        SceneModel("huge")


def test_image_series_pairing_rule_forms_exactly_the_rendered_pairs(tmp_path):
    """Pairing the series images by the manifest's baseline rule recovers the rendered pairs only."""
    from itertools import combinations

    from glacier_velocity.core.io.dates import date_from_name

    manifest = generate_scene(str(tmp_path), "tiny", 2019, 1, seed=1, image_series=True)
    for sensor, rule in manifest["series_rules"].items():
        rendered = {(p["reference"], p["secondary"]) for p in manifest["series"]
                    if p["sensor"] == sensor}
        images = sorted({n for pair in rendered for n in pair})
        formed = {(a, b) for a, b in combinations(images, 2)
                  if rule["min_days"] <= (date_from_name(b) - date_from_name(a)).days
                  <= rule["max_days"]}
        assert formed == rendered and len(rendered) == 12, sensor
