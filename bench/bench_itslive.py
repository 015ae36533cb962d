"""ITS_LIVE cube benchmark: a 100 x 100 window of a 1000-layer 500 x 500 cube, all dates.

Target (issue 17): the window read under 10 s with bounded memory. The cube is written in the
ITS_LIVE layout (int16, chunks of all 1000 dates x 10 x 10 pixels, deflate) with netCDF4. Printed:
our windowed read (in blocks of dates within the read budget, and within a 16 MB budget), the
whole import to 1000 pair products, and the baseline in the same run: one netCDF4 slice of the
window (the fastest possible read, all of it in memory at once).
"""

import datetime as dt
import os
import subprocess
import tempfile
import time

import numpy as np

from benchutil import peak_rss_mb

from glacier_velocity.core.io import cubes
from glacier_velocity.core.io.dates import Interval
from glacier_velocity.core.io.grid import Grid
from glacier_velocity.core.io.itslive import export_stacks, import_itslive
from glacier_velocity.core.io.products import write_stack
from glacier_velocity.core.sampledata.itslive import write_cube

HERE = os.path.dirname(os.path.abspath(__file__))
TICOI_PY = os.path.join(os.path.dirname(HERE), ".build", "ticoi-venv", "bin", "python")
N, ROWS, COLS, WIN = 1000, 500, 500, 100
GT = (400000.0, 120.0, 0.0, 3300000.0, 0.0, -120.0)


def _field(sign):
    def f(r0, r1):
        y = np.arange(r0, r1)[None, :, None]
        x = np.arange(COLS)[None, None, :]
        t = np.arange(N)[:, None, None]
        return sign * (200 * np.exp(-((x - 250) ** 2 + (y - 250) ** 2) / 2e4)
                       + 20 * np.sin(2 * np.pi * t / 36.5))
    return f


def main():
    starts = [dt.datetime(2015, 1, 1) + dt.timedelta(days=3 * i) for i in range(N)]
    ends = [s + dt.timedelta(days=(16, 32, 48, 96)[i % 4]) for i, s in enumerate(starts)]
    sats = [("8", "9", "2A", "2B", "1A")[i % 5] for i in range(N)]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "cube.nc")
        t0 = time.perf_counter()
        write_cube(path, _field(1), _field(-0.5), starts, ends, sats, GT, shape=(ROWS, COLS))
        t1 = time.perf_counter()
        size = os.path.getsize(path) / 2 ** 20
        print(f"cube {N} x {ROWS} x {COLS} (vx, vy, v int16; {size:.0f} MB on disk) written in "
              f"{t1 - t0:.1f} s; peak RSS so far {peak_rss_mb():.0f} MB")
        window = (200, 200, WIN, WIN)
        extent = (GT[0] + 200 * 120, GT[3] - 300 * 120, GT[0] + 300 * 120, GT[3] - 200 * 120, "")

        import netCDF4

        t0 = time.perf_counter()
        with netCDF4.Dataset(path) as nc:
            base = [np.asarray(nc[v][:, 200:300, 200:300], np.float32) for v in ("vx", "vy", "v")]
        t_base = time.perf_counter() - t0

        timings, rss = {}, {}
        for label, budget in (("16 MB", 16 * 2 ** 20), ("default", cubes.READ_BUDGET)):
            t0 = time.perf_counter()
            ds = cubes.open_dataset(path)
            info = cubes.read_cube_info(path, ds)
            total, count = 0.0, 0
            for _, data in cubes.iter_window(ds, info, np.arange(info.count), window,
                                             budget=budget):
                total += float(np.nansum(data["vx"]))
                count += 1
            ds.close()
            timings[label] = time.perf_counter() - t0
            rss[label] = peak_rss_mb()
            assert count == N and abs(total - float(np.nansum(base[0]))) < 1e-3 * abs(total)
        t0 = time.perf_counter()
        written = import_itslive(path, os.path.join(tmp, "pairs"), extent=extent)
        t_import = time.perf_counter() - t0
        assert len(written) == N
        print(f"window {WIN} x {WIN} x {N} dates (open, dates, read; target under 10 s): "
              f"{timings['16 MB']:.2f} s within a 16 MB budget (peak RSS {rss['16 MB']:.0f} MB), "
              f"{timings['default']:.2f} s within {cubes.READ_BUDGET / 2 ** 20:.0f} MB (peak RSS "
              f"{rss['default']:.0f} MB); baseline one netCDF4 slice of all of it "
              f"{t_base:.2f} s (ratio {timings['default'] / t_base:.1f}x)")
        print(f"import of the window to {N} pair products: {t_import:.1f} s "
              f"({1000 * t_import / N:.1f} ms per GeoTIFF written); peak RSS {peak_rss_mb():.0f} MB")
        ticoi_check(tmp)


def ticoi_check(tmp):
    """exportcube's NetCDF and Zarr cubes loaded by TICOI's generic loader (its own venv)."""
    if not os.path.exists(TICOI_PY):
        print("TICOI loader check skipped: no .build/ticoi-venv (make ticoi-venv, issue 16)")
        return
    rng = np.random.default_rng(0)
    grid = Grid.from_bounds(400000, 3300000, 30, 20, 25, 32645)
    months = [Interval.month(2020 + k // 12, k % 12 + 1) for k in range(18)]
    arrays = {"vx": rng.normal(50, 5, (18, 20, 25)).astype(np.float32),
              "vy": rng.normal(-20, 5, (18, 20, 25)).astype(np.float32)}
    arrays["vx"][3, 4, 5] = arrays["vy"][3, 4, 5] = np.nan
    arrays["v"] = np.hypot(arrays["vx"], arrays["vy"])
    stacks = {q: write_stack(os.path.join(tmp, f"{q}.tif"), grid, a, months, "landsat", quantity=q)
              for q, a in arrays.items()}
    out = [export_stacks(os.path.join(tmp, f"ticoi.{ext}"), stacks) for ext in ("nc", "zarr")]
    truth = os.path.join(tmp, "truth.npz")
    np.savez(truth, vx=arrays["vx"], vy=arrays["vy"],
             date1=[iv.start.isoformat() for iv in months],
             date2=[iv.end.isoformat() for iv in months])
    subprocess.run([TICOI_PY, os.path.join(HERE, "ticoi_cube_check.py"), truth] + out,
                   check=True, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})


if __name__ == "__main__":
    main()
