"""DASK_SCHEDULER=local:2 through processing.run in this process, as the QGIS desktop runs it:
the local workers run this Python (never sys.executable, which inside QGIS may be the QGIS program
or another Python), the products are the local run's, and cancelling stops the run at once
without half-written products."""

import glob
import os
import stat
import sys
import threading
import time

import numpy as np
import pytest
from qgis.core import QgsProcessingException, QgsProcessingFeedback

from glacier_velocity.core.io.products import read_pair_product, read_stack

distributed = pytest.importorskip("distributed")
PARAMS = {"MIN_DAYS": 5, "MAX_DAYS": 15, "WINDOW": 32, "STEP": 4, "PREPROCESS": 0}


def write_images(folder, n, size=160, seed=0):
    import datetime as dt

    from glacier_velocity.core.io.grid import Grid
    from glacier_velocity.core.io.raster import write_raster
    from glacier_velocity.core.sampledata.scene import band_limited_noise, render_pair_images

    rng = np.random.default_rng(seed)
    fine = band_limited_noise((size * 3, size * 3), rng, 0.1)
    g = Grid.from_bounds(500000, 5000000, 10.0, size, size, 32632)
    os.makedirs(folder, exist_ok=True)
    for k in range(n):
        _, img = render_pair_images(fine, np.full(fine.shape, 1.2 * k), np.zeros(fine.shape), 3)
        day = dt.date(2020, 1, 1) + dt.timedelta(days=10 * k)
        write_raster(os.path.join(folder, f"img_{day:%Y%m%d}.tif"), g, img.astype(np.float32))
    return folder


@pytest.fixture
def fake_qgis_executable(tmp_path, monkeypatch):
    """sys.executable as inside QGIS: a program that is not this Python (it leaves a mark)."""
    mark = tmp_path / "qgis_started"
    program = tmp_path / "bin" / "qgis"
    program.parent.mkdir()
    program.write_text(f"#!/bin/sh\ntouch {mark}\nexit 1\n")
    program.chmod(program.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(sys, "executable", str(program))
    return mark


def test_local_workers_run_this_python_and_match_the_local_run(run_alg, fake_qgis_executable,
                                                               tmp_path):
    images = write_images(str(tmp_path / "images"), 5)
    runs = {}
    for where, scheduler in (("here", ""), ("local2", "local:2")):
        runs[where] = run_alg("correlatebatch", dict(
            PARAMS, FOLDER=images, DASK_SCHEDULER=scheduler, OUTPUT=str(tmp_path / where),
            OUTPUT_TABLE=str(tmp_path / f"{where}.csv")))
    assert runs["here"]["PAIRS"] == runs["local2"]["PAIRS"] == 4
    assert not fake_qgis_executable.exists()  # the QGIS program was never started
    for name in sorted(os.listdir(tmp_path / "here")):
        a = read_pair_product(str(tmp_path / "here" / name))[1]
        b = read_pair_product(str(tmp_path / "local2" / name))[1]
        for band in ("vx", "vy", "snr"):
            assert np.array_equal(a[band], b[band], equal_nan=True), (name, band)
        # 1.2 fine px = 0.4 px of 10 m per 10 days, east
        assert abs(np.nanmedian(b["vx"]) - 0.4 * 365.25) < 2.0
    with open(tmp_path / "local2.csv") as f:
        workers = {line.rsplit(",", 1)[-1].strip() for line in list(f)[1:]}
    assert all(w.startswith("tcp://127.0.0.1:") for w in workers), workers


def test_cancel_in_the_middle_stops_the_local_cluster(run_alg, tmp_path):
    images = write_images(str(tmp_path / "images"), 13, size=256, seed=1)
    out = tmp_path / "out"
    feedback = QgsProcessingFeedback()
    cancelled_at = []

    def cancel_after_the_first_product():
        end = time.monotonic() + 600
        while not glob.glob(str(out / "*.tif")) and time.monotonic() < end:
            time.sleep(0.2)
        cancelled_at.append(time.monotonic())
        feedback.cancel()

    watcher = threading.Thread(target=cancel_after_the_first_product)
    watcher.start()
    with pytest.raises(QgsProcessingException):
        run_alg("correlatebatch", dict(PARAMS, FOLDER=images, DASK_SCHEDULER="local:2",
                                       OUTPUT=str(out), OUTPUT_TABLE=str(tmp_path / "t.csv")),
                feedback)
    stopped = time.monotonic()
    watcher.join()
    assert stopped - cancelled_at[0] < 30  # the futures cancelled, the cluster closed
    made = glob.glob(str(out / "*.tif"))
    assert 1 <= len(made) < 12
    assert not glob.glob(str(out / ".*"))  # no half-written product
    for path in made:  # what was made is whole
        assert np.isfinite(read_pair_product(path)[1]["vx"]).any()


def test_invertseries_on_local_workers_matches_the_local_run(run_alg, tmp_path):
    from glacier_velocity.core.sampledata.pair_series import pair_series

    series = pair_series(size=24, years=1, n_pairs=60, seed=3)
    folder = str(tmp_path / "pairs")
    series.write(folder)
    stacks = {}
    for where, scheduler in (("here", ""), ("local2", "local:2")):
        res = run_alg("invertseries", {"FOLDER": folder, "DASK_SCHEDULER": scheduler,
                                       "OUTPUT": str(tmp_path / f"{where}.tif")})
        stacks[where] = read_stack(res["OUTPUT"])[1], read_stack(res["OUTPUT_ERROR"])[1]
    for a, b in zip(stacks["here"], stacks["local2"]):
        assert np.array_equal(a, b, equal_nan=True)
