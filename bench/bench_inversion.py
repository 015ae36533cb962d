"""Temporal inversion benchmark (glaciervelocity:invertseries), two parts.

1. Accuracy and speed against TICOI itself (PyPI ``ticoi`` in the bench-only venv of ``make
   ticoi-venv``, fed through .npz files by bench/ticoi_runner.py) and against calendar-month
   composites (monthlystacks, median) of the same synthetic three-sensor pairs with known daily
   truth (core/sampledata/pair_series): monthly speed RMSE against the true monthly means on the
   pixel-months all three methods cover, months covered, and CPU seconds per pixel (per core:
   CPU time counts every thread). Targets: RMSE no worse than TICOI, >= 10x faster per core.
2. Scale: 10 years, 1000 pairs on a measured subset of pixels, extrapolated linearly in pixels
   (the sample stage, a fixed cost, counted once) to 1000 x 1000 px; the subset is one tile of
   the full run (224 x 224 px for 1000 pairs and the default 1 GB budget: the tile size follows
   the number of pairs and the budget, not the raster size), so the peak memory measured is the
   full run's. Target: < 10 min on 2 cores, < 2 GB.
"""

import datetime as dt
import os
import functools
import subprocess
import sys
import tempfile
import time

import numpy as np
from osgeo import gdal

from benchutil import peak_rss_mb

from glacier_velocity.core.io.products import read_stack
from glacier_velocity.core.sampledata.pair_series import pair_series
from glacier_velocity.core.timeseries.invert_series import invert_series
from glacier_velocity.core.timeseries.monthly import monthly_stacks

HERE = os.path.dirname(os.path.abspath(__file__))
TICOI_PY = os.path.join(os.path.dirname(HERE), ".build", "ticoi-venv", "bin", "python")
EPOCH = dt.date(1970, 1, 1).toordinal()
FULL_PIXELS = 1000 * 1000


def truth(series, intervals):
    return np.stack([np.hypot(*series.interval_truth(iv)) for iv in intervals])


def rmse(a, b, mask):
    return float(np.sqrt(np.mean((a - b)[mask] ** 2)))


def run_ticoi(series, paths, sigma_rows, intervals, tmp):
    """TICOI's monthly speeds (months × rows × cols) and its CPU seconds, or None."""
    if not os.path.exists(TICOI_PY):
        print("TICOI: not installed (run `make ticoi-venv`); its line is left out.")
        return None
    from glacier_velocity.core.io.pairsource import PairSource
    from glacier_velocity.core.timeseries.invert_series import pair_errors

    sources = [PairSource(p) for p in paths]
    vx = np.stack([s.read()[0].ravel() for s in sources])
    vy = np.stack([s.read()[1].ravel() for s in sources])
    sigma, _ = pair_errors(sources, sigma_rows)
    edges = [iv.start.toordinal() - EPOCH for iv in intervals] + [
        intervals[-1].end.toordinal() + 1 - EPOCH]
    src, dst = os.path.join(tmp, "ticoi_in.npz"), os.path.join(tmp, "ticoi_out.npz")
    np.savez(src, start=np.array([s.start.toordinal() - EPOCH for s in sources]),
             end=np.array([s.end.toordinal() - EPOCH for s in sources]), vx=vx, vy=vy,
             error=sigma, edges=np.array(edges))
    proc = subprocess.run([TICOI_PY, os.path.join(HERE, "ticoi_runner.py"), src, dst],
                          capture_output=True, text=True)
    if proc.returncode:
        print(f"TICOI failed: {proc.stderr.strip()[-400:]}")
        return None
    out = np.load(dst)
    shape = (len(intervals),) + series.grid.shape
    return np.hypot(out["vx"], out["vy"]).reshape(shape), float(out["cpu_seconds"])


def accuracy(tmp):
    series = pair_series(size=40, years=2, n_pairs=240, seed=0)
    paths = series.write(os.path.join(tmp, "pairs"))
    rows = [{"sensor": s, "displacement_error": e}
            for s, e in series.displacement_errors().items()]
    out = {"v": os.path.join(tmp, "v.tif"), "error": os.path.join(tmp, "v_error.tif")}
    t0, c0 = time.perf_counter(), time.process_time()
    _, summary = invert_series(paths, series.grid, out, error_rows=rows)
    ours_wall, ours_cpu = time.perf_counter() - t0, time.process_time() - c0
    info, v = read_stack(out["v"])
    _, err = read_stack(out["error"])
    monthly = os.path.join(tmp, "monthly.tif")
    monthly_stacks(paths, series.grid, {"v": monthly}, sensor="all")
    minfo, mv = read_stack(monthly)
    assert [str(i) for i in minfo.intervals] == [str(i) for i in info.intervals]
    true = truth(series, info.intervals)
    ticoi = run_ticoi(series, paths, rows, info.intervals, tmp)
    common = np.isfinite(v) & np.isfinite(mv)
    if ticoi is not None:
        common &= np.isfinite(ticoi[0])
    n_pix = series.grid.rows * series.grid.cols
    print(f"case: {n_pix} px, {len(paths)} pairs of 3 sensors over 2 years, "
          f"{len(info.intervals)} months; RMSE of monthly speed vs true monthly mean (m/yr) on "
          f"{int(common.sum())} pixel-months all methods cover")
    print(f"{'method':<34}{'RMSE':>8}{'months':>8}{'px-months':>11}{'CPU ms/px':>11}")
    lines = [("invertseries (ours, GCV λ=%.2g)" % summary["regularisation"], v, ours_cpu),
             ("monthlystacks composites (median)", mv, None)]
    if ticoi is not None:
        lines.append(("TICOI 0.1.2 (LSMR, coef 100)", ticoi[0], ticoi[1]))
    for name, stack, cpu in lines:
        months = int(np.isfinite(stack).any(axis=(1, 2)).sum())
        cpu_txt = f"{1000 * cpu / n_pix:11.2f}" if cpu is not None else f"{'-':>11}"
        print(f"{name:<34}{rmse(stack, true, common):8.2f}{months:8d}"
              f"{int(np.isfinite(stack).sum()):11d}{cpu_txt}")
    z = np.abs(v - true)[np.isfinite(v)] / err[np.isfinite(v)]
    print(f"ours: truth within ±1.96σ of OUTPUT_ERROR for {100 * np.mean(z <= 1.96):.1f} % of "
          f"pixel-months (target 95 ± 5); wall {ours_wall:.1f} s")
    ratio_rmse = rmse(v, true, common) / rmse(mv, true, common)
    print(f"ours vs composites: RMSE {100 * (1 - ratio_rmse):.0f} % lower (target >= 30 %)")
    if ticoi is not None:
        print(f"ours vs TICOI: RMSE ratio {rmse(v, true, common) / rmse(ticoi[0], true, common):.2f}"
              f" (target <= 1), {ticoi[1] / ours_cpu:.0f}x faster per core (target >= 10x)")


def scale(tmp, size=224):
    series = pair_series(size=size, first=dt.date(2015, 1, 1), years=10, n_pairs=1000, seed=3)
    t0 = time.perf_counter()
    paths = series.write(os.path.join(tmp, "pairs10"))
    print(f"\nscale: {len(paths)} pairs over 10 years at {size} x {size} px written in "
          f"{time.perf_counter() - t0:.0f} s")
    rows = [{"sensor": s, "displacement_error": e}
            for s, e in series.displacement_errors().items()]
    out = {q: os.path.join(tmp, f"s_{q}.tif") for q in ("v", "vx", "vy", "error")}
    _, summary = invert_series(paths, series.grid, out, error_rows=rows)
    (sw, sc), (tw, tc) = summary["seconds"]["sample"], summary["seconds"]["tiles"]
    factor = FULL_PIXELS / (size * size)
    print(f"measured: sample stage {sw:.1f} s wall ({sc:.1f} s CPU), {summary['tiles']} tiles "
          f"{tw:.1f} s wall ({tc:.1f} s CPU), {len(summary['intervals'])} months, bandwidth "
          f"{summary['bandwidth']}; peak RSS {peak_rss_mb():.0f} MB")
    print(f"extrapolated to 1000 x 1000 px (x{factor:.0f} the tiles): {(sw + tw * factor) / 60:.1f}"
          f" min wall here, {(sc + tc * factor) / 60 / 2:.1f} min of CPU over 2 cores "
          f"(target < 10 min); peak memory {peak_rss_mb():.0f} MB (target < 2048)")


print = functools.partial(print, flush=True)  # noqa: A001 (lines appear as they come)


def main():
    gdal.SetCacheMax(256 * 2 ** 20)
    with tempfile.TemporaryDirectory() as tmp:
        accuracy(tmp)
        scale(tmp, int(os.environ.get("BENCH_INVERSION_SIZE", "224")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
