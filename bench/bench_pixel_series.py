"""Dock benchmark: a pixel's series from 300-band stacks, and how long the UI is blocked.

Figures: the 1×1-window read (first click in a tile: the tile of every band is decompressed;
then a neighbouring pixel, as when dragging) beside two baselines measured in the same run —
reading every whole band and indexing it, and QGIS's ``provider.sample`` per band; then the
dock's event loop while it reads three 300-band stacks at a new point: its longest stall against
the time the reads take (what a read on the UI thread would freeze).
"""

import os
import tempfile
import time

import numpy as np

from glacier_velocity.core.io.dates import Interval
from glacier_velocity.core.io.grid import Grid
from glacier_velocity.core.io.pixel_series import StackPixelReader
from glacier_velocity.core.io.products import StackWriter
from glacier_velocity.core.io.raster import iter_tiles, read_band

BANDS, SIZE = 300, 768


def write_test_stack(path, seed):
    grid = Grid.from_bounds(400000, 3300000, 30, SIZE, SIZE, 32645)
    intervals = [Interval.month(2000 + m // 12, m % 12 + 1) for m in range(BANDS)]
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    base = (100 + 80 * np.sin(3 * xx) * np.cos(2 * yy)).astype(np.float32)
    season = 1 + 0.2 * np.sin(np.arange(BANDS) / 12 * 2 * np.pi)
    # tile by tile, every band of a tile at once: the stack is pixel-interleaved, so writing
    # whole bands one after the other would recompress every tile once per band
    with StackWriter(path, grid, intervals, "landsat") as w:
        for _, (r0, c0, nr, nc), _ in iter_tiles(grid.shape, 256):
            cube = base[r0:r0 + nr, c0:c0 + nc] * season[:, None, None]
            cube = cube + rng.normal(0, 5, cube.shape)
            cube[rng.random(cube.shape) < 0.3] = np.nan
            for b in range(BANDS):
                w.write(b, cube[b].astype(np.float32), r0, c0)
    return grid


def centre(grid, row, col):
    return grid.transform[0] + (col + 0.5) * grid.dx, grid.transform[3] - (row + 0.5) * grid.dy


def reads(path, grid):
    reader = StackPixelReader(path)
    t0 = time.perf_counter()
    first = reader.read(*centre(grid, 300, 300))
    t1 = time.perf_counter()
    second = reader.read(*centre(grid, 301, 302))
    t2 = time.perf_counter()
    whole = np.array([read_band(path, b + 1)[300, 300] for b in range(BANDS)])
    t3 = time.perf_counter()
    np.testing.assert_array_equal(first.values, whole)
    assert np.isfinite(second.values).any()
    print(f"{BANDS}-band {SIZE}x{SIZE} stack, one pixel: 1x1 windows {1000 * (t1 - t0):.0f} ms "
          f"(first click in a tile), {1000 * (t2 - t1):.1f} ms (neighbouring pixel, dragging); "
          f"baseline whole bands {1000 * (t3 - t2):.0f} ms")
    return t1 - t0


def qgis_figures(paths, grid):
    from qgis.core import (QgsApplication, QgsCoordinateReferenceSystem, QgsPointXY, QgsProject,
                           QgsRasterLayer)

    app = QgsApplication([], True)
    app.initQgis()
    from qgis.gui import QgsMapCanvas
    from qgis.PyQt.QtCore import QTimer

    from glacier_velocity.ui.dock import GlacierVelocityDock

    layer = QgsRasterLayer(paths[0], "s0")
    provider = layer.dataProvider()
    point = QgsPointXY(*centre(grid, 600, 100))
    t0 = time.perf_counter()
    sampled = [provider.sample(point, b + 1)[0] for b in range(BANDS)]
    t1 = time.perf_counter()
    ours = StackPixelReader(paths[0]).read(point.x(), point.y())
    t2 = time.perf_counter()
    np.testing.assert_allclose(np.array(sampled, float), ours.values, equal_nan=True)
    print(f"same pixel in a new tile: QGIS provider.sample per band {1000 * (t1 - t0):.0f} ms "
          f"(baseline), 1x1 windows {1000 * (t2 - t1):.0f} ms")

    canvas = QgsMapCanvas()
    canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:32645"))

    class Iface:
        def mapCanvas(self):  # noqa: N802
            return canvas

    for k, path in enumerate(paths):
        QgsProject.instance().addMapLayer(QgsRasterLayer(path, f"stack {k}"))
    dock = GlacierVelocityDock(Iface())
    dock.resize(900, 700)
    dock.show()
    ts = dock.timeseries
    ts.refresh_stacks()
    ticks = []
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    app.processEvents()
    t0 = time.perf_counter()
    ticks.append(t0)
    ts.show_point(QgsPointXY(*centre(grid, 700, 700)))  # a tile no reader has touched
    ts.wait_idle(120)
    t1 = time.perf_counter()
    timer.stop()
    stall = max(np.diff(ticks)) if len(ticks) > 1 else t1 - t0
    assert len(ts.current) == len(paths)
    print(f"dock, {len(paths)} stacks of {BANDS} bands at a new point: plotted after "
          f"{t1 - t0:.2f} s; longest UI stall {1000 * stall:.0f} ms (a read on the UI thread "
          f"would freeze it {t1 - t0:.2f} s)")
    dock.close_tools()
    QgsProject.instance().removeAllMapLayers()


def main():
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        paths = [os.path.join(tmp, f"stack{k}.tif") for k in range(3)]
        for k, path in enumerate(paths):
            grid = write_test_stack(path, k)
        print(f"(wrote 3 test stacks in {time.perf_counter() - t0:.0f} s)")
        reads(paths[0], grid)
        qgis_figures(paths, grid)


if __name__ == "__main__":
    main()
