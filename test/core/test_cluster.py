"""Running on a real Dask cluster (core.cluster): a scheduler and worker processes started here on
127.0.0.1, without the plugin on their path, give the local run's products; a worker killed in the
middle of a batch costs nothing; bad set-ups are clear errors."""

import datetime as dt
import glob
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile

import numpy as np
import pytest

from glacier_velocity.core import cluster
from glacier_velocity.core.correlation import images as IC
from glacier_velocity.core.correlation.pairing import form_pairs
from glacier_velocity.core.errors import InputError
from glacier_velocity.core.io.products import read_pair_product
from glacier_velocity.core.io.raster import write_raster
from glacier_velocity.core.io.grid import Grid
from glacier_velocity.core.sampledata.scene import band_limited_noise, render_pair_images

distributed = pytest.importorskip("distributed")
OPTIONS = dict(window=32, step=4, preprocess="none")


# ------------------------------------------------------------------ a cluster of processes

class ProcessCluster:
    """``dask-scheduler`` and ``dask-worker`` processes on 127.0.0.1 (no nanny: killing a worker
    loses it), started in a folder where the plugin is not importable."""

    def __init__(self, folder, workers=2, env=None, user=None):
        self.folder = folder
        os.makedirs(folder, exist_ok=True)
        self.procs = {}
        base = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        sched_file = os.path.join(folder, "scheduler.json")
        self.scheduler = subprocess.Popen(
            ["dask-scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--dashboard-address", "127.0.0.1:0",
             "--scheduler-file", sched_file], cwd=folder, env=base,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait(lambda: os.path.exists(sched_file) and os.path.getsize(sched_file) > 0, 30)
        time.sleep(0.2)
        with open(sched_file) as f:
            self.address = json.load(f)["address"]
        self.scratch = []
        for k in range(workers):
            local = os.path.join(folder, f"w{k}")
            if user:  # a folder another user can enter (pytest's are root's only)
                local = tempfile.mkdtemp(prefix="gv-worker-")
                os.chmod(local, 0o777)
                self.scratch.append(local)
            os.makedirs(local, exist_ok=True)
            cmd = ["dask-worker", self.address, "--nthreads", "1", "--no-nanny", "--name",
                   f"w{k}", "--host", "127.0.0.1", "--no-dashboard", "--local-directory", local]
            if user:
                cmd = ["runuser", "-u", user, "--"] + cmd
            self.procs[f"w{k}"] = subprocess.Popen(
                cmd, cwd=local, env=dict(base, **(env or {})), stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
        with distributed.Client(self.address, timeout=20) as client:
            client.wait_for_workers(workers, timeout=60)
            self.worker_addresses = {info["name"]: addr for addr, info in
                                     client.scheduler_info()["workers"].items()}

    def kill(self, name):
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait()

    def close(self):
        for p in list(self.procs.values()) + [self.scheduler]:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        for d in self.scratch:
            shutil.rmtree(d, ignore_errors=True)


def _wait(predicate, timeout):
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "cluster not ready"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("cluster"))
    c = ProcessCluster(folder)
    yield c
    c.close()


# ------------------------------------------------------------------ a batch of pairs

def write_batch(folder, n_images, shape=(160, 160), seed=0):
    """``n_images`` textures moving 0.4 px east per 10 days; every consecutive two form a pair."""
    rng = np.random.default_rng(seed)
    o = 3
    fine = band_limited_noise((shape[0] * o, shape[1] * o), rng, 0.3 / o)
    g = Grid.from_bounds(500000, 5000000, 10.0, shape[0], shape[1], 32632)
    paths = []
    for k in range(n_images):
        _, img = render_pair_images(fine, np.full(fine.shape, 0.4 * k * o), np.zeros(fine.shape), o)
        img = img + 0.01 * img.std() * rng.standard_normal(img.shape)
        day = dt.date(2020, 1, 1) + dt.timedelta(days=10 * k)
        paths.append(write_raster(os.path.join(folder, f"img_{day:%Y%m%d}.tif"), g,
                                  img.astype(np.float32)))
    return form_pairs(paths, 5, 15)


def same_products(rows_a, rows_b):
    assert [r["pair"] for r in rows_a] == [r["pair"] for r in rows_b]
    for a, b in zip(rows_a, rows_b):
        assert a["status"] == b["status"] == "ok"
        pa, pb = read_pair_product(a["path"])[1], read_pair_product(b["path"])[1]
        for band in ("vx", "vy", "v", "snr"):
            assert np.array_equal(pa[band], pb[band], equal_nan=True), (a["pair"], band)


def test_workers_get_the_core_without_the_plugin_and_match_the_local_run(dask_cluster,
                                                                         tmp_path):
    with distributed.Client(dask_cluster.address, timeout=10) as client:
        # before the run: the workers cannot import the plugin
        found = client.run(lambda: importlib.util.find_spec("glacier_velocity") is not None)
    assert set(found.values()) == {False}
    pairs = write_batch(str(tmp_path), 7)
    assert len(pairs) == 6
    local = IC.correlate_batch(pairs, str(tmp_path / "local"), **OPTIONS)
    remote = IC.correlate_batch(pairs, str(tmp_path / "remote"), scheduler=dask_cluster.address,
                                **OPTIONS)
    same_products(local, remote)
    assert {r["worker"] for r in local} == {"local"}
    assert {r["worker"] for r in remote} <= set(dask_cluster.worker_addresses.values())
    assert len({r["worker"] for r in remote}) == 2  # both workers took pairs
    # 0.4 px east per 10 days at 10 m pixels = 4 m / 10 days
    assert abs(np.nanmedian(read_pair_product(remote[0]["path"])[1]["vx"]) - 0.4 * 365.25) < 1.0
    assert not glob.glob(str(tmp_path / "remote" / ".*"))


def test_a_worker_killed_mid_run_costs_nothing(tmp_path):
    c = ProcessCluster(str(tmp_path / "cluster"))
    try:
        pairs = write_batch(str(tmp_path), 13, shape=(256, 256), seed=1)
        out = tmp_path / "out"
        seen = {}

        def killer():
            _wait(lambda: len(glob.glob(str(out / "*.tif"))) >= 2, 120)
            seen["at_kill"] = len(glob.glob(str(out / "*.tif")))
            seen["parts"] = glob.glob(str(out / ".*.part.tif"))
            c.kill("w0")

        t = threading.Thread(target=killer)
        t.start()
        rows = IC.correlate_batch(pairs, str(out), scheduler=c.address, **OPTIONS)
        t.join()
        assert seen["at_kill"] < len(pairs)  # killed while pairs were left
        assert c.procs["w0"].poll() is not None
        assert [r["status"] for r in rows] == ["ok"] * len(pairs)
        products = sorted(os.listdir(out))
        assert products == sorted(r["pair"] + ".tif" for r in rows)  # each once, no leftovers
        assert len(set(products)) == len(pairs) == 12
        # after the kill the survivor made the rest; every product is whole and right
        assert c.worker_addresses["w1"] in {r["worker"] for r in rows}
        local = IC.correlate_batch(pairs, str(tmp_path / "local"), **OPTIONS)
        same_products(local, rows)
    finally:
        c.close()


# ------------------------------------------------------------------ bad set-ups

def test_unreachable_scheduler_is_a_clear_error_within_10_s(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    pairs = write_batch(str(tmp_path), 2)
    t0 = time.monotonic()
    with pytest.raises(InputError, match=rf"DASK_SCHEDULER: no Dask scheduler answers at "
                                         rf"tcp://127.0.0.1:{port}"):
        IC.correlate_batch(pairs, str(tmp_path / "out"), scheduler=f"tcp://127.0.0.1:{port}",
                           **OPTIONS)
    assert time.monotonic() - t0 < 10


def test_scheduler_values_and_missing_distributed(monkeypatch):
    assert cluster.parse_scheduler("") is None and cluster.parse_scheduler(None) is None
    assert cluster.parse_scheduler(" local:3 ") == ("local", 3)
    assert cluster.parse_scheduler("tcp://127.0.0.1:8786") == ("tcp", "tcp://127.0.0.1:8786")
    for bad in ("local:0", "local:x", "127.0.0.1:8786", "tcp://host"):
        with pytest.raises(InputError, match="DASK_SCHEDULER"):
            cluster.parse_scheduler(bad)
    monkeypatch.setitem(sys.modules, "distributed", None)  # not installed
    with pytest.raises(InputError, match="python3-distributed"):
        cluster.run_tasks(cluster.check_worker, [[]], "local:1")


def test_core_zip_is_the_core_package_without_qgis(tmp_path):
    path = cluster.core_zip(str(tmp_path))
    names = zipfile.ZipFile(path).namelist()
    assert "glacier_velocity/__init__.py" in names
    assert "glacier_velocity/core/correlation/images.py" in names
    assert not [n for n in names if not n.startswith("glacier_velocity/core/")
                and n != "glacier_velocity/__init__.py"]
    # importable on its own, in a fresh interpreter without the plugin
    code = ("import sys; sys.path.insert(0, sys.argv[1]); "
            "import glacier_velocity.core.correlation.images as m; "
            "assert 'qgis' not in sys.modules; print(m.__file__)")
    out = subprocess.run([sys.executable, "-c", code, path], cwd=str(tmp_path),
                         env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
                         capture_output=True, text=True, check=True).stdout
    assert path in out


def test_a_worker_without_gdal_is_named(tmp_path):
    fake = tmp_path / "nogdal" / "osgeo"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError(\"No module named 'osgeo'\")\n")
    c = ProcessCluster(str(tmp_path / "cluster"), workers=1,
                       env={"PYTHONPATH": str(tmp_path / "nogdal")})
    try:
        pairs = write_batch(str(tmp_path), 2)
        with pytest.raises(InputError, match=r"cannot import osgeo.gdal \(Debian python3-gdal"):
            IC.correlate_batch(pairs, str(tmp_path / "out"), scheduler=c.address, **OPTIONS)
        assert not glob.glob(str(tmp_path / "out" / "*"))
    finally:
        c.close()


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runuser"),
                    reason="needs root to run a worker as another user")
def test_a_path_workers_cannot_see_is_named(tmp_path):
    hidden = tmp_path / "private"
    hidden.mkdir()
    os.chmod(hidden, 0o700)  # root's only: the worker runs as nobody
    c = ProcessCluster(str(tmp_path / "cluster"), workers=1, user="nobody")
    try:
        pairs = write_batch(str(hidden), 2)
        out = hidden / "out"
        with pytest.raises(InputError, match=rf"cannot see '{hidden}"):
            IC.correlate_batch(pairs, str(out), scheduler=c.address, **OPTIONS)
    finally:
        c.close()


def tiled_stack(tmp_path, monkeypatch, shape, seed, window_mb):
    """A monthly stack (100 m/yr, +20 % per decade) read in windows of ``window_mb`` MB, at
    least three (so several tasks): ``(path, intervals)``."""
    from glacier_velocity.core.io.products import StackFile, write_stack
    from glacier_velocity.test.helpers import simulate_monthly_series

    values, intervals = simulate_monthly_series(shape[0] * shape[1], sigma=0.1, trend=0.2,
                                                seed=seed)
    path = str(tmp_path / "stack.tif")
    write_stack(path, Grid.from_bounds(500000, 5000000, 30.0, *shape, 32632),
                values.reshape(-1, *shape), intervals)
    windows = StackFile.windows
    monkeypatch.setattr(StackFile, "windows", lambda self, budget_mb=1: windows(self, window_mb))
    assert len(StackFile(path).windows()) >= 3
    return path, intervals


def test_pixel_trends_on_the_cluster_match_the_local_run(dask_cluster, tmp_path, monkeypatch):
    from glacier_velocity.core.io.raster import read_band
    from glacier_velocity.core.trends.pixel import pixel_trends

    path, _ = tiled_stack(tmp_path, monkeypatch, (60, 80), 2, 1)
    keys = ("trend", "p", "significant", "ci_low", "n_years")
    runs = {}
    for where, scheduler in (("local", None), ("remote", dask_cluster.address)):
        outputs = {k: str(tmp_path / f"{where}_{k}.tif") for k in keys}
        runs[where] = pixel_trends(path, outputs, scheduler=scheduler), outputs
    assert runs["local"][0] == runs["remote"][0]
    for k in keys:
        a, b = (read_band(runs[w][1][k]) for w in ("local", "remote"))
        assert np.array_equal(a, b, equal_nan=True), k
    # mean 100 m/yr, +20 % per decade: 20 m/yr per decade
    assert abs(np.median(read_band(runs["remote"][1]["trend"])) - 20.0) < 2.0


def test_a_single_pair_goes_out_in_strips(dask_cluster, tmp_path, monkeypatch):
    pairs = write_batch(str(tmp_path), 2, shape=(256, 256), seed=3)
    local = IC.correlate_batch(pairs, str(tmp_path / "local"), **OPTIONS)
    monkeypatch.setattr(IC, "STRIP_PIXELS", 20000)  # several strips, so several tasks
    with distributed.Client(dask_cluster.address, timeout=10) as client:
        with distributed.get_task_stream(client=client) as stream:
            remote = IC.correlate_batch(pairs, str(tmp_path / "remote"),
                                        scheduler=dask_cluster.address, **OPTIONS)
    strips = [t for t in stream.data if str(t["key"]).startswith("strip-")]
    assert len(strips) >= 3 and len({t["worker"] for t in strips}) == 2
    same_products(local, remote)
    assert remote[0]["worker"] == dask_cluster.address
    assert not glob.glob(str(tmp_path / "remote" / ".*"))


def test_cancel_cancels_the_futures(dask_cluster, tmp_path):
    from glacier_velocity.core.errors import Cancelled
    from glacier_velocity.core.progress import Progress

    pairs = write_batch(str(tmp_path), 13, shape=(256, 256), seed=4)
    seen = []
    out = tmp_path / "out"
    with pytest.raises(Cancelled):
        IC.correlate_batch(pairs, str(out), scheduler=dask_cluster.address,
                           progress=Progress(seen.append, lambda: len(seen) >= 1), **OPTIONS)
    assert seen and seen[0] < 1.0
    time.sleep(3)  # a pair that was running finishes its own product; the queued ones never run
    made = glob.glob(str(out / "*.tif"))
    assert 1 <= len(made) <= 4 < len(pairs)
    assert not glob.glob(str(out / ".*"))
    with distributed.Client(dask_cluster.address, timeout=10) as client:
        assert not client.who_has()  # nothing of the run is left on the cluster


# ------------------------------------------------------------------ the temporal inversion

@pytest.fixture(scope="module")
def pair_folder(tmp_path_factory):
    """90 pairs of three sensors over a 24 x 24 px glacier, a year long."""
    from glacier_velocity.core.sampledata.pair_series import pair_series

    series = pair_series(size=24, years=1, n_pairs=90, seed=5)
    paths = series.write(str(tmp_path_factory.mktemp("inv") / "pairs"))
    return series, paths


def test_invert_series_on_the_cluster_matches_the_local_run(dask_cluster, pair_folder,
                                                            tmp_path):
    from glacier_velocity.core.io.products import read_stack
    from glacier_velocity.core.timeseries.invert_series import invert_series

    series, paths = pair_folder
    runs = {}
    for where, scheduler in (("local", None), ("remote", dask_cluster.address)):
        out = {q: str(tmp_path / f"{where}_{q}.tif") for q in ("v", "vx", "error")}
        with distributed.Client(dask_cluster.address, timeout=10) as client:
            with distributed.get_task_stream(client=client) as stream:
                # 0.1 MB: 16 px tiles (4 tasks) of several batches each
                table, summary = invert_series(paths, series.grid, out, memory_mb=0.1,
                                               scheduler=scheduler)
        runs[where] = table, summary, out, [t for t in stream.data
                                            if str(t["key"]).startswith("invert-tile-")]
    (t_l, s_l, out_l, tasks_l), (t_r, s_r, out_r, tasks_r) = runs["local"], runs["remote"]
    assert s_l["tiles"] == s_r["tiles"] == 4
    assert not tasks_l and len(tasks_r) == 4 and len({t["worker"] for t in tasks_r}) == 2
    assert t_l == t_r and s_l["regularisation"] == s_r["regularisation"]
    for q in ("v", "vx", "error"):
        (info_l, a), (info_r, b) = read_stack(out_l[q]), read_stack(out_r[q])
        assert [str(iv) for iv in info_l.intervals] == [str(iv) for iv in info_r.intervals]
        assert np.array_equal(a, b, equal_nan=True), q
    # and right: the speed of every month within a few m/yr of the truth on the glacier
    info, v = read_stack(out_r["v"])
    truth = np.stack([np.hypot(*series.interval_truth(iv)) for iv in info.intervals])
    assert np.nanmedian(np.abs(v - truth)) < 5.0
    assert not glob.glob(str(tmp_path / ".*"))


def test_invert_series_cancel_and_unreachable_scheduler_leave_no_stacks(dask_cluster,
                                                                        pair_folder, tmp_path):
    import socket

    from glacier_velocity.core.errors import Cancelled
    from glacier_velocity.core.progress import Progress
    from glacier_velocity.core.timeseries.invert_series import invert_series

    series, paths = pair_folder
    out = {"v": str(tmp_path / "v.tif"), "error": str(tmp_path / "v_error.tif")}
    seen = []
    with pytest.raises(Cancelled):  # cancelled once the first tile is back
        invert_series(paths, series.grid, out, memory_mb=0.1, scheduler=dask_cluster.address,
                      progress=Progress(seen.append, lambda: bool(seen) and seen[-1] > 0.1))
    assert 0.1 < seen[-1] < 1.0
    with distributed.Client(dask_cluster.address, timeout=10) as client:
        assert not client.who_has()  # the tiles not done were cancelled
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    with pytest.raises(InputError, match=rf"no Dask scheduler answers at tcp://127.0.0.1:{port}"):
        invert_series(paths, series.grid, out, scheduler=f"tcp://127.0.0.1:{port}")
    assert time.monotonic() - t0 < 10  # before the sample stage
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------ a prior velocity field

def test_a_prior_field_is_read_by_the_workers(dask_cluster, tmp_path, monkeypatch):
    """A prior of 5000 m/yr east over the east half moves those windows 13.7 px off the true
    0.4 px: the workers must read it (products unlike the run without it) and give the local
    run's products, for a batch (one pair per task) and for one pair (its strips as tasks)."""
    from glacier_velocity.core.correlation.prior import PriorField

    pairs = write_batch(str(tmp_path), 4, shape=(160, 160), seed=6)
    g = Grid.from_bounds(500000, 5000000, 50.0, 32, 32, 32632)
    east = np.zeros((32, 32), np.float32)
    east[:, 16:] = 1.0
    prior = [write_raster(str(tmp_path / f"prior_{q}.tif"), g, (val * east).astype(np.float32))
             for q, val in (("vx", 5000.0), ("vy", 0.0))]
    options = dict(OPTIONS, max_speed=10.0)
    plain = IC.correlate_batch(pairs, str(tmp_path / "plain"), **options)
    field = PriorField(*prior)
    local = IC.correlate_batch(pairs, str(tmp_path / "local"), prior_field=field, **options)
    remote = IC.correlate_batch(pairs, str(tmp_path / "remote"), prior_field=field,
                                scheduler=dask_cluster.address, **options)
    same_products(local, remote)
    assert len({r["worker"] for r in remote}) == 2
    for a, b in zip(plain, remote):
        pa, pb = read_pair_product(a["path"])[1]["vx"], read_pair_product(b["path"])[1]["vx"]
        cols = pa.shape[1]
        # the west half has no prior (zero offset): the same vectors away from the prior's edge
        # (a window and its neighbours reach 10 columns); the east half differs
        assert np.array_equal(pa[:, :cols // 2 - 10], pb[:, :cols // 2 - 10], equal_nan=True)
        assert not np.allclose(pa[:, cols // 2:], pb[:, cols // 2:], equal_nan=True)
    # one pair: its strips go out, each worker reading its strip of the prior (the same strips
    # as here: window deformation across the prior's edge sees its strip's neighbours only)
    monkeypatch.setattr(IC, "STRIP_PIXELS", 12000)
    here = IC.correlate_batch(pairs[:1], str(tmp_path / "here"), prior_field=field, **options)
    one = IC.correlate_batch(pairs[:1], str(tmp_path / "one"), prior_field=field,
                             scheduler=dask_cluster.address, **options)
    same_products(here, one)
    assert read_pair_product(one[0]["path"])[0].metadata["PRIOR"] == "prior_vx.tif"


def test_month_trends_and_seasonal_cycle_on_the_cluster_match_the_local_run(dask_cluster,
                                                                          tmp_path, monkeypatch):
    from osgeo import gdal

    from glacier_velocity.core.io.raster import read_band
    from glacier_velocity.core.trends.seasonal import monthly_trend_raster, seasonal_cycle_rasters

    path, intervals = tiled_stack(tmp_path, monkeypatch, (40, 50), 4, 0.25)
    out = {}
    for where, scheduler in (("local", None), ("remote", dask_cluster.address)):
        out[where] = {k: str(tmp_path / f"{where}_{k}.tif") for k in ("t", "p", "m", "a")}
        o = out[where]
        monthly_trend_raster(path, o["t"], method="sen", p_output=o["p"], scheduler=scheduler)
        seasonal_cycle_rasters(path, o["m"], o["a"], scheduler=scheduler)
    for k in ("t", "p", "m", "a"):
        a, b = (gdal.Open(out[w][k]).ReadAsArray() for w in ("local", "remote"))
        assert a.shape[0] == (12 if k != "a" else len(intervals)), k
        assert np.array_equal(a, b, equal_nan=True), k
    # +20 % per decade of a mean of 100 m/yr: every month's trend near 20 m/yr per decade
    assert abs(np.nanmedian(read_band(out["remote"]["t"], 7)) - 20.0) < 4.0
