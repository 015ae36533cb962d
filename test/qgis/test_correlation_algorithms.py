"""The correlation algorithms through Processing: the public parameter contract, the sample
scene's pairs against truth, batch pairing with its index table, and clear errors."""

import os
import shutil

import numpy as np
import pytest
from qgis.core import QgsProcessingException, QgsVectorLayer

from glacier_velocity.core.io.dates import DAYS_PER_YEAR, Interval, parse_date
from glacier_velocity.core.io.grid import Grid
from glacier_velocity.core.io.products import read_pair_info, read_pair_product, write_pair_product
from glacier_velocity.core.io.raster import raster_grid, read_band, write_raster


def test_public_parameter_names(provider):
    alg = provider.algorithm("correlate")
    names = {p.name() for p in alg.parameterDefinitions()}
    assert {"REFERENCE", "SECONDARY", "WINDOW", "STEP", "START_DATE", "END_DATE", "SENSOR",
            "OUTPUT"} <= names
    assert alg.parameterDefinition("WINDOW").defaultValue() == 32
    assert alg.parameterDefinition("STEP").defaultValue() == 2
    assert alg.groupId() == "correlation"
    batch = provider.algorithm("correlatebatch")
    assert {"SOURCES", "FOLDER", "MIN_DAYS", "MAX_DAYS", "OUTPUT", "OUTPUT_TABLE"} <= {
        p.name() for p in batch.parameterDefinitions()}
    assert batch.groupId() == "correlation"


def test_correlate_sample_scene_pair(run_alg, scene_tiny, tmp_path):
    _, manifest, model = scene_tiny
    pair = next(p for p in manifest["pairs"] if p["sensor"] == "landsat")
    out = str(tmp_path / "landsat.tif")
    res = run_alg("correlate", {"REFERENCE": pair["reference"], "SECONDARY": pair["secondary"],
                                "WINDOW": 32, "STEP": 4, "OUTPUT": out})
    assert res["OUTPUT"] == out and res["VALID_SHARE"] > 0.5 and res["MEDIAN_SNR"] > 0.9
    info, d = read_pair_product(out)
    assert info.sensor == "landsat" and str(info.interval) == f"{pair['start']}/{pair['end']}"
    assert info.grid.dx == 4 * 15.0
    px_speed = 15.0 / (info.baseline_days / DAYS_PER_YEAR)
    stable = model.stable_mask(info.grid) & np.isfinite(d["vx"])
    assert abs(np.median(d["vx"][stable])) < 0.01 * px_speed
    assert abs(np.median(d["vy"][stable])) < 0.01 * px_speed
    # the fastest glacier (150 m/yr) is seen moving along its bearing (200 degrees)
    tvx, tvy = model.velocity(info.grid, Interval(parse_date(pair["start"]),
                                                  parse_date(pair["end"])))
    fast = (model.labels(info.grid) == 1) & (np.hypot(tvx, tvy) > 100)
    bearing = np.degrees(np.arctan2(np.nanmedian(d["vx"][fast]), np.nanmedian(d["vy"][fast])))
    assert bearing % 360 == pytest.approx(200, abs=5)


def test_correlate_options_and_given_dates(run_alg, scene_tiny, tmp_path):
    _, manifest, _ = scene_tiny
    pair = next(p for p in manifest["pairs"] if p["sensor"] == "sentinel1")
    ref = str(tmp_path / "a.tif")
    sec = str(tmp_path / "b.tif")
    shutil.copy(pair["reference"], ref)  # names without dates: the dates must be given
    shutil.copy(pair["secondary"], sec)
    out = str(tmp_path / "s1.tif")
    with pytest.raises(QgsProcessingException, match="No acquisition date"):
        run_alg("correlate", {"REFERENCE": ref, "SECONDARY": sec, "OUTPUT": out})
    res = run_alg("correlate", {"REFERENCE": ref, "SECONDARY": sec, "START_DATE": pair["start"],
                                "END_DATE": pair["end"], "SENSOR": "sentinel1", "WINDOW": 48,
                                "WINDOW_ROWS": 32, "STEP": 5, "PREPROCESS": 0, "MIN_SNR": 0.3,
                                "OUTPUT": out})
    info, d = read_pair_product(out)
    assert info.sensor == "sentinel1" and info.metadata["PREPROCESS"] == "log"
    assert info.metadata["WINDOW"] == "32x48" and info.grid.dx == 50.0
    assert np.all(d["snr"][np.isfinite(d["vx"])] >= 0.3)
    assert 0.3 < res["VALID_SHARE"] < 1.0


def test_correlate_reports_bad_geometry(run_alg, tmp_path):
    rng = np.random.default_rng(0)
    img = rng.random((64, 64)).astype(np.float32)
    a = write_raster(str(tmp_path / "a_20200101.tif"), Grid.from_bounds(0, 64, 1, 64, 64, 32632),
                     img)
    b = write_raster(str(tmp_path / "b_20200201.tif"),
                     Grid.from_bounds(0, 64, 1, 64, 64, 32633), img)
    with pytest.raises(QgsProcessingException, match="reproject"):
        run_alg("correlate", {"REFERENCE": a, "SECONDARY": b,
                              "OUTPUT": str(tmp_path / "o.tif")})


def test_correlatebatch_folder_and_index(run_alg, scene_tiny, tmp_path):
    _, manifest, _ = scene_tiny
    images = tmp_path / "images"
    images.mkdir()
    for p in manifest["pairs"]:
        if p["sensor"] == "sentinel2":
            for key in ("reference", "secondary"):
                shutil.copy(p[key], images / os.path.basename(p[key]))
    out = tmp_path / "pairs"
    table = str(tmp_path / "index.csv")
    res = run_alg("correlatebatch", {"FOLDER": str(images), "MIN_DAYS": 20, "MAX_DAYS": 40,
                                     "WINDOW": 32, "STEP": 8, "OUTPUT": str(out),
                                     "OUTPUT_TABLE": table})
    assert res["PAIRS"] == 2
    layer = QgsVectorLayer(table, "index", "ogr")
    rows = [f.attributes() for f in layer.getFeatures()]
    fields = [f.name() for f in layer.fields()]
    assert len(rows) == 2 and "median_snr" in fields and "valid_share" in fields
    by_name = {r[fields.index("pair")]: r for r in rows}
    summer = by_name["sentinel2_20200703_20200802"]
    winter = by_name["sentinel2_20200105_20200204"]
    assert int(summer[fields.index("baseline_days")]) == 30
    assert float(summer[fields.index("median_snr")]) > 0.9
    # the winter pair has clouds in its secondary image: a lower median SNR
    assert float(winter[fields.index("median_snr")]) < float(summer[fields.index("median_snr")])
    for r in rows:
        path = r[fields.index("path")]
        assert os.path.exists(path) and read_pair_info(path).sensor == "sentinel2"
        assert raster_grid(path).dx == 80.0
        assert np.isfinite(read_band(path, 1)).mean() > 0.5


def test_correlatebatch_needs_pairs(run_alg, scene_tiny, tmp_path):
    _, manifest, _ = scene_tiny
    one = manifest["pairs"][0]["reference"]
    with pytest.raises(QgsProcessingException, match="No pair"):
        run_alg("correlatebatch", {"SOURCES": [one], "OUTPUT": str(tmp_path / "o"),
                                   "OUTPUT_TABLE": str(tmp_path / "t.csv")})
    with pytest.raises(QgsProcessingException, match="give images"):
        run_alg("correlatebatch", {"OUTPUT": str(tmp_path / "o"),
                                   "OUTPUT_TABLE": str(tmp_path / "t.csv")})


def test_closure_algorithm(run_alg, tmp_path):
    """Three pair products (any order) -> closure raster and statistics table."""
    grid = Grid.from_bounds(500000, 5000000, 40.0, 20, 30, 32632)
    paths = []
    for name, start, end, extra in (("ac", "2020-01-01", "2020-01-31", 0.05),
                                    ("ab", "2020-01-01", "2020-01-11", 0.0),
                                    ("bc", "2020-01-11", "2020-01-31", 0.0)):
        days = (parse_date(end) - parse_date(start)).days
        vx = np.full(grid.shape, 365.25) + extra * 10.0 / (days / DAYS_PER_YEAR)
        paths.append(write_pair_product(str(tmp_path / f"{name}.tif"), grid, vx,
                                        np.zeros(grid.shape), np.ones(grid.shape), start, end,
                                        "sentinel2", {"PIXEL_M": "10"}))
    table = str(tmp_path / "closure.csv")
    out = str(tmp_path / "closure.tif")
    res = run_alg("closure", {"SOURCES": paths, "OUTPUT": out, "OUTPUT_TABLE": table})
    layer = QgsVectorLayer(table, "closure", "ogr")
    fields = [f.name() for f in layer.fields()]
    rows = [f.attributes() for f in layer.getFeatures()]
    del layer  # a layer left to the garbage collector outlives QGIS and crashes it at exit
    assert len(rows) == 1 and rows[0][fields.index("region")] == "all"
    assert float(rows[0][fields.index("median_closure_px")]) == pytest.approx(0.05, abs=1e-4)
    assert float(rows[0][fields.index("valid_share")]) == 1.0
    assert res["OUTPUT"] == out
    assert np.nanmedian(read_band(out, 1)) == pytest.approx(0.5, abs=1e-3)  # metres east
    with pytest.raises(QgsProcessingException, match="triplet"):
        run_alg("closure", {"SOURCES": [paths[0], paths[0], paths[1]], "OUTPUT": out,
                            "OUTPUT_TABLE": table})
