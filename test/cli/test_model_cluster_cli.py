"""The inversion model through scripts/qgis-process with DASK_SCHEDULER=local:2 (its
correlations, both inversions and the pixel trends on two local worker processes started from
qgis_process, whose sys.executable is not a Python) gives the products of the run without it.

Not bit for bit: the workers' pair products equal those of any plain Python process bit for bit
(test/core/test_cluster.py), but inside qgis_process (and the QGIS desktop) numpy's BLAS calls
resolve to GSL's reference CBLAS, which the QGIS program links before OpenBLAS (the same run in
plain Python with LD_PRELOAD=libgslcblas.so.0 gives qgis_process's products bit for bit), so the
local run there differs from the workers by float rounding (typically 4e-3 m/yr on the tiny
scene's pair products, about 1e-7 px; up to 1.3 m/yr at a handful of windows where an iteration
of the correlator branches), which the robust inversion's reweighting carries downstream (at most
0.16 m/yr on its stacks, 0.3 m/yr per decade on the trends, the significance masks identical).
The tolerances below allow a few times those."""

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
                  for d, _, files in os.walk(folder) for f in files if not f.endswith(".aux.xml"))


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
            x, y = da.ReadAsArray().astype(float), db.ReadAsArray().astype(float)
            da = db = None
            assert np.array_equal(np.isnan(x), np.isnan(y)), name
            diff = np.abs(x - y)[np.isfinite(x)]
            assert diff.max(initial=0.0) <= _tolerance(name), name
            assert np.mean(diff <= 0.01) >= 0.99, name  # rounding, nearly everywhere
        elif name.endswith(".csv"):
            ra, rb = _rows(a), _rows(b)
            assert [r.keys() for r in ra] == [r.keys() for r in rb], name
            for r, q in zip(ra, rb):
                for key in r:
                    try:
                        assert abs(float(r[key]) - float(q[key])) <= 0.02 * max(
                            1.0, abs(float(r[key]))), (name, key)
                    except ValueError:
                        assert r[key] == q[key], (name, key)


def _tolerance(name):
    """Largest difference allowed in a raster (its units): see the module docstring."""
    if name.endswith("significant.tif"):
        return 0.0
    if name.endswith("_p.tif"):
        return 0.02
    if "_pairs" in name:
        return 5.0  # m/yr, a few windows (below: 99 % of the values within 0.01)
    return 1.0  # m/yr (stacks), m/yr per decade (trends)
