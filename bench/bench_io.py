"""I/O benchmark: tiled write and windowed read of a large stack (memory stays bounded)."""

import os
import tempfile
import time

import numpy as np

from benchutil import peak_rss_mb

from glacier_velocity.core.io.dates import Interval
from glacier_velocity.core.io.grid import Grid
from glacier_velocity.core.io.products import StackWriter, read_stack_info
from glacier_velocity.core.io.raster import iter_tiles, read_band


def main():
    grid = Grid.from_bounds(400000, 3300000, 30, 2000, 2000, 32645)
    months = [Interval.month(2015 + m // 12, m % 12 + 1) for m in range(72)]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "stack.tif")
        t0 = time.perf_counter()
        rng = np.random.default_rng(0)
        with StackWriter(path, grid, months, "landsat") as w:
            for b in range(len(months)):
                for _, (r0, c0, nr, nc), _ in iter_tiles(grid.shape, 512):
                    w.write(b, rng.random((nr, nc), np.float32), r0, c0)
        t1 = time.perf_counter()
        total = 0.0
        info = read_stack_info(path)
        for b in range(info.count):
            for read, _, _ in iter_tiles(grid.shape, 512):
                total += float(np.nansum(read_band(path, b + 1, read)))
        t2 = time.perf_counter()
        mb = 2000 * 2000 * len(months) * 4 / 2 ** 20
        print(f"stack {len(months)} x 2000 x 2000 ({mb:.0f} MB as float32): tiled write "
              f"{t1 - t0:.1f} s ({mb / (t1 - t0):.0f} MB/s), tiled read {t2 - t1:.1f} s; peak RSS "
              f"{peak_rss_mb():.0f} MB (GDAL cache capped at 256 MB by bench/run.py)")


if __name__ == "__main__":
    main()
