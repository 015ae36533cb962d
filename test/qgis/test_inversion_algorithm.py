"""glaciervelocity:invertseries through Processing: pairs from a folder, pair errors from a CSV
table, the error stack beside the speed stack, the per-band table, and clear errors."""

import csv
import os

import numpy as np
import pytest

from glacier_velocity.core.io.grid import Grid
from glacier_velocity.core.io.products import read_stack, write_pair_product
from glacier_velocity.core.io.raster import open_raster
from glacier_velocity.core.sampledata.pair_series import pair_series


def test_invertseries_from_a_folder_with_an_errors_table(run_alg, tmp_path):
    from qgis.core import QgsVectorLayer

    series = pair_series(size=8, years=1, n_pairs=90, seed=2)
    folder = tmp_path / "pairs"
    series.write(str(folder))
    errors = tmp_path / "errors.csv"
    with open(errors, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["sensor", "displacement_error"])
        w.writerows(series.displacement_errors().items())
    out, table = str(tmp_path / "inverted.tif"), str(tmp_path / "bands.csv")
    result = run_alg("invertseries", {"FOLDER": str(folder), "WEIGHTS_TABLE": str(errors),
                                      "OUTPUT": out, "OUTPUT_TABLE": table})
    assert result["OUTPUT_ERROR"] == str(tmp_path / "inverted_error.tif")
    assert open_raster(out).GetMetadata()["ERROR_STACK"] == "inverted_error.tif"
    assert result["REGULARISATION_USED"] > 0
    info, v = read_stack(out)
    _, err = read_stack(result["OUTPUT_ERROR"])
    truth = np.stack([np.hypot(*series.interval_truth(iv)) for iv in info.intervals])
    assert info.count == 12 and np.sqrt(np.nanmean((v - truth) ** 2)) < 10.0
    assert 0.85 < np.mean(np.abs(v - truth)[np.isfinite(v)] <= 1.96 * err[np.isfinite(v)])
    rows = list(QgsVectorLayer(table, "t", "ogr").getFeatures())
    assert [r["interval"] for r in rows] == [str(iv) for iv in info.intervals]
    assert all(int(r["n_pairs"]) > 0 for r in rows)


def test_invertseries_bad_inputs(run_alg, tmp_path):
    from qgis.core import QgsProcessingException

    paths = []
    for k, epsg in enumerate((32645, 32646)):
        grid = Grid.from_bounds(420000, 3330000, 30, 4, 4, epsg)
        v = np.full((4, 4), 50.0, np.float32)
        paths.append(str(tmp_path / f"p{k}.tif"))
        write_pair_product(paths[-1], grid, v, v, v, "2020-01-01", "2020-02-10", "landsat")
    out = str(tmp_path / "v.tif")
    with pytest.raises(QgsProcessingException, match="several CRS.*REFERENCE"):
        run_alg("invertseries", {"SOURCES": paths, "OUTPUT": out})
    with pytest.raises(QgsProcessingException, match="1 pair product.s. given, at least 2"):
        run_alg("invertseries", {"SOURCES": paths[:1], "OUTPUT": out})
    with pytest.raises(QgsProcessingException, match="No pair overlaps"):
        run_alg("invertseries", {"SOURCES": paths, "REFERENCE": paths[0], "OUTPUT": out,
                                 "START_DATE": "2022-01-01"})
    assert not os.path.exists(out)


def test_every_sensor_inverted_then_gapfilled_as_the_shipped_model_chains(run_alg, tmp_path):
    """The inversion model's chain on pairs: one folder per sensor (FOLDERS), a Sentinel-1 only
    inversion, the gap filling of the first by the second; holes cut in the joint series come
    back close to the truth."""
    series = pair_series(size=10, years=1, n_pairs=120, seed=4)
    paths = series.write(str(tmp_path / "all"))
    folders = {}
    for p in paths:
        sensor = os.path.basename(p).split("_")[0]
        folders.setdefault(sensor, tmp_path / sensor).mkdir(exist_ok=True)
        os.replace(p, folders[sensor] / os.path.basename(p))
    joint, s1 = str(tmp_path / "joint.tif"), str(tmp_path / "s1.tif")
    run_alg("invertseries", {"FOLDERS": [str(f) for f in folders.values()], "OUTPUT": joint})
    run_alg("invertseries", {"FOLDER": str(folders["sentinel1"]), "OUTPUT": s1})
    info, v = read_stack(joint)
    holed = str(tmp_path / "holed.tif")
    from glacier_velocity.core.io.products import write_stack
    cut = v.copy()
    cut[:, :3, :3] = np.nan
    write_stack(holed, info.grid, cut, info.intervals, "landsat+sentinel1+sentinel2", "v")
    filled = str(tmp_path / "filled.tif")
    run_alg("gapfill", {"FUSED": holed, "AUXILIARY": s1, "WINDOW": 5, "OUTPUT": filled})
    _, f = read_stack(filled)
    truth = np.stack([np.hypot(*series.interval_truth(iv)) for iv in info.intervals])
    assert np.isfinite(f[:, :3, :3]).all()
    assert np.sqrt(np.mean((f - truth)[:, :3, :3] ** 2)) < 25.0
    assert info.count == 12 and info.sensor == "landsat+sentinel1+sentinel2"
