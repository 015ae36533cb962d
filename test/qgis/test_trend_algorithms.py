"""The trend algorithms through Processing on the sample scene: contracts, numbers vs truth."""

import csv

import numpy as np
import pytest
from qgis.core import QgsProcessingException

from glacier_velocity.core.io.raster import read_band, read_bands

MIN_AREA = 0.05  # km²: the tiny scene's glaciers are 0.07-0.5 km²


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_pixel_trend_contract(run_alg, scene_tiny, tmp_path):
    _, manifest, model = scene_tiny
    out = {k: str(tmp_path / f"{k}.tif") for k in ("trend", "p", "sig", "sen", "lo", "hi")}
    res = run_alg("pixeltrend", {
        "INPUT": manifest["paths"]["sentinel2_v"], "METHOD": 0, "ALPHA": 0.05, "MIN_YEARS": 5,
        "OUTPUT_TREND": out["trend"], "OUTPUT_P": out["p"], "OUTPUT_SIGNIFICANT": out["sig"],
        "OUTPUT_TREND_SEN": out["sen"], "OUTPUT_CI_LOW": out["lo"], "OUTPUT_CI_HIGH": out["hi"]})
    assert res["OUTPUT_TREND"] == out["trend"] and res["N_COMPUTABLE"] == 100 * 100
    sig, p = read_band(out["sig"]), read_band(out["p"])
    assert set(np.unique(sig)) <= {0.0, 1.0} and res["N_SIGNIFICANT"] == np.sum(sig == 1)
    assert np.all((p >= 0) & (p <= 1))
    truth = read_band(manifest["paths"]["true_trend"])
    on = model.labels(model.grid()) > 0
    assert np.sqrt(np.mean((read_band(out["trend"]) - truth)[on] ** 2)) < 6.0
    assert np.sqrt(np.mean((read_band(out["sen"]) - truth)[on] ** 2)) < 6.0
    assert np.all(read_band(out["lo"]) <= read_band(out["hi"]))


def test_glacier_trend_classes(run_alg, scene_tiny, tmp_path):
    _, manifest, _ = scene_tiny
    table, summary = str(tmp_path / "t.csv"), str(tmp_path / "s.csv")
    run_alg("glaciertrend", {"INPUT": manifest["paths"]["sentinel2_v"],
                             "GLACIERS": manifest["paths"]["glaciers"],
                             "DEM": manifest["paths"]["dem"], "MIN_AREA": MIN_AREA,
                             "OUTPUT_TABLE": table, "OUTPUT_SUMMARY": summary})
    for row, g in zip(rows(table), manifest["glaciers"]):
        assert row["class"].replace("significantly ", "") == g["expected_class"]
        assert float(row["ci_low"]) <= g["true_trend_mean"] <= float(row["ci_high"])
    groups = {r["group"]: r for r in rows(summary)}
    assert float(groups["all"]["share_accelerating_pct"]) == 25.0
    assert groups["S"]["n_accelerating"] == "1"  # glacier 1 faces 200°


def test_glacier_trend_bad_min_area(run_alg, scene_tiny, tmp_path):
    _, manifest, _ = scene_tiny
    with pytest.raises(QgsProcessingException, match="MIN_AREA"):
        run_alg("glaciertrend", {"INPUT": manifest["paths"]["truth_v"],
                                 "GLACIERS": manifest["paths"]["glaciers"], "MIN_AREA": 5.0,
                                 "OUTPUT_TABLE": str(tmp_path / "t.csv"),
                                 "OUTPUT_SUMMARY": str(tmp_path / "s.csv")})


def test_monthly_trend_and_seasonal_cycle(run_alg, scene_tiny, tmp_path):
    _, manifest, model = scene_tiny
    table, raster = str(tmp_path / "m.csv"), str(tmp_path / "m.tif")
    run_alg("monthlytrend", {"INPUT": manifest["paths"]["truth_v"],
                             "GLACIERS": manifest["paths"]["glaciers"], "MIN_AREA": MIN_AREA,
                             "OUTPUT_TABLE": table, "OUTPUT_RASTER": raster})
    acc = [r for r in rows(table) if r["id"] == "1"]
    july, january = float(acc[6]["trend"]), float(acc[0]["trend"])
    assert july > 1.4 * january > 0  # the summer speed grows faster in m/yr
    assert read_bands(raster).shape == (12, 100, 100)
    table = str(tmp_path / "c.csv")
    res = run_alg("seasonalcycle", {"INPUT": manifest["paths"]["truth_v"], "OUTPUT_TABLE": table,
                                    "OUTPUT_MEAN": str(tmp_path / "mean.tif")})
    cycle = rows(table)  # no polygons: the whole raster is one region
    assert [r["id"] for r in cycle] == ["all"] * 12
    peak = max(cycle, key=lambda r: float(r["anomaly_pct"]))
    assert peak["month_name"] == "July" and 20 < float(peak["anomaly_pct"]) < 30
    assert read_bands(res["OUTPUT_MEAN"]).shape == (12, 100, 100)


def test_attribute_correlation(run_alg, scene_tiny, tmp_path):
    _, manifest, _ = scene_tiny
    table, corr = str(tmp_path / "a.csv"), str(tmp_path / "c.csv")
    res = run_alg("attributecorrelation", {
        "GLACIERS": manifest["paths"]["glaciers"], "DEM": manifest["paths"]["dem"],
        "INPUT": manifest["paths"]["truth_v"], "MIN_AREA": MIN_AREA, "GLACIER_ID": "Steady glacier",
        "OUTPUT_TABLE": table, "OUTPUT_CORRELATION": corr})
    for row, g in zip(rows(table), manifest["glaciers"]):
        assert float(row["slope_mean"]) == pytest.approx(g["slope"], abs=0.7)
        assert abs((float(row["aspect_deg"]) - g["bearing"] + 180) % 360 - 180) < 2
    table_rows = rows(corr)
    assert table_rows[-1]["scope"] == "pixels of Steady glacier"
    assert {r["x"] for r in table_rows} >= {"log10_area", "slope_mean", "northness", "eastness"}
    assert "V_PER_DEGREE" in res
    with pytest.raises(QgsProcessingException, match="GLACIER_ID"):
        run_alg("attributecorrelation", {
            "GLACIERS": manifest["paths"]["glaciers"], "DEM": manifest["paths"]["dem"],
            "INPUT": manifest["paths"]["truth_v"], "MIN_AREA": MIN_AREA, "GLACIER_ID": "nope",
            "OUTPUT_TABLE": table, "OUTPUT_CORRELATION": corr})
