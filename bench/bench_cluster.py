"""Dask benchmark: today's local run against ``DASK_SCHEDULER=local:2`` (two worker processes on
this machine), (a) a 16-pair correlation batch, (b) pixel trends of a 120-band 2000 x 2000 stack,
(c) the temporal inversion of 240 pairs of three sensors over 320 x 320 px (4 tiles).

Figures: wall time of each, the cluster's start-up (LocalCluster + shipping core + worker checks,
paid once per run), the overhead per task (cluster run minus the local run, per pair or tile,
where the local run already keeps every core busy) and the speed-up; the local run's CPU use
(CPU seconds / wall seconds / cores) says how many cores it leaves idle. The arithmetic for a
region in the README uses the seconds per pair measured here.
Usage: python bench/bench_cluster.py [--pairs-only | --trends-only | --inversion-only]
"""

import datetime as dt
import os
import sys
import tempfile
import time

import numpy as np

from bench_trends import write_trend_stack

from glacier_velocity.core import cluster
from glacier_velocity.core.correlation.images import correlate_batch
from glacier_velocity.core.correlation.pairing import form_pairs
from glacier_velocity.core.io.grid import Grid
from glacier_velocity.core.io.products import StackFile
from glacier_velocity.core.io.raster import write_raster
from glacier_velocity.core.io.products import read_stack
from glacier_velocity.core.sampledata.pair_series import pair_series
from glacier_velocity.core.sampledata.scene import band_limited_noise, render_pair_images
from glacier_velocity.core.timeseries.invert_series import invert_series
from glacier_velocity.core.trends.pixel import pixel_trends

CORES = os.cpu_count() or 1
PAIRS = 16
PAIR_SIZE = 512  # px per side of each image (10 m pixels), correlated at step 2, 32 px windows


def timed(fn):
    """``(wall s, CPU s of this process and its threads, result)``."""
    c0, t0 = time.process_time(), time.perf_counter()
    res = fn()
    return time.perf_counter() - t0, time.process_time() - c0, res


def startup_time():
    """Seconds to start a local:2 cluster, ship core and check the workers (a task-less run)."""
    t0 = time.perf_counter()
    cluster.run_tasks(cluster.check_worker, [[]], "local:2")
    return time.perf_counter() - t0


def batch(tmp):
    rng = np.random.default_rng(0)
    o = 3
    fine = band_limited_noise((PAIR_SIZE * o, PAIR_SIZE * o), rng, 0.3 / o)
    g = Grid.from_bounds(500000, 5000000, 10.0, PAIR_SIZE, PAIR_SIZE, 32632)
    paths = []
    for k in range(PAIRS + 1):
        _, img = render_pair_images(fine, np.full(fine.shape, 0.4 * k * o), np.zeros(fine.shape),
                                    o)
        day = dt.date(2020, 1, 1) + dt.timedelta(days=10 * k)
        paths.append(write_raster(os.path.join(tmp, f"img_{day:%Y%m%d}.tif"), g,
                                  img.astype(np.float32)))
    pairs = form_pairs(paths, 5, 15)
    assert len(pairs) == PAIRS
    opts = dict(window=32, step=2, preprocess="none")
    t_local, cpu_local, _ = timed(lambda: correlate_batch(pairs, os.path.join(tmp, "local"),
                                                          **opts))
    t_start = startup_time()
    t_dask, _, rows = timed(lambda: correlate_batch(pairs, os.path.join(tmp, "dask"),
                                                    scheduler="local:2", **opts))
    workers = len({r["worker"] for r in rows})
    print(f"(a) {PAIRS}-pair batch, {PAIR_SIZE} x {PAIR_SIZE} px images, 32 px windows, step 2 "
          f"{CORES} cores")
    print(f"    local run (today): {t_local:.1f} s = {t_local / PAIRS:.2f} s per pair; CPU use "
          f"{100 * cpu_local / t_local / CORES:.0f} % of the {CORES} cores")
    print(f"    local:2 ({workers} workers made products): {t_dask:.1f} s = "
          f"{t_dask / PAIRS:.2f} s per pair, of which start-up {t_start:.1f} s per run; "
          f"overhead per pair {(t_dask - t_start - t_local) / PAIRS:+.2f} s; speed-up "
          f"{t_local / t_dask:.2f}x ({t_local / max(t_dask - t_start, 1e-9):.2f}x without the "
          "start-up)")
    return t_local / PAIRS


def trends(tmp, rows=2000, cols=2000, years=10):
    path = os.path.join(tmp, "stack.tif")
    t = write_trend_stack(path, rows, cols, years)
    res = {}
    for where, scheduler in (("local", None), ("dask", "local:2")):
        outputs = {k: os.path.join(tmp, f"{where}_{k}.tif") for k in ("trend", "p", "significant")}
        res[where] = timed(lambda o=outputs, s=scheduler: pixel_trends(path, o, scheduler=s))
    with StackFile(path) as s:
        tiles = len(s.windows())
    (t_local, cpu_local, s_local), (t_dask, _, s_dask) = res["local"], res["dask"]
    t_start = startup_time()
    same = s_local == s_dask
    print(f"(b) pixel trends of a {len(t)}-band {rows} x {cols} stack "
          f"({len(t) * rows * cols * 4 / 2 ** 20:.0f} MB float32), {tiles} tiles")
    print(f"    local run (today): {t_local:.1f} s; CPU use "
          f"{100 * cpu_local / t_local / CORES:.0f} % of the {CORES} cores")
    print(f"    local:2: {t_dask:.1f} s (start-up about {t_start:.1f} s), overhead per tile "
          f"{(t_dask - t_start - t_local / 2) / tiles:+.2f} s against a perfect 2-way split; "
          f"speed-up {t_local / t_dask:.2f}x; same summary as the local run: {same}")


def inversion(tmp, size=320, n_pairs=240, memory_mb=128):
    """invertseries here (batches in threads) and on local:2 (one tile per task); ``memory_mb``
    sets 160 px tiles, so the 320 px grid makes 4 tasks."""
    series = pair_series(size=size, years=2, n_pairs=n_pairs, seed=0)
    paths = series.write(os.path.join(tmp, "inversion_pairs"))
    res = {}
    for where, scheduler in (("local", None), ("dask", "local:2")):
        out = {"v": os.path.join(tmp, f"{where}_inverted.tif"),
               "error": os.path.join(tmp, f"{where}_inverted_error.tif")}
        res[where] = timed(lambda o=out, s=scheduler: invert_series(
            paths, series.grid, o, memory_mb=memory_mb, scheduler=s)) + (out,)
    (t_local, cpu_local, (_, s_local), o_local), (t_dask, _, (_, s_dask), o_dask) = (
        res["local"], res["dask"])
    same = all(np.array_equal(read_stack(o_local[q])[1], read_stack(o_dask[q])[1],
                              equal_nan=True) for q in ("v", "error"))
    tiles = s_local["tiles"]
    tile_local, tile_dask = s_local["seconds"]["tiles"][0], s_dask["seconds"]["tiles"][0]
    print(f"(c) invertseries of {len(paths)} pairs (3 sensors, 2 years) on {size} x {size} px, "
          f"{len(s_local['intervals'])} monthly bands, {tiles} tiles")
    print(f"    local run (today): {t_local:.1f} s, of which tiles {tile_local:.1f} s "
          f"({tile_local / tiles:.1f} s per tile); {cpu_local:.1f} CPU s = "
          f"{1e6 * cpu_local / (size * size * len(paths)):.2f} CPU µs per pixel and pair; CPU use "
          f"{100 * cpu_local / t_local / CORES:.0f} % of the {CORES} cores")
    print(f"    local:2: {t_dask:.1f} s, of which tiles {tile_dask:.1f} s (cluster start-up and "
          f"checks before the sample stage); overhead per tile "
          f"{(tile_dask - tile_local / 2) / tiles:+.2f} s against a perfect 2-way split of the "
          f"local tiles; speed-up {t_local / t_dask:.2f}x; identical stacks: {same}")


def main(argv=()):
    only = [a for a in argv if a.endswith("-only")]
    with tempfile.TemporaryDirectory() as tmp:
        if not only or "--pairs-only" in only:
            batch(tmp)
        if not only or "--trends-only" in only:
            trends(tmp)
        if not only or "--inversion-only" in only:
            inversion(tmp)


if __name__ == "__main__":
    main(sys.argv[1:])
