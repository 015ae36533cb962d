"""The post-processing algorithms through Processing: the cleanpair contract (vx/vy rasters in
m/day with dates in the name, stable polygons), each step on its own, and clear errors."""

import datetime as dt
import os

import numpy as np
import pytest
from qgis.core import QgsProcessingException, QgsVectorLayer

from glacier_velocity.core.io.dates import Interval
from glacier_velocity.core.io.grid import Grid
from glacier_velocity.core.io.products import (read_pair_info, read_pair_product, read_stack,
                                            write_pair_product, write_stack)
from glacier_velocity.core.io.raster import write_raster
from glacier_velocity.core.sampledata.scene import SceneModel
from glacier_velocity.core.sampledata.raw_pair import make_raw_pair
from glacier_velocity.core.io.vector import rasterize_mask, write_polygons

GRID = Grid.from_bounds(600000, 6750000, 60, 60, 80, 32607)


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    """A synthetic raw pair product with outliers and a ramp, and its stable-ground mask."""
    folder = tmp_path_factory.mktemp("raw")
    rp = make_raw_pair(SceneModel("tiny"), outliers=0.10)
    path = str(folder / "raw.tif")
    write_pair_product(path, rp.grid, rp.vx, rp.vy, rp.snr, rp.interval.start, rp.interval.end,
                       "landsat")
    mask = str(folder / "stable.tif")
    write_raster(mask, rp.grid, rp.stable.astype(np.float32))
    return rp, path, mask


def component_rasters(tmp_path, name="20180304-20180405"):
    """vx, vy rasters in m/day: a plane (offset and tilt) plus noise on stable ground, a flow of
    1 m/day east in a central block; the stable polygon is the frame around the block."""
    rng = np.random.default_rng(0)
    xs, ys = GRID.centres()
    plane = 0.05 + 0.02 * (xs[None, :] - xs.mean()) / 1000 - 0.01 * (ys[:, None] - ys.mean()) / 1000
    vx = (plane + rng.normal(0, 0.02, GRID.shape)).astype(np.float32)
    vy = (-plane + rng.normal(0, 0.02, GRID.shape)).astype(np.float32)
    vx[20:40, 25:55] += 1.0
    paths = []
    for comp, arr in (("vx", vx), ("vy", vy)):
        p = str(tmp_path / f"{name}_{comp}.tif")
        write_raster(p, GRID, arr)
        paths.append(p)
    x0, y0, x1, y1 = GRID.bounds
    frame = np.array([[x0, y1], [x1, y1], [x1, y0], [x0, y0]])
    hole = np.array([[x0 + 20 * 60, y1 - 17 * 60], [x0 + 60 * 60, y1 - 17 * 60],
                     [x0 + 60 * 60, y1 - 43 * 60], [x0 + 20 * 60, y1 - 43 * 60]])
    stable = write_polygons(str(tmp_path / "stable.gpkg"), "bedrock", GRID.crs_wkt,
                            [([frame, hole], {"id": 1})], {"id": "int"}, overwrite_file=True)
    return paths, stable


def test_cleanpair_contract_with_mday_component_rasters(run_alg, tmp_path):
    (vx, vy), stable = component_rasters(tmp_path)
    out = str(tmp_path / "clean.tif")
    result = run_alg("cleanpair", {"INPUT": vx, "INPUT_VY": vy, "INPUT_UNITS": 1,
                                   "STABLE": stable, "OUTPUT": out})
    assert result["OUTPUT"] == out and result["VALID_AFTER"] <= result["VALID_BEFORE"]
    info, d = read_pair_product(out)
    assert (info.start.isoformat(), info.end.isoformat()) == ("2018-03-04", "2018-04-05")
    assert info.metadata["UNITS"] == "m/yr" and "RAMP_VX" in info.metadata
    block = d["vx"][22:38, 27:53]
    assert np.nanmedian(block) == pytest.approx(365.25, abs=0.02 * 365.25)  # m/day -> m/yr
    frame = np.ones(GRID.shape, bool)
    frame[15:45, 18:62] = False
    assert abs(np.nanmedian(d["vx"][frame])) < 0.005 * 365.25  # the plane is gone
    assert abs(np.nanmedian(d["vy"][frame])) < 0.005 * 365.25
    assert np.nanstd(d["vx"][frame]) < 0.02 * 365.25


def test_cleanpair_dates_without_a_dated_name(run_alg, tmp_path):
    (vx, vy), _ = component_rasters(tmp_path, name="map")
    with pytest.raises(QgsProcessingException, match="No dates for .*map_vx.tif"):
        run_alg("cleanpair", {"INPUT": vx, "INPUT_VY": vy, "OUTPUT": str(tmp_path / "o.tif")})
    out = str(tmp_path / "dated.tif")
    run_alg("cleanpair", {"INPUT": vx, "INPUT_VY": vy, "INPUT_UNITS": 1,
                          "START_DATE": "2019-06-03", "END_DATE": "2019-07-05", "OUTPUT": out})
    assert read_pair_info(out).baseline_days == 32


def test_qualityfilter_reports_each_filter(run_alg, raw, tmp_path):
    rp, path, _ = raw
    out = str(tmp_path / "filtered.tif")
    result = run_alg("qualityfilter", {"INPUT": path, "OUTPUT": out})
    removed = sum(result[k] for k in ("REMOVED_SNR", "REMOVED_SPEED", "REMOVED_MEDIAN_TEST",
                                      "REMOVED_SPECKLE", "REMOVED_DIRECTION"))
    assert result["VALID_BEFORE"] - result["VALID_AFTER"] == removed
    assert result["REMOVED_SNR"] > 0 and result["REMOVED_MEDIAN_TEST"] > 0
    only_snr = run_alg("qualityfilter", {"INPUT": path, "NMT_THRESHOLD": 0, "SPECKLE_SIZE": 0,
                                         "DIRECTION": 3, "MEDIAN": False,
                                         "OUTPUT": str(tmp_path / "snr.tif")})
    assert only_snr["REMOVED_SNR"] == int((rp.snr < 0.9).sum())
    assert only_snr["REMOVED_MEDIAN_TEST"] == 0 and only_snr["REMOVED_DIRECTION"] == 0
    with pytest.raises(QgsProcessingException, match="FLOW_DIRECTION: give a flow direction"):
        run_alg("qualityfilter", {"INPUT": path, "DIRECTION": 1, "OUTPUT": str(tmp_path / "x.tif")})


def test_removeramp_with_a_mask_raster(run_alg, raw, tmp_path):
    rp, path, mask = raw
    out = str(tmp_path / "noramp.tif")
    run_alg("removeramp", {"INPUT": path, "STABLE_MASK": mask, "OUTPUT": out})
    _, d = read_pair_product(out)
    # what is left on stable ground is noise and outliers: the median is the truth (0)
    assert abs(np.nanmedian(d["vx"][rp.stable])) < 0.01 * np.ptp(rp.ramp_vx)
    with pytest.raises(QgsProcessingException, match="No stable ground given"):
        run_alg("removeramp", {"INPUT": path, "OUTPUT": str(tmp_path / "x.tif")})


def test_destripe_says_when_stable_ground_is_too_small(run_alg, raw, tmp_path):
    rp, path, _ = raw
    small = np.zeros(rp.grid.shape, np.float32)
    small[:30] = 1
    mask = str(tmp_path / "small.tif")
    write_raster(mask, rp.grid, small)
    with pytest.raises(QgsProcessingException, match="Too little stable ground to destripe"):
        run_alg("destripe", {"INPUT": path, "STABLE_MASK": mask, "OUTPUT": str(tmp_path / "d.tif")})
    out = str(tmp_path / "destriped.tif")
    run_alg("destripe", {"INPUT": path, "STABLE_MASK": raw[2], "ANGLE": 0, "OUTPUT": out})
    assert "stripes along 0" in read_pair_info(out).metadata["STRIPES_VX"]


def test_harmonise_monthly_stacks_and_temporal_filter(run_alg, scene_tiny, tmp_path):
    _, manifest, model = scene_tiny
    grid = model.grid(15.0)
    pairs = []
    for k, (start, days) in enumerate((("2020-03-02", 16), ("2020-03-10", 16), ("2020-04-03", 16))):
        s = dt.date.fromisoformat(start)
        iv = Interval(s, s + dt.timedelta(days=days))
        vx, vy = model.velocity(grid, iv)
        p = str(tmp_path / f"p{k}.tif")
        write_pair_product(p, grid, vx, vy, np.ones_like(vx), iv.start, iv.end, "landsat")
        pairs.append(p)
    h = str(tmp_path / "h.tif")
    run_alg("harmonise", {"INPUT": pairs[0], "OUTPUT": h})
    assert read_pair_info(h).grid.dx == 30
    table = str(tmp_path / "months.csv")
    outs = {k: str(tmp_path / f"{k}.tif") for k in ("v", "vx", "vy")}
    result = run_alg("monthlystacks", {"SOURCES": pairs,
                                       "REFERENCE": manifest["paths"]["reference_grid"],
                                       "OUTPUT": outs["v"], "OUTPUT_VX": outs["vx"],
                                       "OUTPUT_VY": outs["vy"], "OUTPUT_TABLE": table})
    rows = list(QgsVectorLayer(result["OUTPUT_TABLE"], "t", "ogr").getFeatures())
    assert [(r["month"], int(r["n_pairs"])) for r in rows] == [("2020-03", 2), ("2020-04", 1)]
    info, v = read_stack(outs["v"])
    assert info.count == 2 and os.path.exists(outs["vy"])
    # a stack with an outlier month, filtered with its vx companion
    months = [Interval.month(2020, m) for m in range(1, 13)]
    speeds = np.full((12, 4, 4), 100.0, np.float32)
    speeds[5] = 300.0
    sv, sx = str(tmp_path / "sv.tif"), str(tmp_path / "sx.tif")
    write_stack(sv, GRID.subgrid(0, 0, 4, 4), speeds, months, "landsat", "v")
    write_stack(sx, GRID.subgrid(0, 0, 4, 4), speeds * 0.6, months, "landsat", "vx")
    out_v, out_x = str(tmp_path / "fv.tif"), str(tmp_path / "fx.tif")
    result = run_alg("temporalfilter", {"INPUT": sv, "INPUT_VX": sx, "OUTPUT": out_v,
                                        "OUTPUT_VX": out_x})
    assert result["REMOVED"] == 16 and result["VALID_BEFORE"] == 12 * 16
    _, fx = read_stack(out_x)
    assert np.isnan(fx[5]).all() and np.isfinite(fx[:5]).all()


def test_monthlystacks_from_a_folder_with_cleaning(run_alg, scene_tiny, tmp_path):
    """Raw pairs (mismatches and a ramp) in a folder, as correlatebatch leaves them: FOLDER gives
    the same stack as SOURCES, and CLEAN with STABLE brings the month close to the truth."""
    _, manifest, model = scene_tiny
    folder = tmp_path / "pairs"
    folder.mkdir()
    paths = []
    for k, start in enumerate(("2020-07-02", "2020-07-12")):
        s = dt.date.fromisoformat(start)
        rp = make_raw_pair(model, interval=Interval(s, s + dt.timedelta(days=16)), seed=5 + k)
        path = str(folder / f"landsat_{k}.tif")
        write_pair_product(path, rp.grid, rp.vx, rp.vy, rp.snr, rp.interval.start,
                           rp.interval.end, "landsat")
        paths.append(path)
    ref = manifest["paths"]["reference_grid"]
    plain, listed = str(tmp_path / "plain.tif"), str(tmp_path / "listed.tif")
    run_alg("monthlystacks", {"FOLDER": str(folder), "REFERENCE": ref, "OUTPUT": plain})
    run_alg("monthlystacks", {"SOURCES": paths, "REFERENCE": ref, "OUTPUT": listed})
    assert np.array_equal(read_stack(plain)[1], read_stack(listed)[1], equal_nan=True)
    clean, kept = str(tmp_path / "clean.tif"), str(tmp_path / "kept")
    res = run_alg("monthlystacks", {"FOLDER": str(folder), "REFERENCE": ref, "CLEAN": True,
                                    "STABLE": manifest["paths"]["stable"], "OUTPUT": clean,
                                    "OUTPUT_PAIRS": kept})
    assert sorted(os.listdir(kept)) == ["landsat_0.tif", "landsat_1.tif"]
    assert res["OUTPUT_PAIRS"] == kept and "RAMP_VX" in read_pair_info(
        os.path.join(kept, "landsat_0.tif")).metadata
    info, cleaned = read_stack(clean)
    truth = model.velocity(info.grid, info.intervals[0])
    true_v = np.hypot(*truth)
    ice = model.labels(info.grid) > 0
    err_plain = np.nanmedian(np.abs(read_stack(plain)[1][0] - true_v)[ice])
    err_clean = np.nanmedian(np.abs(cleaned[0] - true_v)[ice])
    assert err_clean < 0.5 * err_plain  # the ramp and mismatches are gone
    stable = model.stable_mask(info.grid)
    assert np.nanmedian(cleaned[0][stable]) < 0.5 * np.nanmedian(read_stack(plain)[1][0][stable])


@pytest.mark.shared_data
def test_cleanpair_on_the_kaskawulsh_map(run_alg, shared_data, tmp_path):
    """The real map as two m/day rasters with dates in their names and bedrock polygons."""
    folder = os.path.join(shared_data, "kaskawulsh")
    out = str(tmp_path / "kaskawulsh_clean.tif")
    result = run_alg("cleanpair", {
        "INPUT": os.path.join(folder, "20180304-20180405_velo-raw_vx.tif"),
        "INPUT_VY": os.path.join(folder, "20180304-20180405_velo-raw_vy.tif"),
        "INPUT_UNITS": 1, "STABLE": os.path.join(folder, "bedrock_V2.shp"), "OUTPUT": out})
    info, d = read_pair_product(out)
    assert info.baseline_days == 32 and result["VALID_AFTER"] < result["VALID_BEFORE"]
    stable = rasterize_mask(os.path.join(folder, "bedrock_V2.shp"), info.grid)
    per_day = d["vx"][stable] / 365.25
    assert np.nanstd(per_day) <= 0.20 and abs(np.nanmedian(per_day)) <= 0.005
