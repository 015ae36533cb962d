"""Loads cubes written by exportcube with TICOI's loader and compares them with the truth.

Run by bench/bench_itslive.py with the Python of the TICOI venv (issue 16's ``make ticoi-venv``:
numpy 2, no system site-packages), so it imports nothing of the plugin. Usage:
``python ticoi_cube_check.py truth.npz cube.nc [cube.zarr ...]``; truth.npz holds ``vx``, ``vy``
(time, row, col, m/yr) and ``date1``/``date2`` (ISO strings). Exit status 1 on any mismatch.
"""

import sys

import numpy as np
from ticoi.cube_data_classxr import CubeDataClass


def main(truth_path, cubes):
    truth = np.load(truth_path)
    bad = 0
    for path in cubes:
        cube = CubeDataClass()
        cube.load(path)
        ds = cube.ds.transpose("mid_date", "y", "x")
        d1 = [str(d)[:10] for d in ds["date1"].values]
        d2 = [str(d)[:10] for d in ds["date2"].values]
        ok = (cube.nz == truth["vx"].shape[0] and d1 == list(truth["date1"])
              and d2 == list(truth["date2"])
              and np.array_equal(ds["vx"].values, truth["vx"], equal_nan=True)
              and np.array_equal(ds["vy"].values, truth["vy"], equal_nan=True)
              and "+proj=utm" in ds.attrs.get("proj4", ""))
        print(f"TICOI loader, {path.rsplit('.', 1)[-1]}: {cube.nz} layers of {cube.ny} x {cube.nx} "
              f"pixels, {cube.resolution:g} m, dates {d1[0]}..{d2[-1]}: "
              f"{'same values and dates' if ok else 'MISMATCH'}")
        bad += not ok
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
