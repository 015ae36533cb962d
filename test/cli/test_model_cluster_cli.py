"""The inversion model through scripts/qgis-process with DASK_SCHEDULER=local:2 (its
correlations, both inversions and the pixel trends on two local worker processes started from
qgis_process, whose sys.executable is not a Python) gives the products of the run without it."""

import csv
import os

import numpy as np
import pytest
from osgeo import gdal

distributed = pytest.importorskip("distributed")
SENSORS = ("LANDSAT", "SENTINEL2", "SENTINEL1")


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _products(folder):
    """Every file under ``folder`` by its relative path."""
    return sorted(os.path.relpath(os.path.join(d, f), folder)
                  for d, _, files in os.walk(folder) for f in files)


def test_inversion_model_on_local_workers_gives_the_products_of_the_local_run(
        qgis_process, build_models, series_scene, tmp_path):
    folder, manifest, _ = series_scene
    bm = build_models
    inputs = {k: v for k, v in bm.sample_scene_inputs(folder, manifest).items()
              if k not in ("UAV", "STABLE")}  # not inputs of the inversion model
    # step 8: coarse pair products keep the two runs short; the inversion works on the 30 m grid
    inputs.update({f"{s}_STEP": 8 for s in SENSORS})
    ext = {"folder": "", "table": ".csv", "raster": ".tif"}
    runs = {}
    for where, scheduler in (("here", ""), ("local2", "local:2")):
        out = tmp_path / where
        out.mkdir()
        outputs = {f"{c}:{o}": str(out / (c + o[len("OUTPUT"):].lower() + ext[kind]))
                   for c, o, kind, _ in bm.INVERSION_OUTPUTS}
        args = bm.run_arguments(dict(inputs, DASK_SCHEDULER=scheduler) if scheduler else inputs,
                                outputs)
        proc = qgis_process("run", "glaciervelocity:imagepairstotrendsinversion", "--", *args,
                            timeout=1800)
        assert "Model processed OK" in proc.stdout
        runs[where] = out
    files = _products(runs["here"])
    assert files == _products(runs["local2"])
    assert sum(f.endswith(".tif") for f in files) > 100  # the pair products and the stacks
    for name in files:
        a, b = runs["here"] / name, runs["local2"] / name
        if name.endswith(".tif"):
            da, db = gdal.Open(str(a)), gdal.Open(str(b))
            assert np.array_equal(da.ReadAsArray(), db.ReadAsArray(), equal_nan=True), name
            da = db = None
        elif name.endswith(".csv"):
            assert _rows(a) == _rows(b), name
