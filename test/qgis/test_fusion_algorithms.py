"""The fusion chain through Processing: calibrate weights (tables, WEIGHTS), fuse, gap-fill."""

import csv

import numpy as np
import pytest
from osgeo import gdal
from qgis.core import QgsProcessingException

from glacier_velocity.core.fusion.calibration import calibrate
from glacier_velocity.core.io.products import read_stack, read_stack_info


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_calibrate_fuse_gapfill_chain(run_alg, scene_tiny, tmp_path):
    _, manifest, model = scene_tiny
    p = manifest["paths"]
    table, samples = str(tmp_path / "calibration.csv"), str(tmp_path / "samples.csv")
    res = run_alg("calibrateweights", {
        "REFERENCE": p["uav_v"], "SOURCES": [p["landsat_v"], p["sentinel2_v"]],
        "AUXILIARY": p["sentinel1_v"], "OUTPUT": table, "OUTPUT_SAMPLES": samples})
    core = calibrate(p["uav_v"], [p["landsat_v"], p["sentinel2_v"]], p["sentinel1_v"])
    weights = [float(w) for w in res["WEIGHTS"].split(",")]
    np.testing.assert_allclose(weights, core.weights, atol=1e-7)
    assert res["CLASS_WEIGHTS"] == ""
    rows = read_csv(table)
    assert list(rows[0]) == ["source", "sensor", "role", "weight", "n", "bias", "rmse", "r2", "slope"]
    assert [(r["source"], r["sensor"], r["role"]) for r in rows] == [
        ("landsat_v", "landsat", "primary"), ("sentinel2_v", "sentinel2", "primary"),
        ("sentinel1_v", "sentinel1", "auxiliary"), ("combined", "", "combined")]
    for r, expect in zip(rows, core.table_rows()):
        assert float(r["rmse"]) == pytest.approx(expect["rmse"], rel=1e-6)
        assert int(r["n"]) == expect["n"]
    srows = read_csv(samples)
    assert list(srows[0]) == ["interval", "row", "col", "uav", "v_landsat_v", "v_sentinel2_v",
                              "v_sentinel1_v", "v_combined"]
    assert len(srows) == core.samples.uav.size and srows[0]["interval"] == "2019-06-28/2019-07-30"

    errors = [float(e) for e in res["ERRORS"].split(",")]
    np.testing.assert_allclose(errors, [float(r["rmse"]) for r in rows[:3]], rtol=1e-6)
    fused, count = str(tmp_path / "fused.tif"), str(tmp_path / "count.tif")
    fused_err = str(tmp_path / "fused_error.tif")
    res = run_alg("fuse", {"SOURCES": [p["landsat_v"], p["sentinel2_v"]],
                           "AUXILIARY": p["sentinel1_v"], "WEIGHTS": res["WEIGHTS"],
                           "ERRORS": res["ERRORS"], "OUTPUT": fused, "OUTPUT_COUNT": count,
                           "OUTPUT_ERROR": fused_err})
    assert res["OUTPUT"] == fused and res["OUTPUT_COUNT"] == count
    # the calibration table itself gives the same fusion as the weight string
    fused_table = str(tmp_path / "fused_table.tif")
    run_alg("fuse", {"SOURCES": [p["landsat_v"], p["sentinel2_v"]],
                     "AUXILIARY": p["sentinel1_v"], "WEIGHTS_TABLE": table, "OUTPUT": fused_table})
    np.testing.assert_allclose(read_stack(fused_table)[1], read_stack(fused)[1], rtol=1e-5,
                               atol=1e-3, equal_nan=True)
    _, err = read_stack(fused_err)
    assert np.nanmin(err) >= min(errors) * 0.5 and np.nanmax(err) <= max(errors) + 1e-3
    info = read_stack_info(fused)
    assert info.count == 120 and info.sensor == "fused"
    assert read_stack_info(count).count == 120

    filled, filled_err = str(tmp_path / "filled.tif"), str(tmp_path / "filled_error.tif")
    res = run_alg("gapfill", {"FUSED": fused, "AUXILIARY": p["sentinel1_v"],
                              "FUSED_ERROR": fused_err, "OUTPUT": filled,
                              "OUTPUT_ERROR": filled_err})
    assert res["OUTPUT_ERROR"] == filled_err
    _, before = read_stack(fused)
    _, after = read_stack(filled)
    _, sigma = read_stack(filled_err)
    assert np.isfinite(sigma)[np.isfinite(after)].mean() > 0.999
    assert not np.isfinite(sigma[np.isnan(after)]).any()
    glacier = np.broadcast_to(model.labels(info.grid) > 0, after.shape)
    assert np.isfinite(after)[glacier].mean() >= 0.97 > np.isfinite(before)[glacier].mean()
    ds = gdal.Open(filled)
    share = float(ds.GetRasterBand(1).GetMetadataItem("FILLED_SHARE"))
    assert share == pytest.approx((np.isnan(before[0]) & np.isfinite(after[0])).mean(), abs=1e-4)
    assert ds.GetMetadataItem("GAPFILL_ESTIMATOR") == "ratio"
    assert ds.GetMetadataItem("GAPFILL_COEFFICIENT") == "combined"


def test_per_class_weights_through_processing(run_alg, scene_tiny, tmp_path):
    _, manifest, _ = scene_tiny
    p = manifest["paths"]
    res = run_alg("calibrateweights", {
        "REFERENCE": p["uav_v"], "SOURCES": [p["landsat_v"], p["sentinel2_v"]],
        "METHOD": 1, "CLASSES": p["reference_grid"], "OUTPUT": str(tmp_path / "t.csv")})
    # reference_grid holds glacier ids: the UAV footprint covers glacier 1 and ground beside it
    assert res["CLASS_WEIGHTS"].startswith("0:") and ";1:" in res["CLASS_WEIGHTS"]
    rows = read_csv(str(tmp_path / "t.csv"))
    assert [r["class"] for r in rows] == ["all"] * 3 + ["0"] * 3 + ["1"] * 3
    out = str(tmp_path / "fused_classes.tif")
    run_alg("fuse", {"SOURCES": [p["landsat_v"], p["sentinel2_v"]], "WEIGHTS": res["WEIGHTS"],
                     "CLASSES": p["reference_grid"], "CLASS_WEIGHTS": res["CLASS_WEIGHTS"],
                     "OUTPUT": out})
    assert read_stack_info(out).count == 120


def test_bad_input_is_a_clear_error(run_alg, scene_tiny, tmp_path):
    _, manifest, _ = scene_tiny
    p = manifest["paths"]
    with pytest.raises(QgsProcessingException, match="holds 2 weight.* but 3 stack"):
        run_alg("fuse", {"SOURCES": [p["landsat_v"], p["sentinel2_v"]],
                         "AUXILIARY": p["sentinel1_v"], "WEIGHTS": "0.5,0.5",
                         "OUTPUT": str(tmp_path / "x.tif")})
    with pytest.raises(QgsProcessingException, match="OUTPUT_ERROR needs ERRORS"):
        run_alg("fuse", {"SOURCES": [p["landsat_v"], p["sentinel2_v"]], "WEIGHTS": "0.5,0.5",
                         "OUTPUT": str(tmp_path / "x.tif"),
                         "OUTPUT_ERROR": str(tmp_path / "xe.tif")})
    with pytest.raises(QgsProcessingException, match="dem.tif.*is not a date interval"):
        run_alg("calibrateweights", {"REFERENCE": p["uav_v"], "SOURCES": [p["dem"]],
                                     "OUTPUT": str(tmp_path / "t.csv")})


def test_calibration_refuses_a_satellite_stack_as_reference(run_alg, scene_tiny, tmp_path):
    """A dialog may preselect the first raster (a Landsat stack) as the UAV REFERENCE: refused."""
    p = scene_tiny[1]["paths"]
    table = str(tmp_path / "t.csv")
    with pytest.raises(QgsProcessingException, match=r"REFERENCE: .*landsat_v.* is a landsat stack"):
        run_alg("calibrateweights", {"REFERENCE": p["landsat_v"], "SOURCES": [p["sentinel2_v"]],
                                     "OUTPUT": table})
    with pytest.raises(QgsProcessingException, match="REFERENCE: .* is also one of the stacks"):
        run_alg("calibrateweights", {"REFERENCE": p["uav_v"],
                                     "SOURCES": [p["landsat_v"], p["uav_v"]], "OUTPUT": table})


def test_fuse_needs_weights_or_table(run_alg, scene_tiny, tmp_path):
    p = scene_tiny[1]["paths"]
    with pytest.raises(QgsProcessingException, match="WEIGHTS: give the weights"):
        run_alg("fuse", {"SOURCES": [p["landsat_v"], p["sentinel2_v"]],
                         "OUTPUT": str(tmp_path / "f.tif")})


def test_error_stacks_flow_from_temporalfilter_into_fuse(run_alg, tmp_path):
    """temporalfilter writes <output>_error.tif (σ kept, NaN where removed); fuse finds it and
    gives each fused value sqrt(Σ w² (σ_k² + e²)) / Σ w; without PIXEL_ERRORS σ_k alone."""
    from glacier_velocity.core.io.dates import Interval
    from glacier_velocity.core.io.grid import Grid
    from glacier_velocity.core.io.products import write_stack

    grid = Grid.from_bounds(500000, 4000000, 30, 4, 5, 32645)
    months = [Interval.month(2020, m) for m in range(1, 13)]
    va = np.full((12, 4, 5), 100.0, np.float32)
    va[5] = 300.0  # removed by the filter
    ea = np.full_like(va, 8.0)
    vb = np.full_like(va, 110.0)
    pa = write_stack(str(tmp_path / "a.tif"), grid, va, months, "landsat", "v")
    write_stack(str(tmp_path / "a_error.tif"), grid, ea, months, "error", "v")
    pb = write_stack(str(tmp_path / "b.tif"), grid, vb, months, "sentinel2", "v")
    fa = str(tmp_path / "fa.tif")
    res = run_alg("temporalfilter", {"INPUT": pa, "OUTPUT": fa})
    assert res["OUTPUT_ERROR"] == str(tmp_path / "fa_error.tif")
    assert read_stack_info(fa).metadata["ERROR_STACK"] == "fa_error.tif"
    _, fe = read_stack(res["OUTPUT_ERROR"])
    assert np.isnan(fe[5]).all() and np.all(fe[np.arange(12) != 5] == 8.0)
    out = {}
    for on in (True, False):
        f, e = str(tmp_path / f"f{on}.tif"), str(tmp_path / f"f{on}_error.tif")
        run_alg("fuse", {"SOURCES": [fa, pb], "WEIGHTS": "0.5,0.5", "ERRORS": "6,4",
                         "PIXEL_ERRORS": on, "INVERSE_VARIANCE": False, "OUTPUT": f,
                         "OUTPUT_ERROR": e})
        out[on] = read_stack(f)[1], read_stack(e)[1]
    np.testing.assert_allclose(out[True][0][0], 105.0)
    np.testing.assert_allclose(out[True][1][0], np.hypot(0.5 * 10.0, 0.5 * 4.0), rtol=1e-6)
    np.testing.assert_allclose(out[True][1][5], 4.0, rtol=1e-6)  # b alone where a was removed
    np.testing.assert_allclose(out[False][1][0], np.hypot(0.5 * 6.0, 0.5 * 4.0), rtol=1e-6)
    # inverse variance: a's weight scaled by 6² / (6² + 8²) = 0.36
    f = str(tmp_path / "ivw.tif")
    run_alg("fuse", {"SOURCES": [fa, pb], "WEIGHTS": "0.5,0.5", "ERRORS": "6,4", "OUTPUT": f})
    np.testing.assert_allclose(read_stack(f)[1][0], (0.18 * 100 + 0.5 * 110) / 0.68, rtol=1e-6)
