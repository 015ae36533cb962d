"""The uncertainty group through Processing: the same numbers as the core, several stacks per run."""

import csv

import numpy as np
import pytest
from osgeo import gdal
from qgis.core import QgsProcessingException

from glacier_velocity.core.uncertainty.quality_metrics import coverage, reference_agreement, smoothness
from glacier_velocity.core.uncertainty.stable_ground import TABLE_COLUMNS, stable_uncertainty


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def close(table_rows, core_rows, keys):
    assert len(table_rows) == len(core_rows)
    for t, c in zip(table_rows, core_rows):
        for k in keys:
            if c[k] is None or (isinstance(c[k], float) and np.isnan(c[k])):
                assert t[k] in ("", "NULL")
            elif isinstance(c[k], str):
                assert t[k] == c[k]
            else:
                assert float(t[k]) == pytest.approx(c[k], rel=1e-6), k


def test_stable_uncertainty_comparison_table(run_alg, scene_tiny, tmp_path):
    _, manifest, _ = scene_tiny
    p = manifest["paths"]
    out = str(tmp_path / "stable.csv")
    run_alg("stableuncertainty", {"INPUT": [p["landsat_v"], p["sentinel2_v"]], "STABLE": p["stable"],
                                  "SAMPLE_SIZE": 500, "SEED": 4, "SPEED_THRESHOLD": 150.0,
                                  "OUTPUT_TABLE": out})
    rows = read_csv(out)
    assert list(rows[0]) == list(TABLE_COLUMNS)
    core = stable_uncertainty([p["landsat_v"], p["sentinel2_v"]], p["stable"], threshold=150.0,
                              sample_size=500, seed=4)
    close(rows, core, TABLE_COLUMNS)
    assert {r["product"] for r in rows} == {"landsat_v", "sentinel2_v"}
    # the stable speed mean (band 0) sits near the Rician mean of the sensor's noise, not its bias
    noise = manifest["sensor_noise"]
    mean = {r["product"]: float(r["mean"]) for r in rows if r["band"] == "0"}
    assert mean["landsat_v"] > mean["sentinel2_v"] > 0
    assert mean["landsat_v"] > 2 * noise["landsat"]["bias"]
    # the mask raster gives the same table as the polygons it was made from
    out2 = str(tmp_path / "stable_mask.csv")
    run_alg("stableuncertainty", {"INPUT": [p["landsat_v"]], "STABLE_MASK": p["stable_mask"],
                                  "SAMPLE_SIZE": 0, "OUTPUT_TABLE": out2})
    masked = read_csv(out2)
    assert len(masked) == 121 and masked[-1]["band"] == "0" and masked[0]["incorrect_share"] in ("", "NULL")


def test_stable_uncertainty_needs_stable_ground(run_alg, scene_tiny, tmp_path):
    _, manifest, _ = scene_tiny
    with pytest.raises(QgsProcessingException, match="give stable-ground polygons or a mask"):
        run_alg("stableuncertainty", {"INPUT": [manifest["paths"]["uav_v"]],
                                      "OUTPUT_TABLE": str(tmp_path / "x.csv")})


def test_coverage_smoothness_agreement(run_alg, scene_tiny, tmp_path):
    _, manifest, model = scene_tiny
    p = manifest["paths"]
    stacks = [p["landsat_v"], p["sentinel1_v"]]
    table, raster = str(tmp_path / "coverage.csv"), str(tmp_path / "months.tif")
    res = run_alg("coverage", {"INPUT": stacks, "GLACIERS": p["glaciers"], "OUTPUT_TABLE": table,
                               "OUTPUT": raster})
    assert res["OUTPUT"] == raster
    rows = read_csv(table)
    core = coverage(stacks, p["glaciers"])
    close(rows, core, ("product", "valid_pixels", "mask_pixels", "valid_ratio"))
    ds = gdal.Open(raster)
    assert ds.RasterCount == 2 and ds.GetRasterBand(1).GetDescription() == "landsat_v"
    months = ds.GetRasterBand(1).ReadAsArray()
    total = [r for r in rows if r["band"] == "0"]
    assert np.nanmean(months) / 120 == pytest.approx(float(total[0]["valid_ratio"]), rel=1e-6)
    # the sensors' gap fractions (Landsat 45 % with winter clouds, Sentinel-1 6 %)
    assert 0.4 < float(total[0]["valid_ratio"]) < 0.75 < 0.9 < float(total[1]["valid_ratio"])

    table = str(tmp_path / "smooth.csv")
    run_alg("smoothness", {"INPUT": stacks, "GLACIERS": p["glaciers"], "WINDOW": 1,
                           "OUTPUT_TABLE": table})
    close(read_csv(table), smoothness(stacks, p["glaciers"], 5),
          ("product", "n", "spatial_var", "residual_var", "noise_std", "noise_nmad"))

    table = str(tmp_path / "agreement.csv")
    run_alg("referenceagreement", {"INPUT": stacks + [p["truth_v"]], "REFERENCE": p["uav_v"],
                                   "OUTPUT_TABLE": table})
    rows = read_csv(table)
    core = reference_agreement(stacks + [p["truth_v"]], p["uav_v"])
    close(rows, core, ("product", "ref_band", "band", "n", "bias", "rmse", "nmad", "e"))
    pooled = {r["product"]: r for r in rows if r["ref_band"] == "0"}
    # the truth differs from the UAV by the UAV noise only (σ = 2 m/yr per component)
    assert abs(float(pooled["truth_v"]["bias"])) < 2 and float(pooled["truth_v"]["nmad"]) < 3
    assert float(pooled["landsat_v"]["rmse"]) > float(pooled["truth_v"]["rmse"])
