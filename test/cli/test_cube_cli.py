"""ITS_LIVE import and cube export headless, as a script user runs them with qgis_process."""

import datetime as dt
import os

import numpy as np
import pytest

from glacier_velocity.core.io.products import read_pair_product, read_stack, write_stack
from glacier_velocity.core.io.dates import Interval
from glacier_velocity.core.io.grid import Grid
from glacier_velocity.core.sampledata.itslive import write_cube

netCDF4 = pytest.importorskip("netCDF4")


def test_import_then_export_headless(qgis_process, tmp_path):
    rng = np.random.default_rng(4)
    n = 6
    vx, vy = rng.normal(90, 20, (n, 12, 14)), rng.normal(10, 5, (n, 12, 14))
    starts = [dt.datetime(2021, 3, 1) + dt.timedelta(days=12 * i) for i in range(n)]
    ends = [s + dt.timedelta(days=12) for s in starts]
    cube = write_cube(str(tmp_path / "itslive cube.nc"), vx, vy, starts, ends, ["1A"] * n,
                      (600000.0, 240.0, 0.0, 7000000.0, 0.0, -240.0), 32606)
    pairs = tmp_path / "pairs"
    qgis_process("run", "glaciervelocity:importitslive", "--", f"INPUT={cube}",
                 "MAX_DAYS=20", f"OUTPUT={pairs}")
    names = sorted(os.listdir(pairs))
    assert names == [f"sentinel1_{s:%Y%m%d}_{e:%Y%m%d}.tif" for s, e in zip(starts, ends)]
    info, data = read_pair_product(str(pairs / names[2]))
    np.testing.assert_array_equal(data["vx"], np.round(vx[2]).astype(np.float32))
    assert info.grid.transform == (600000.0, 240.0, 0.0, 7000000.0, 0.0, -240.0)

    grid = Grid.from_bounds(600000, 7000000, 240, 12, 14, 32606)
    months = [Interval.month(2021, m) for m in range(3, 9)]
    stack = write_stack(str(tmp_path / "v.tif"), grid, np.abs(vx), months, "sentinel1")
    out = tmp_path / "v cube.nc"
    qgis_process("run", "glaciervelocity:exportcube", "--", f"INPUT={stack}", f"OUTPUT={out}")
    with netCDF4.Dataset(out) as nc:
        np.testing.assert_array_equal(nc["v"][:], read_stack(stack)[1])
        assert list(nc["date_dt"][:]) == [iv.days for iv in months]
