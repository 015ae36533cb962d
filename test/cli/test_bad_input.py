"""The bad-input matrix of issue 14 (bad_input_matrix.py), run as users run the plugin.

Every case ends with a clear message (non-zero exit, the parameter or file named, no Python
traceback) or, where the input is merely empty, a successful run; no case leaves a partial output
or a temporary file, and no input changes. All cases run in one QGIS process (bad_input_runner.py
does what qgis_process does per case); the cases marked ``cli`` also run through
scripts/qgis-process. The SIGTERM case kills a real qgis_process run of ``correlate``.
"""

import datetime as dt
import glob
import hashlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from osgeo import gdal, osr

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PLUGINS = os.path.join(ROOT, ".build", "plugins")


def _load_matrix():
    spec = importlib.util.spec_from_file_location("bad_input_matrix",
                                                  os.path.join(HERE, "bad_input_matrix.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CASES


CASES = _load_matrix()


# ------------------------------------------------------------------ bad inputs

def _srs(epsg):
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    return srs.ExportToWkt()


def copy_raster(src, dst, crs=None, shift=0.0, metadata=None, descriptions=None, bands=None,
                keep_metadata=True, fill=None):
    """A modified copy of ``src``: ``crs`` WKT ('' = none), x shifted by ``shift`` m, metadata
    items set, band descriptions replaced, only ``bands`` (1-based), ``fill`` value everywhere."""
    ds = gdal.Open(src)
    bands = bands or list(range(1, ds.RasterCount + 1))
    out = gdal.GetDriverByName("GTiff").Create(dst, ds.RasterXSize, ds.RasterYSize, len(bands),
                                               gdal.GDT_Float32, ["COMPRESS=DEFLATE", "TILED=YES",
                                                                  "BLOCKXSIZE=64",
                                                                  "BLOCKYSIZE=64"])
    gt = list(ds.GetGeoTransform())
    gt[0] += shift
    out.SetGeoTransform(gt)
    wkt = ds.GetProjection() if crs is None else crs
    if wkt:
        out.SetProjection(wkt)
    meta = dict(ds.GetMetadata() or {}) if keep_metadata else {}
    meta.update(metadata or {})
    out.SetMetadata(meta)
    for i, b in enumerate(bands):
        arr = ds.GetRasterBand(b).ReadAsArray().astype(np.float32)
        if fill is not None:
            arr[:] = fill
        ob = out.GetRasterBand(i + 1)
        ob.SetNoDataValue(float("nan"))
        ob.WriteArray(arr)
        desc = ds.GetRasterBand(b).GetDescription()
        ob.SetDescription(descriptions[i] if descriptions else desc)
    out = None
    return dst


def truncate(src, dst, share=0.6):
    """A copy of ``src`` cut to ``share`` of its bytes (an interrupted download)."""
    with open(src, "rb") as f:
        data = f.read()
    with open(dst, "wb") as f:
        f.write(data[:int(len(data) * share)])
    return dst


def write_geojson(path, geometry_type, coordinates, epsg=32645):
    feature = {"type": "Feature", "properties": {"id": 1},
               "geometry": {"type": geometry_type, "coordinates": coordinates}}
    doc = {"type": "FeatureCollection", "features": [feature],
           "crs": {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{epsg}"}}}
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


@pytest.fixture(scope="session")
def bad_inputs(scene_tiny, tmp_path_factory):
    """``{placeholder: path}`` of the matrix: the scene, the bad inputs, two Landsat images."""
    from glacier_velocity.core.correlation.images import correlate_images

    scene = scene_tiny[0]
    bad = str(tmp_path_factory.mktemp("bad_inputs"))
    images = sorted(glob.glob(os.path.join(scene, "images", "LC08_*.tif")))
    l1, l2 = images[0], images[1]  # a month apart
    d1, d2 = (os.path.basename(p).split("_")[3] for p in (l1, l2))
    day = lambda d, n: (dt.datetime.strptime(d, "%Y%m%d") + dt.timedelta(n)).strftime("%Y%m%d")  # noqa: E731
    d3, d0 = day(d2, 16), day(d1, 16)  # the damaged image's date in batch/, in batch_bad/
    stack = os.path.join(scene, "stacks", "landsat_v.tif")
    s1 = os.path.join(scene, "stacks", "sentinel1_v.tif")
    j = lambda *p: os.path.join(bad, *p)  # noqa: E731
    pair = correlate_images(l1, l2, j("good_pair.tif"), window=32, step=8,
                            preprocess="none")["path"]
    copy_raster(pair, j("furlongs_pair.tif"), metadata={"UNITS": "furlongs/fortnight"})
    copy_raster(pair, j("nocrs_pair.tif"), crs="")
    copy_raster(stack, j("furlongs_stack.tif"), metadata={"UNITS": "furlongs/fortnight"})
    copy_raster(stack, j("kmh_stack.tif"), metadata={"UNITS": "km/h"})
    stack_ds = gdal.Open(stack)  # kept open while its bands are read
    descs = [stack_ds.GetRasterBand(b + 1).GetDescription() for b in range(24)]
    stack_ds = None
    copy_raster(stack, j("dup_stack.tif"), bands=list(range(1, 25)),
                descriptions=[descs[0]] + descs[:23])
    copy_raster(stack, j("unordered_stack.tif"), bands=list(range(1, 25)),
                descriptions=[descs[1], descs[0]] + descs[2:])
    copy_raster(stack, j("nocrs_stack.tif"), crs="", bands=list(range(1, 13)))
    copy_raster(stack, j("far_stack.tif"), shift=1e6)
    copy_raster(stack, j("othercrs_stack.tif"), crs=_srs(32646))
    copy_raster(s1, j("othercrs_s1.tif"), crs=_srs(32646))
    copy_raster(stack, j("short_stack.tif"), bands=list(range(1, 25)))
    copy_raster(stack, j("allnan_stack.tif"), bands=list(range(1, 13)), fill=np.nan)
    copy_raster(stack, j("copy_stack.tif"), bands=list(range(1, 13)))
    copy_raster(l2, j("othercrs_image.tif"), crs=_srs(32646))
    copy_raster(l1, j("geographic_image.tif"), crs=_srs(4326))
    copy_raster(l2, j("far_image.tif"), shift=1e6)
    copy_raster(l1, j("nodate_a.tif"), keep_metadata=False)
    copy_raster(l2, j("nodate_b.tif"), keep_metadata=False)
    copy_raster(l2, j(f"empty_{d2}.tif"), fill=np.nan)
    truncate(copy_raster(stack, j("full_stack.tif")), j("trunc_stack.tif"))
    truncate(copy_raster(l2, j("full_image.tif")), j("trunc_image.tif"))
    truncate(copy_raster(pair, j("full_pair.tif")), j("trunc_pair.tif"))
    truncate(j("full_pair.tif"), j("header_only.tif"), 0.01)
    os.makedirs(j("batch"))
    for p in (l1, l2):
        shutil.copy(p, j("batch", os.path.basename(p)))
    shutil.copy(j("trunc_image.tif"), j("batch", f"LC08_L1TP_140041_{d3}_{d3}_02_T1.tif"))
    os.makedirs(j("batch_bad"))
    shutil.copy(l1, j("batch_bad", os.path.basename(l1)))
    shutil.copy(j("trunc_image.tif"), j("batch_bad", f"LC08_L1TP_140041_{d0}_{d0}_02_T1.tif"))
    os.makedirs(j("pairs"))
    shutil.copy(pair, j("pairs", f"landsat_{d1}_{d2}.tif"))
    shutil.copy(j("trunc_pair.tif"), j("pairs", f"landsat_{d2}_{d3}.tif"))
    os.makedirs(j("pairs_bad"))
    shutil.copy(j("trunc_pair.tif"), j("pairs_bad", f"landsat_{d2}_{d3}.tif"))
    os.makedirs(j("empty"))
    with open(j("afile.txt"), "w") as f:
        f.write("a regular file: nothing can be created under it\n")
    _newer_algorithm_inputs(j, pair, stack, l1)
    x, y = 2_000_000.0, 1_000_000.0  # far outside the scene
    write_geojson(j("glaciers_far.geojson"), "Polygon",
                  [[[x, y], [x + 500, y], [x + 500, y + 500], [x, y + 500], [x, y]]])
    write_geojson(j("points.geojson"), "Point", [421000.0, 3328000.0])
    return {"scene": scene, "bad": bad, "file": j("afile.txt"), "L1": l1, "L2": l2,
            "D1": d1, "D2": d2, "D3": d3}


def _newer_algorithm_inputs(j, pair, stack, image):
    """Inputs of the cases of invertseries, importitslive, exportcube and closure: ITS_LIVE
    granules and a cube (good, truncated, without vy, in km/yr), a closure triplet, a vx stack
    on another grid, a folder of pairs holding one damaged product."""
    import netCDF4

    from glacier_velocity.core.sampledata.itslive import write_cube, write_granule

    rng = np.random.default_rng(3)
    gt = (420000.0, 120.0, 0.0, 3330000.0, 0.0, -120.0)
    vx, vy = rng.normal(80, 20, (20, 24)), rng.normal(5, 5, (20, 24))
    t0 = dt.datetime(2020, 5, 1)
    granule = write_granule(j("granule.nc"), vx, vy, t0, t0 + dt.timedelta(16), gt)
    truncate(granule, j("trunc_granule.nc"), 0.5)
    write_granule(j("kmyr_granule.nc"), vx, vy, t0, t0 + dt.timedelta(16), gt,
                  units="kilometer/year")
    shutil.copy(granule, j("novy_granule.nc"))
    with netCDF4.Dataset(j("novy_granule.nc"), "a") as nc:
        nc.renameVariable("vy", "vy_removed")
    os.makedirs(j("granules"))
    shutil.copy(granule, j("granules", "S2A_20200501_20200517.nc"))
    shutil.copy(j("trunc_granule.nc"), j("granules", "S2A_20200601_20200617.nc"))
    starts = [t0 + dt.timedelta(12 * i) for i in range(6)]
    cube = write_cube(j("cube.nc"), rng.normal(80, 20, (6, 20, 24)),
                      rng.normal(5, 5, (6, 20, 24)), starts,
                      [s + dt.timedelta(24) for s in starts], ["2A", "1A"] * 3, gt)
    truncate(cube, j("trunc_cube.nc"), 0.5)
    os.makedirs(j("triplet"))
    for name, (a, b) in {"ab": ("2020-01-05", "2020-02-06"), "bc": ("2020-02-06", "2020-03-09"),
                         "ac": ("2020-01-05", "2020-03-09")}.items():
        copy_raster(pair, j("triplet", f"{name}.tif"),
                    metadata={"START_DATE": a, "END_DATE": b, "SENSOR": "landsat"})
    truncate(j("triplet", "bc.tif"), j("trunc_bc.tif"))
    copy_raster(j("triplet", "bc.tif"), j("bc_gap.tif"),
                metadata={"START_DATE": "2020-02-10", "END_DATE": "2020-03-09"})
    copy_raster(stack, j("far_vx_stack.tif"), shift=1e6)
    os.makedirs(j("pairs_one_bad"))
    for a, b in (("20200105", "20200206"), ("20200121", "20200222"),
                 ("20200206", "20200309")):
        copy_raster(pair, j("pairs_one_bad", f"landsat_{a}_{b}.tif"),
                    metadata={"START_DATE": a, "END_DATE": b})
    shutil.copy(j("trunc_pair.tif"), j("pairs_one_bad", "landsat_20200309_20200410.tif"))


def _fill(value, places):
    if isinstance(value, str):
        for k, v in places.items():
            value = value.replace("{" + k + "}", v)
        return value
    if isinstance(value, dict):
        return {k: _fill(v, places) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, places) for v in value]
    return value


def _digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _inputs_digest(places):
    """Sizes and digests of the input files. QGIS itself may add ``.aux.xml`` statistics beside
    a raster it loads (GDAL's PAM): those are not the input and are left out."""
    files = [p for p in glob.glob(os.path.join(places["bad"], "**", "*"), recursive=True)
             if os.path.isfile(p) and not p.endswith(".aux.xml")]
    files += glob.glob(os.path.join(places["scene"], "stacks", "*.tif"))
    return {p: os.path.getsize(p) for p in files}, {p: _digest(p) for p in files
                                                   if p.endswith((".tif", ".txt"))}


def _prepare(cases, places, root):
    """The cases with their placeholders filled, each with its own ``{out}`` folder and old
    files made; returns them and the digests of the old files."""
    out, olds = [], {}
    for c in cases:
        folder = os.path.join(root, c["id"])
        os.makedirs(folder)
        filled = _fill(c, dict(places, out=folder))
        for old in filled["old"]:
            with open(old, "wb") as f:
                f.write(b"an old file that a failed run must leave as it was\n")
            olds[old] = _digest(old)
        filled["out"] = folder
        out.append(filled)
    return out, olds


def _check(case, ok, log, olds):
    """Assertion messages (empty when the case behaved)."""
    problems = []
    if (case["expect"] == "ok") != ok:
        problems.append(f"expected {case['expect']}, got {'ok' if ok else 'error'}")
    if "Traceback" in log:
        problems.append("a Python traceback was shown")
    for fragment in case["message"]:
        if fragment.lower() not in log.lower():
            problems.append(f"message lacks '{fragment}'")
    if "processing_" in log and case["id"].startswith("user-layer"):
        problems.append("the message names QGIS's temporary copy")
    for p in case["absent"]:
        if os.path.exists(p):
            problems.append(f"{p} exists")
    for p in case["present"]:
        if not os.path.exists(p):
            problems.append(f"{p} is missing")
    for p in case["old"]:
        if _digest(p) != olds[p]:
            problems.append(f"the old file {p} changed")
    leftovers = [os.path.relpath(p, case["out"]) for p in
                 glob.glob(os.path.join(case["out"], "**", "*gvpart*"), recursive=True)
                 + glob.glob(os.path.join(case["out"], "**", ".*gvpart*"), recursive=True)]
    if leftovers:
        problems.append(f"temporary files left: {leftovers}")
    return problems


def test_matrix_in_one_process(bad_inputs, tmp_path):
    """Every case of the matrix, in one QGIS process."""
    assert len(CASES) >= 45 and len({c["id"] for c in CASES}) == len(CASES)
    cases, olds = _prepare(CASES, bad_inputs, str(tmp_path / "cases"))
    before = _inputs_digest(bad_inputs)
    with open(tmp_path / "cases.json", "w") as f:
        json.dump(cases, f)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen",
               XDG_RUNTIME_DIR=os.path.join(ROOT, ".build", "runtime"),
               PYTHONPATH=os.pathsep.join([PLUGINS, os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(["/usr/bin/python3", os.path.join(HERE, "bad_input_runner.py"),
                           str(tmp_path / "cases.json"), str(tmp_path / "results.json")],
                          capture_output=True, text=True, timeout=900, env=env, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(tmp_path / "results.json") as f:
        results = json.load(f)
    failures = {}
    for case in cases:
        r = results[case["id"]]
        problems = _check(case, r["ok"], r["log"], olds)
        if problems:
            failures[case["id"]] = problems + [r["log"][-600:]]
    assert not failures, json.dumps(failures, indent=1)
    assert _inputs_digest(bad_inputs) == before, "an input changed"
    # the batch's index table has its good pair and a status row for the bad one
    with open(os.path.join(tmp_path, "cases", "batch-one-truncated-image", "index.csv")) as f:
        rows = f.read()
    assert rows.count("\n") == 3 and "damaged or truncated" in rows


def test_matrix_cli_cases(bad_inputs, qgis_process, tmp_path):
    """The cases marked ``cli`` through scripts/qgis-process: exit code, output, no traceback."""
    cli = [c for c in CASES if c["cli"]]
    assert len(cli) >= 6
    cases, olds = _prepare(cli, bad_inputs, str(tmp_path / "cli"))

    def run(case):
        args = ["run", f"glaciervelocity:{case['alg']}", "--"]
        for k, v in case["params"].items():  # a list: the parameter given once per value
            args += [f"{k}={x}" for x in (v if isinstance(v, list) else [v])]
        return qgis_process(*args, check=False, timeout=900)  # a loaded CI machine

    with ThreadPoolExecutor(3) as pool:  # start-up dominates: three at a time
        procs = list(pool.map(run, cases))
    failures = {}
    for case, proc in zip(cases, procs):
        log = proc.stdout + proc.stderr
        problems = _check(case, proc.returncode == 0, log, olds)
        if proc.returncode not in (0, 1):  # a crash is not a clear message
            problems.append(f"exit code {proc.returncode}")
        if problems:
            failures[case["id"]] = problems + [log[-600:]]
    assert not failures, json.dumps(failures, indent=1)


def _big_pair(folder):
    """Two 3000 x 3000 px textured images 16 days apart (a correlation of a minute or more)."""
    rng = np.random.default_rng(0)
    paths = []
    for day in ("20160105", "20160121"):
        path = os.path.join(folder, f"big_{day}.tif")
        ds = gdal.GetDriverByName("GTiff").Create(path, 3000, 3000, 1, gdal.GDT_Float32,
                                                  ["TILED=YES"])
        ds.SetGeoTransform((420000.0, 15.0, 0.0, 3330000.0, 0.0, -15.0))
        ds.SetProjection(_srs(32645))
        ds.GetRasterBand(1).WriteArray(rng.random((3000, 3000), np.float32))
        ds = None
        paths.append(path)
    return paths


def test_sigterm_leaves_no_product_and_the_next_run_cleans_up(bad_inputs, qgis_process,
                                                             tmp_path):
    """``correlate`` killed with SIGTERM while it writes: the destination keeps its old content,
    no product appears, and the next run into the folder removes the temporary file."""
    ref, sec = _big_pair(str(tmp_path))
    out = tmp_path / "out"
    out.mkdir()
    target = out / "pair.tif"
    target.write_bytes(b"old product\n")
    script = os.path.join(ROOT, "scripts", "qgis-process")
    proc = subprocess.Popen([script, "run", "glaciervelocity:correlate", "--",
                             f"REFERENCE={ref}", f"SECONDARY={sec}", "STEP=1", "WINDOW=64",
                             f"OUTPUT={target}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))
    deadline = time.time() + 300  # start-up and the input checks, on a loaded machine
    temps = []
    while time.time() < deadline and not temps and proc.poll() is None:
        time.sleep(0.5)
        temps = glob.glob(str(out / ".pair.gvpart-*.tif"))
    assert temps, "the run never started writing its temporary file"
    time.sleep(2)
    assert proc.poll() is None, "the correlation ended before it could be killed"
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert target.read_bytes() == b"old product\n"  # the old file is untouched
    assert sorted(os.listdir(out)) == sorted(["pair.tif"] + [os.path.basename(t) for t in temps])
    # the next run that writes into the folder removes the dead run's leftover
    l1, l2 = bad_inputs["L1"], bad_inputs["L2"]
    res = qgis_process("run", "glaciervelocity:correlate", "--", f"REFERENCE={l1}",
                       f"SECONDARY={l2}", "STEP=8", f"OUTPUT={out / 'small.tif'}")
    assert res.returncode == 0
    assert sorted(os.listdir(out)) == ["pair.tif", "small.tif"]


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
