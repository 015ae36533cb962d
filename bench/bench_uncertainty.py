"""Stable-ground uncertainty benchmark: a 120-band 2000 × 2000 stack summarised (target < 30 s).

Baseline in the same run: reading every band of the stack once (the I/O floor, no statistics).
Then the full statistics over every stable pixel, and with the default random sample of 10,000
points. Peak RSS shows memory stays bounded (the stack is 1.9 GB as float32).
"""

import os
import tempfile
import time

import numpy as np
from osgeo import gdal

from benchutil import peak_rss_mb

from glacier_velocity.core.io.dates import Interval
from glacier_velocity.core.io.grid import Grid
from glacier_velocity.core.io.products import StackWriter
from glacier_velocity.core.io.raster import open_raster, read_band
from glacier_velocity.core.uncertainty.stable_ground import DEFAULT_SAMPLE, stable_uncertainty
from glacier_velocity.core.io.vector import write_polygons

SIZE, BANDS, SIGMA, BIAS = 2000, 120, 10.0, 3.0


def make_stack(folder):
    """Stack with stable ground (left half: BIAS + N(0, SIGMA)) and a fast 'glacier' (right half)."""
    grid = Grid.from_bounds(400000, 3300000, 30, SIZE, SIZE, 32645)
    months = [Interval.month(2015 + m // 12, m % 12 + 1) for m in range(BANDS)]
    rng = np.random.default_rng(0)
    # values on a 1/64 m/yr grid (sub-pixel precision of a correlator): compresses like real maps
    pool = [np.round(rng.normal(0, SIGMA, (SIZE, SIZE)) * 64).astype(np.float32) / 64
            for _ in range(6)]
    ramp = np.linspace(50, 400, SIZE // 2, dtype=np.float32)[None, :]
    path = os.path.join(folder, "stack.tif")
    with StackWriter(path, grid, months, "landsat") as w:
        for b in range(BANDS):
            arr = np.roll(pool[b % 6], b, axis=0) + BIAS
            arr[:, SIZE // 2:] += ramp
            w.write(b, arr)
    half = SIZE // 2 * 30
    x0, y1 = 400000, 3300000
    ring = np.array([[x0, y1], [x0 + half, y1], [x0 + half, y1 - SIZE * 30], [x0, y1 - SIZE * 30]])
    stable = write_polygons(os.path.join(folder, "stable.gpkg"), "stable", grid.crs_wkt,
                            [(ring, {})], {})
    return path, stable


def main():
    gdal.SetCacheMax(256 * 2 ** 20)  # GDAL's block cache (default 5 % of RAM) would dominate RSS
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        path, stable = make_stack(tmp)
        t1 = time.perf_counter()
        print(f"stack {BANDS} x {SIZE} x {SIZE} ({BANDS * SIZE * SIZE * 4 / 2 ** 30:.1f} GB as "
              f"float32) written in {t1 - t0:.1f} s; stable ground = left half "
              f"({SIZE * SIZE // 2} px), noise sigma {SIGMA} m/yr, bias {BIAS} m/yr; peak RSS so far "
              f"{peak_rss_mb():.0f} MB", flush=True)
        ds = open_raster(path)
        t1 = time.perf_counter()
        for b in range(BANDS):
            read_band(ds, b + 1)
        ds = None
        t2 = time.perf_counter()
        print(f"baseline: read every band once (I/O floor) {t2 - t1:.1f} s; peak RSS so far "
              f"{peak_rss_mb():.0f} MB", flush=True)
        rows = stable_uncertainty([path], polygons=stable)
        t3 = time.perf_counter()
        mean = rows[-1]
        print(f"all stable pixels: {t3 - t2:.1f} s ({(t3 - t2) / (t2 - t1):.2f} x the read floor); "
              f"mean over bands: n {mean['n'] / BANDS:.0f}, mean {mean['mean']:.3f} (truth {BIAS}), "
              f"std {mean['std']:.3f} and NMAD {mean['nmad']:.3f} (truth {SIGMA}), E {mean['e']:.3f}; "
              f"peak RSS so far {peak_rss_mb():.0f} MB", flush=True)
        rows = stable_uncertainty([path], polygons=stable, sample_size=DEFAULT_SAMPLE, seed=1)
        t4 = time.perf_counter()
        mean = rows[-1]
        expected = np.hypot(BIAS, SIGMA / np.sqrt(DEFAULT_SAMPLE))
        print(f"random sample of {DEFAULT_SAMPLE}: {t4 - t3:.1f} s; mean E {mean['e']:.3f} "
              f"(expected sqrt(b^2 + sigma^2/N) = {expected:.3f}), NMAD {mean['nmad']:.3f}",
              flush=True)
        print(f"target: < 30 s per summary -> {'met' if max(t3 - t2, t4 - t3) < 30 else 'MISSED'}; "
              f"peak RSS {peak_rss_mb():.0f} MB (the stack is {BANDS * SIZE * SIZE * 4 / 2 ** 20:.0f} MB)")


if __name__ == "__main__":
    main()
