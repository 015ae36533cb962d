"""Run TICOI (PyPI ``ticoi``) pixel by pixel on pairs handed over in an .npz file, and write its
calendar-month velocities to another .npz. Runs in the bench-only venv of ``make ticoi-venv``
(numpy 2, no GDAL, no system site-packages): it imports nothing from the plugin.

Input arrays: ``start``, ``end`` (pair dates, days since 1970-01-01), ``vx``, ``vy`` (pairs ×
pixels, m/yr, NaN = missing), ``error`` (pairs, m/yr), ``edges`` (month edges, days since
1970-01-01). TICOI inverts displacements between consecutive acquisition dates (its default
solver LSMR, first-order regularisation with its default coefficient 100, Tukey iterations, first
pass without baselines over 180 days); the month means follow from its cumulative displacement,
linear between its dates, differenced at the month edges. Output: ``vx``, ``vy`` (months ×
pixels, m/yr) and ``cpu_seconds`` of the inversions alone.
Usage: python ticoi_runner.py input.npz output.npz
"""

import sys
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore")


def main(src, dst):
    from ticoi.core import inversion_core

    data = np.load(src)
    start, end, edges = data["start"], data["end"], data["edges"].astype(np.float64)
    days = (end - start).astype(np.float64)
    vx_all, vy_all, error = data["vx"], data["vy"], data["error"]
    n_pix = vx_all.shape[1]
    out = {q: np.full((len(edges) - 1, n_pix), np.nan) for q in ("vx", "vy")}
    dates = np.stack([start, end], axis=1).astype("datetime64[D]")
    inversion_core([dates[:3], np.zeros((3, 5)) + 1], 0, 0, regu="1")  # numba compiles here
    t0 = time.process_time()
    for p in range(n_pix):
        ok = np.isfinite(vx_all[:, p]) & np.isfinite(vy_all[:, p])
        if ok.sum() < 2:
            continue
        values = np.column_stack([vx_all[ok, p] * days[ok] / 365.0, vy_all[ok, p] * days[ok] / 365.0,
                                  error[ok], error[ok], days[ok]])
        _, result, _ = inversion_core([dates[ok], values], 0, p, solver="LSMR", regu="1", coef=100,
                                      unit=365)
        if result is None:
            continue
        t = np.concatenate([[result["date1"].values[0]], result["date2"].values])
        t = t.astype("datetime64[D]").astype(np.float64)
        for q, col in (("vx", "result_dx"), ("vy", "result_dy")):
            cum = np.concatenate([[0.0], np.cumsum(result[col].values)])
            at = np.interp(edges, t, cum, left=np.nan, right=np.nan)
            out[q][:, p] = np.diff(at) / np.diff(edges) * 365.0
    np.savez(dst, vx=out["vx"], vy=out["vy"], cpu_seconds=time.process_time() - t0)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
