"""One error through the chain in Processing: pairs with error bands -> cleanpair keeps them ->
monthlystacks writes the error stack beside the stack -> stableuncertainty and
referenceagreement check it -> pixeltrend and glaciertrend find it by name and weigh by it."""

import csv
import datetime as dt
import os
import shutil

import numpy as np
from qgis.core import QgsProcessingFeedback

from glacier_velocity.core.io.dates import Interval
from glacier_velocity.core.io.pixel_series import StackPixelReader
from glacier_velocity.core.io.products import (pair_band_index, read_stack, read_stack_info,
                                               write_pair_product, write_stack)
from glacier_velocity.core.io.raster import read_band

MONTH = Interval(dt.date(2020, 3, 1), dt.date(2020, 3, 31))


class Log(QgsProcessingFeedback):
    def __init__(self):
        super().__init__()
        self.lines = []

    def pushInfo(self, info):
        self.lines.append(info)


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def error_pairs(folder, model, n=5, seed=1):
    """``n`` pairs covering March 2020 exactly (truth: the month's mean), on the scene at 30 m,
    each with white noise of a per-pair and per-pixel sigma (4-40 m/yr) stated in its bands."""
    rng = np.random.default_rng(seed)
    grid = model.grid(30.0)
    vx, vy = model.velocity(grid, MONTH)
    paths = []
    for k in range(n):
        sigma = (rng.uniform(4, 20) * rng.uniform(1, 2, grid.shape)).astype(np.float32)
        p = os.path.join(folder, f"landsat_{k}.tif")
        write_pair_product(p, grid, vx + sigma * rng.standard_normal(grid.shape),
                           vy + sigma * rng.standard_normal(grid.shape), np.ones(grid.shape),
                           MONTH.start, MONTH.end, "landsat", errors=(sigma, sigma))
        paths.append(p)
    return grid, paths


def test_error_stack_through_monthlystacks_and_the_tables(run_alg, scene_tiny, tmp_path):
    """Measured: truth within 1.96 sigma of the monthly speed for 94.4 % of the pixels where the
    ice moves faster than 4 sigma (weighted mean of five pairs), and for 95 +- 3 % of the
    components on stable ground; the cleaned pairs keep their error bands and the stack made from
    them has its error stack too."""
    _, manifest, model = scene_tiny
    grid, pairs = error_pairs(str(tmp_path), model)
    ref = manifest["paths"]["reference_grid"]
    out, table = str(tmp_path / "m_v.tif"), str(tmp_path / "months.csv")
    log = Log()
    res = run_alg("monthlystacks", {"SOURCES": pairs, "REFERENCE": ref, "COMBINE": 1,
                                    "OUTPUT": out, "OUTPUT_VX": str(tmp_path / "m_vx.tif"),
                                    "OUTPUT_TABLE": table}, log)
    error = str(tmp_path / "m_v_error.tif")
    assert res["OUTPUT_ERROR"] == error and os.path.exists(str(tmp_path / "m_vx_error.tif"))
    assert read_stack_info(out).metadata["ERROR_STACK"] == "m_v_error.tif"
    assert [r["n_with_errors"] for r in rows(table)] == ["5"]
    info, v = read_stack(out)
    _, e = read_stack(error)
    truth = np.hypot(*model.velocity(info.grid, info.intervals[0]))
    # where the ice moves clearly faster than the noise (a speed near zero is the magnitude of
    # noise: biased, see stableuncertainty's help)
    fast = truth > 4 * e[0]
    assert fast.sum() > 500
    within = np.mean((np.abs(v[0] - truth) <= 1.96 * e[0])[fast])
    assert 0.92 <= within <= 0.98, within
    # the dock's reader finds the error stack and gives each band its error
    reader = StackPixelReader(out)
    series = reader.read_pixel(10, 10)
    assert series.errors is not None and np.isclose(series.errors[0], e[0, 10, 10])
    reader.close()

    # the tables: stable ground (truth 0) and the truth as a reference
    st = str(tmp_path / "stable.csv")
    run_alg("stableuncertainty", {"INPUT": [str(tmp_path / "m_vx.tif")],
                                  "STABLE": manifest["paths"]["stable"], "SAMPLE_SIZE": 0,
                                  "OUTPUT_TABLE": st})
    (r,) = rows(st)
    assert 0.92 <= float(r["within_196"]) <= 0.98 and float(r["mean_sigma"]) > 0
    truth_stack = write_stack(str(tmp_path / "truth.tif"), info.grid, truth[None],
                              info.intervals, "uav")
    ag = str(tmp_path / "agree.csv")
    run_alg("referenceagreement", {"INPUT": [out], "REFERENCE": truth_stack,
                                   "OUTPUT_TABLE": ag})
    pooled = [r for r in rows(ag) if r["ref_band"] == "0"][0]
    everywhere = np.mean(np.abs(v[0] - truth) <= 1.96 * e[0])
    assert abs(float(pooled["within_196"]) - everywhere) < 0.01

    # cleaning keeps the bands; a stack of cleaned pairs gets its error stack
    cleaned = str(tmp_path / "clean_0.tif")
    run_alg("cleanpair", {"INPUT": pairs[0], "OUTPUT": cleaned})
    assert pair_band_index(cleaned, "vx_error") == 5
    ok = np.isfinite(read_band(cleaned, 1))
    assert np.array_equal(ok, np.isfinite(read_band(cleaned, 5)))
    res = run_alg("monthlystacks", {"SOURCES": pairs, "REFERENCE": ref, "CLEAN": True,
                                    "OUTPUT": str(tmp_path / "c_v.tif")})
    assert res["OUTPUT_ERROR"] == str(tmp_path / "c_v_error.tif")


def test_trends_find_the_error_stack_by_name(run_alg, scene_tiny, tmp_path):
    """pixeltrend and glaciertrend weigh by the error stack beside the stack: the trend's sigma
    is finite on every computable pixel and the glacier classes stay right."""
    _, manifest, model = scene_tiny
    stack = str(tmp_path / "s2_v.tif")
    shutil.copy(manifest["paths"]["sentinel2_v"], stack)
    info, values = read_stack(stack)
    write_stack(str(tmp_path / "s2_v_error.tif"), info.grid,
                np.where(np.isfinite(values), 8.0, np.nan), info.intervals, "error")
    out = {k: str(tmp_path / f"{k}.tif") for k in ("trend", "p", "sig", "sigma")}
    log = Log()
    res = run_alg("pixeltrend", {"INPUT": stack, "OUTPUT_TREND": out["trend"],
                                 "OUTPUT_P": out["p"], "OUTPUT_SIGNIFICANT": out["sig"],
                                 "OUTPUT_SIGMA": out["sigma"]}, log)
    assert any("Error stack found beside the stack" in m for m in log.lines)
    assert any("weighted by 1/sigma" in m for m in log.lines)
    trend, sigma = read_band(out["trend"]), read_band(out["sigma"])
    assert np.array_equal(np.isfinite(trend), np.isfinite(sigma))
    assert res["N_COMPUTABLE"] == 100 * 100
    truth = read_band(manifest["paths"]["true_trend"])
    on = model.labels(model.grid()) > 0
    assert np.sqrt(np.mean((trend - truth)[on] ** 2)) < 6.0
    table, summary = str(tmp_path / "t.csv"), str(tmp_path / "s.csv")
    run_alg("glaciertrend", {"INPUT": stack, "GLACIERS": manifest["paths"]["glaciers"],
                             "MIN_AREA": 0.05, "OUTPUT_TABLE": table, "OUTPUT_SUMMARY": summary})
    for row, g in zip(rows(table), manifest["glaciers"]):
        assert row["class"].replace("significantly ", "") == g["expected_class"]
        assert float(row["trend_sigma"]) > 0
