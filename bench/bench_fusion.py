"""Fusion benchmark: three 1000 x 1000 x 120 stacks fused and gap-filled (target < 60 s on 2
cores), memory bounded by a few bands. Baseline in the same run: the I/O floor (read every band
of the three stacks and write one stack, nothing computed). Wall and CPU seconds are printed: on
a shared machine the wall time includes waiting for a core. GDAL's block cache is capped at
256 MB so that the peak RSS shows what the algorithms hold, not GDAL's default 5 % of RAM."""

import os
import tempfile
import time
import tracemalloc

import numpy as np
from osgeo import gdal
from scipy import ndimage

from benchutil import peak_rss_mb

from glacier_velocity.core.io.dates import Interval
from glacier_velocity.core.fusion.weighted import fuse_stacks
from glacier_velocity.core.fusion.gapfill import gapfill_stack
from glacier_velocity.core.io.grid import Grid
from glacier_velocity.core.io.products import StackWriter, read_stack_info
from glacier_velocity.core.io.raster import open_raster, read_band

SIZE, BANDS = 1000, 120


def make_stacks(folder, grid, months):
    """Three noisy, gappy stacks over a smooth speed field (a few shared random fields, rolled)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    speed = (150 * np.exp(-((xx - 0.5) ** 2 + (yy - 0.5) ** 2) / 0.05)).astype(np.float32)
    noise = rng.standard_normal((4, SIZE, SIZE)).astype(np.float32)
    clouds = ndimage.gaussian_filter(rng.standard_normal((SIZE, SIZE)), 20)
    clouds = clouds > np.quantile(clouds, 0.6)
    paths = []
    for k, (sensor, sigma, gap) in enumerate((("landsat", 14, True), ("sentinel2", 8, True),
                                              ("sentinel1", 18, False))):
        path = os.path.join(folder, f"{sensor}.tif")
        with StackWriter(path, grid, months, sensor) as w:
            for b in range(len(months)):
                v = speed * (1 + 0.25 * np.sin(2 * np.pi * b / 12)) + sigma * np.roll(
                    noise[(b + k) % 4], 37 * b + 101 * k, axis=1)
                if gap:
                    v[np.roll(clouds, 53 * b + 211 * k, axis=(0, 1))] = np.nan
                else:
                    v[::17, ::13] = np.nan
                w.write(b, v)
        paths.append(path)
    return paths


class Timer:
    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu

    def __str__(self):
        return f"{self.wall:.1f} s wall ({self.cpu:.1f} s CPU)"


def main():
    gdal.SetCacheMax(256 * 2 ** 20)
    grid = Grid.from_bounds(400000, 3300000, 30, SIZE, SIZE, 32645)
    months = [Interval.month(2015 + m // 12, m % 12 + 1) for m in range(BANDS)]
    stack_mb = SIZE * SIZE * BANDS * 4 / 2 ** 20
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        landsat, s2, s1 = make_stacks(tmp, grid, months)
        print(f"inputs: 3 stacks {BANDS} x {SIZE} x {SIZE} ({stack_mb:.0f} MB each as float32) "
              f"written in {time.perf_counter() - t0:.1f} s; peak RSS so far {peak_rss_mb():.0f} MB")

        srcs = [open_raster(p) for p in (landsat, s2, s1)]
        with Timer() as t_io, StackWriter(os.path.join(tmp, "copy.tif"), grid, months, "c") as w:
            for b in range(BANDS):
                bands = [read_band(ds, b + 1) for ds in srcs]
                w.write(b, bands[0])
        print(f"baseline I/O floor (read 3 x {BANDS} bands, write {BANDS}): {t_io}")

        fused, count, filled = (os.path.join(tmp, n) for n in ("fused.tif", "count.tif",
                                                               "filled.tif"))
        tracemalloc.start()  # numpy reports its arrays to tracemalloc: what the code holds
        with Timer() as t_fuse:
            fuse_summary = fuse_stacks([landsat, s2], fused, "0.3,0.5,0.2", s1, count)
        peak_fuse = tracemalloc.get_traced_memory()[1] / 2 ** 20
        tracemalloc.reset_peak()
        with Timer() as t_fill:
            summary = gapfill_stack(fused, s1, filled, 10, 2.0)
        peak_fill = tracemalloc.get_traced_memory()[1] / 2 ** 20
        tracemalloc.stop()
        before = np.mean([s["valid_share"] for s in fuse_summary])
        after = 1 - np.mean([s["empty_share"] for s in summary])
        wall, cpu = t_fuse.wall + t_fill.wall, t_fuse.cpu + t_fill.cpu
        print(f"fuse (2 primaries + S1, with count stack): {t_fuse}; gap fill (window 10, "
              f"sigma 2): {t_fill}; total {wall:.1f} s wall, {cpu:.1f} s CPU (target < 60 s) = "
              f"{cpu / t_io.cpu:.1f} x the I/O floor's CPU time")
        print(f"valid pixels: fused {100 * before:.1f} % -> gap-filled {100 * after:.1f} %; "
              f"output {read_stack_info(filled).count} bands")
        band_mb = SIZE * SIZE * 4 / 2 ** 20
        print(f"arrays held at peak: fusion {peak_fuse:.0f} MB, gap fill {peak_fill:.0f} MB "
              f"(= {peak_fuse / band_mb:.0f} and {peak_fill / band_mb:.0f} float32 bands of "
              f"{band_mb:.1f} MB) against {3 * stack_mb:.0f} MB of input stacks; process peak "
              f"RSS {peak_rss_mb():.0f} MB including GDAL's 256 MB block cache")


if __name__ == "__main__":
    main()
