"""Correlation benchmark: accuracy and speed against scikit-image, memory, cancel latency.

1. Accuracy and speed on the same 32 x 32 windows (band-limited texture moved by uniform shifts
   in [-4, 4] px, 1 % noise): ours against a loop over
   ``skimage.registration.phase_cross_correlation(upsample_factor=100)`` on the raw windows and
   on Hann-tapered windows (the better one is the baseline).
2. Throughput of ours on a large batch (windows per second, wall and CPU time).
3. Memory: files of growing size correlated in a child process each; peak RSS stays flat
   because the work goes strip by strip (memory depends on the image width only).
4. Cancel latency: time from the cancel request to the end of ``correlate_images``.
5. End to end (read, pre-process, correlate, write) on a 1024 x 1024 pair at step 2, windows per
   second, under uniform motion and under 1.5 % shear, with window deformation on and off (its
   cost, and its accuracy against the exact displacement).
6. A full Sentinel-2 tile at step 3, extrapolated from a full-width strip (time, peak RSS),
   beside scikit-image's rate.
7. Perito Moreno closure per pre-processing (real Sentinel-2 renderings, when ../shared/data is
   present): the measurement the automatic pre-processing is chosen from.

The machine may be shared: the load average is printed beside the timings.
"""

import os
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

from benchutil import peak_rss_mb

from glacier_velocity.core.correlation.engine import (CorrelatorOptions, correlate_windows,
                                                      window_layout)
from glacier_velocity.core.errors import Cancelled
from glacier_velocity.core.io.grid import Grid
from glacier_velocity.core.io.products import read_pair_product
from glacier_velocity.core.correlation import images as IC
from glacier_velocity.core.correlation.images import correlate_images
from glacier_velocity.core.progress import Progress
from glacier_velocity.core.io.raster import RasterWriter
from glacier_velocity.core.sampledata.scene import band_limited_noise, render_pair_images

WINDOW = 32
TILE_SIDE = 10980  # px, a Sentinel-2 tile at 10 m


def shifted_images(count, size, noise, rng):
    """``count`` image pairs (size x size) moved by random uniform shifts in [-4, 4] px."""
    out = []
    for _ in range(count):
        dc, dr = rng.uniform(-4, 4, 2)
        fine = band_limited_noise((3 * size, 3 * size), rng, 0.1)
        ref, sec = render_pair_images(fine, np.full(fine.shape, 3 * dc), np.full(fine.shape, 3 * dr))
        sd = ref.std()
        ref = (ref + noise * sd * rng.standard_normal(ref.shape)).astype(np.float32)
        sec = (sec + noise * sd * rng.standard_normal(sec.shape)).astype(np.float32)
        out.append((ref, sec, dc, dr))
    return out


def accuracy_and_speed():
    """Ours and scikit-image on the same windows of 12 image pairs laid side by side."""
    rng = np.random.default_rng(0)
    size = 160
    images = shifted_images(12, size, 0.01, rng)
    ref = np.block([[images[3 * i + j][0] for j in range(3)] for i in range(4)])
    sec = np.block([[images[3 * i + j][1] for j in range(3)] for i in range(4)])
    starts = np.arange(8, size - WINDOW - 8, 8)  # windows (and moved twins) inside their tile
    rows, cols, truth = [], [], []
    for k, (_, _, dc, dr) in enumerate(images):
        r, c = (a.ravel() for a in np.meshgrid(starts, starts, indexing="ij"))
        rows.append(r + size * (k // 3))
        cols.append(c + size * (k % 3))
        truth.append(np.tile([dc, dr], (r.size, 1)))
    rows, cols, truth = np.concatenate(rows), np.concatenate(cols), np.concatenate(truth)
    n = rows.size
    options = CorrelatorOptions((WINDOW, WINDOW))
    correlate_windows(ref, sec, rows[:256], cols[:256], options)  # warm-up
    t0 = time.perf_counter()
    r, c, _ = correlate_windows(ref, sec, rows, cols, options)
    t_ours = time.perf_counter() - t0
    ours = np.column_stack([c, r]) - truth

    from skimage.registration import phase_cross_correlation

    hann = np.outer(np.hanning(WINDOW), np.hanning(WINDOW))
    base = {}
    for name, taper in (("raw windows", None), ("Hann-tapered", hann)):
        errs, t_base = [], 0.0
        for r0, c0, (dc, dr) in zip(rows, cols, truth):
            a = ref[r0:r0 + WINDOW, c0:c0 + WINDOW]
            b = sec[r0:r0 + WINDOW, c0:c0 + WINDOW]
            if taper is not None:
                a, b = (a - a.mean()) * taper, (b - b.mean()) * taper
            t0 = time.perf_counter()
            shift = phase_cross_correlation(a, b, upsample_factor=100)[0]
            t_base += time.perf_counter() - t0
            errs.append((-shift[1] - dc, -shift[0] - dr))
        errs = np.array(errs)
        base[name] = (np.sqrt(np.mean(errs ** 2, axis=0)), n / t_base)
    rmse = np.sqrt(np.mean(ours ** 2, axis=0))
    bias = ours.mean(axis=0)
    print(f"Accuracy on the same {n} windows (32 x 32, uniform shifts in [-4, 4] px, 1 % noise):")
    print(f"  ours: RMSE east {rmse[0]:.4f} px, south {rmse[1]:.4f} px, bias {bias[0]:+.4f} / "
          f"{bias[1]:+.4f} px; {n / t_ours:,.0f} windows/s")
    for name, (r, speed) in base.items():
        print(f"  skimage phase_cross_correlation(upsample_factor=100), {name}: RMSE east "
              f"{r[0]:.4f} px, south {r[1]:.4f} px; {speed:,.0f} windows/s")
    best = min(base.items(), key=lambda kv: kv[1][0].max())
    print(f"  ours vs the better baseline ({best[0]}): {best[1][0].max() / rmse.max():.0f}x more "
          f"accurate, {n / t_ours / best[1][1]:.0f}x faster")
    return n / t_ours / best[1][1]


def throughput():
    rng = np.random.default_rng(1)
    fine = band_limited_noise((3 * 720, 3 * 720), rng, 0.1)
    ref, sec = render_pair_images(fine, np.full(fine.shape, 2.2), np.full(fine.shape, -1.3))
    ref, sec = ref.astype(np.float32), sec.astype(np.float32)
    starts = np.arange(8, 720 - WINDOW - 8, 2)
    rows, cols = (a.ravel() for a in np.meshgrid(starts, starts, indexing="ij"))
    options = CorrelatorOptions((WINDOW, WINDOW))
    correlate_windows(ref, sec, rows[:4096], cols[:4096], options)  # warm-up
    rates = {}
    for threads in (1, None):
        t0, c0 = time.perf_counter(), time.process_time()
        correlate_windows(ref, sec, rows, cols, options, threads=threads)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        rates[threads] = (rows.size / wall, rows.size / cpu)
    print(f"Throughput on {rows.size:,} windows of 32 x 32 (sub-pixel included; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores while measuring):")
    print(f"  one thread: {rates[1][0]:,.0f} windows/s wall ({rates[1][1]:,.0f} per CPU-second)")
    print(f"  default ({min(os.cpu_count(), 8)} threads): {rates[None][0]:,.0f} windows/s wall "
          f"({rates[None][1]:,.0f} per CPU-second)")
    return rates[None][0]


def _write_texture(path, shape, shift):
    """A textured GeoTIFF written in blocks (band-limited noise tiles, moved by ``shift`` px)."""
    grid = Grid.from_bounds(400000, 5000000, 10.0, shape[0], shape[1], 32632)
    with RasterWriter(path, grid) as w:
        for r0 in range(0, shape[0], 512):
            nr = min(512, shape[0] - r0)
            tile = band_limited_noise((nr + 16, shape[1]), np.random.default_rng([r0, 7]), 0.3)
            tile = np.roll(tile, shift, axis=1)[8:8 + nr]
            w.write(1, tile.astype(np.float32), r0, 0)


def memory_child(a, b, out, strip=None):
    """Child process: correlate the pair a, b at step 8 (in strips of ``strip`` pixels, default
    the plugin's); print peak RSS (MB), seconds, windows."""
    IC.STRIP_PIXELS = strip or IC.STRIP_PIXELS
    t0 = time.perf_counter()
    res = correlate_images(a, b, out, step=8)
    print(f"{peak_rss_mb():.0f} {time.perf_counter() - t0:.1f} {res['windows']}")


def _in_child(child, shape, *extra):
    """Run ``bench_correlation.<child>(a, b, out, *extra)`` in a fresh process on a textured pair
    of ``shape`` written beforehand (so its peak RSS is the correlation's alone); its printed
    words."""
    with tempfile.TemporaryDirectory() as tmp:
        a, b = os.path.join(tmp, "a_20200101.tif"), os.path.join(tmp, "b_20200121.tif")
        _write_texture(a, shape, 0)
        _write_texture(b, shape, 1)
        code = (f"import sys; sys.path[:0] = {sys.path!r}; "
                f"from bench_correlation import {child}; "
                f"{child}({a!r}, {b!r}, {os.path.join(tmp, 'out.tif')!r}, *{extra!r})")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             cwd=os.path.dirname(os.path.abspath(__file__)))
    if out.returncode != 0:
        print(out.stderr[-2000:])
        raise SystemExit(1)
    return out.stdout.split()


def memory():
    print("Peak memory of correlate_images (default options, step 8), one child process each "
          "(inputs written beforehand by this process):")
    peaks = []
    small = 4_000_000  # strips of the first two cases, so that they hold one and four strips
    for rows, cols, strip in ((4096, 1024, small), (16384, 1024, small), (1152, 10980, None)):
        mb, secs, windows = _in_child("memory_child", (rows, cols), strip)[-3:]
        peaks.append(float(mb))
        print(f"  {rows:>5} x {cols:<5} px ({rows * cols / 1e6:4.1f} Mpx, {int(windows):,} windows): "
              f"peak RSS {float(mb):.0f} MB, {float(secs):.1f} s")
    print(f"  4x the pixels (second case against the first; strips of {small / 1e6:g} Mpx there, "
          f"{IC.STRIP_PIXELS / 1e6:g} in the plugin) costs {peaks[1] - peaks[0]:+.0f} MB: memory "
          "is set by the strip (image width), not the image height; the 10,980-px-wide case is "
          "one strip of a full Sentinel-2 tile, "
          "whose whole run therefore peaks at about the same memory, plus the output blocks GDAL "
          "caches before writing them (< 0.5 GB for a tile at step 2, capped by GDAL_CACHEMAX).")


def cancel_latency():
    with tempfile.TemporaryDirectory() as tmp:
        a, b = os.path.join(tmp, "a_20200101.tif"), os.path.join(tmp, "b_20200121.tif")
        _write_texture(a, (1536, 1536), 0)
        _write_texture(b, (1536, 1536), 1)
        latencies = []
        for delay in (0.7, 1.9, 3.1):
            asked = []
            timer = threading.Timer(delay, asked.append, [None])
            t0 = time.perf_counter()
            timer.start()
            try:
                correlate_images(a, b, os.path.join(tmp, "out.tif"), step=2,
                                 progress=Progress(None, asked.__len__))
                print("  (finished before the cancel request)")
            except Cancelled:
                latencies.append(time.perf_counter() - t0 - delay)
    print("Cancel latency (1536 x 1536 pair, step 2, cancel after 0.7 / 1.9 / 3.1 s): "
          + ", ".join(f"{x:.2f} s" for x in latencies) + " from the request to the stop")


def _write_grid(path, grid, array):
    with RasterWriter(path, grid) as w:
        w.write(1, array.astype(np.float32), 0, 0)


def end_to_end():
    """correlate_images on 1024 x 1024 files, step 2 (~260 k windows): uniform motion, then a
    simple shear of 1.5 % (east displacement growing southward), deformation on and off."""
    size, step, g = 1024, 2, 0.015
    rng = np.random.default_rng(5)
    fine = band_limited_noise((3 * size, 3 * size), rng, 0.1)
    rows = np.arange(3 * size)[:, None] / 3.0 + 0.5 / 3.0
    grid = Grid.from_bounds(400000, 5000000, 10.0, size, size, 32632)
    print(f"End to end (read, pre-process 'auto' = high-pass, correlate, write), "
          f"{size} x {size} px pair, step {step} (load average {os.getloadavg()[0]:.1f}):")
    with tempfile.TemporaryDirectory() as tmp:
        a = os.path.join(tmp, "a_20200101.tif")
        for name, d_col in (("uniform", np.full(fine.shape, 3 * 1.3)),
                            ("1.5 % shear", 3 * (1.3 + g * (rows - size / 2)) + 0 * fine)):
            ref, sec = render_pair_images(fine, d_col, np.full(fine.shape, 3 * -0.6))
            _write_grid(a, grid, ref)
            b = os.path.join(tmp, "b_20200121.tif")
            _write_grid(b, grid, sec)
            times, cpus = {}, {}
            for deform in (True, False):
                out = os.path.join(tmp, f"out_{deform}.tif")
                t0, c0 = time.perf_counter(), time.process_time()
                res = correlate_images(a, b, out, step=step, deform=deform)
                times[deform] = time.perf_counter() - t0
                cpus[deform] = time.process_time() - c0
                info, d = read_pair_product(out)
                centre = 0.5 * step + step * np.arange(info.grid.rows)[:, None]
                # the exact displacement of each window's content, D = d(c + D)
                truth = 1.3 + (g * (centre - 0.6 - size / 2) if name != "uniform" else 0.0)
                err = d["vx"] * (20 / 365.25) / 10.0 - truth
                rmse = float(np.sqrt(np.nanmean(err ** 2)))
                print(f"  {name}, deformation {'on ' if deform else 'off'}: "
                      f"{res['windows'] / times[deform]:,.0f} windows/s wall "
                      f"({res['windows'] / cpus[deform]:,.0f} per CPU-second, load average "
                      f"{os.getloadavg()[0]:.1f}), east RMSE {rmse:.4f} px")
            print(f"  {name}: deformation costs {times[True] / times[False]:.2f}x the time "
                  f"({cpus[True] / cpus[False]:.2f}x the CPU time)")


def tile_child(a, b, out):
    """Child process: correlate a, b at step 3 (defaults otherwise); print peak RSS (MB),
    seconds, CPU seconds, windows, and the share of windows a full tile correlates beyond the
    strip's (its strips' deformation halos, see :func:`correlated_rows`)."""
    t0, c0 = time.perf_counter(), time.process_time()
    res = correlate_images(a, b, out, step=3)
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    job = IC._PairJob(a, b, WINDOW, 3, None, None, None, "auto", IC.DEFAULT_SIZE, None, None,
                      (0.0, 0.0), 1, 0.0)  # the strips of a tile as wide as this strip
    tile_rows = window_layout((TILE_SIDE, TILE_SIDE), (WINDOW, WINDOW), 3)[0][0]
    rows = res["grid"].rows
    extra = (correlated_rows(tile_rows, job.tile, job.halo) / tile_rows) / (
        correlated_rows(rows, job.tile, job.halo) / rows)
    print(f"{peak_rss_mb():.0f} {secs:.1f} {cpu:.1f} {res['windows']} {extra:.4f}")


def correlated_rows(rows, tile, halo):
    """Rows of windows correlated for ``rows`` product rows in strips of ``tile`` rows, each with
    ``halo`` rows of neighbours on both sides (within the image)."""
    return sum(min(rows, i0 + tile + halo) - max(0, i0 - halo) for i0 in range(0, rows, tile))


def sentinel2_tile(rows=1152):
    """A full Sentinel-2 tile (10,980 x 10,980 px) at step 3, from a strip of ``rows`` x 10,980
    px (at least one strip of the tile's, :data:`core.correlation.images.STRIP_PIXELS`) run end
    to end (read, pre-process, correlate, write) in a child process, extrapolated by the number
    of windows correlated (the tile's strips add deformation halos); memory does not grow with
    the height (strips), so the strip's peak RSS is the tile's. Beside it the scikit-image baseline's rate on the same machine now."""
    from skimage.registration import phase_cross_correlation

    side = TILE_SIDE
    load = os.getloadavg()[0]
    mb, secs, cpu, windows, extra = (float(v) for v in _in_child("tile_child", (rows, side))[-5:])
    tile_windows = (side // 3) ** 2
    scale = tile_windows / windows * extra
    rng = np.random.default_rng(3)
    ref, sec, _, _ = shifted_images(1, 256, 0.01, rng)[0]
    t0 = time.perf_counter()
    count = 0
    for r in range(0, 256 - WINDOW, 24):
        for c in range(0, 256 - WINDOW, 24):
            phase_cross_correlation(ref[r:r + WINDOW, c:c + WINDOW],
                                    sec[r:r + WINDOW, c:c + WINDOW], upsample_factor=100)
            count += 1
    sk_rate = count / (time.perf_counter() - t0)
    print(f"Full Sentinel-2 tile ({side:,} x {side:,} px, step 3 = {tile_windows / 1e6:.1f} M "
          f"windows), extrapolated from a {rows} x {side:,} px strip ({windows:,.0f} windows) run "
          f"end to end, with the {100 * (extra - 1):.1f} % more windows its strips' halos "
          f"correlate (load average {load:.1f} on {os.cpu_count()} cores when it started):")
    print(f"  ours: {windows / secs:,.0f} windows/s wall ({windows / cpu:,.0f} per CPU-second), "
          f"tile ~{secs * scale / 60:.1f} min wall (~{cpu * scale / 60 / (os.cpu_count() or 1):.1f} "
          f"min on {os.cpu_count()} free cores from the CPU time), peak RSS {mb:.0f} MB "
          "(target: under 6 min, under 2 GB)")
    print(f"  scikit-image phase_cross_correlation(upsample_factor=100), one window after the "
          f"other: {sk_rate:,.0f} windows/s, tile ~{tile_windows / sk_rate / 60:.0f} min")


def perito_closure():
    """Closure of the five Perito Moreno triplets per pre-processing (the evidence behind the
    automatic choice; needs ../shared/data)."""
    import importlib.util

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spec = importlib.util.spec_from_file_location(
        "real_data_walkthrough", os.path.join(root, "scripts", "real_data_walkthrough.py"))
    walk = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(walk)
    if not os.path.isdir(walk.DATA):
        print("Perito Moreno closure: ../shared/data absent, skipped.")
        return
    print("Perito Moreno closure (five triplets of consecutive dates, WINDOW 32, STEP 8, the "
          "walk-through's cleaning; median of the triplets' median ice closures, share of ice "
          "windows valid in all three pairs; target <= 0.08 px with >= 65 %):")
    with tempfile.TemporaryDirectory() as tmp:
        for method in ("auto", "orientation", "none", "highpass", "wallis"):
            t0 = time.perf_counter()
            rows = walk.perito_closure(tmp, preprocess=method)
            median, share = walk.closure_summary(rows)
            along = [r["median_along_flow_px"] for r in rows if r["valid_share"] >= 0.1]
            print(f"  {method:<12} median {median:.3f} px, {100 * share:.0f} % valid, along flow "
                  + " ".join(f"{a:+.3f}" for a in along)
                  + f" ({time.perf_counter() - t0:.0f} s)")
            if method == "auto":
                print("    per triplet: " + ", ".join(
                    f"{r['triplet'][4:8]}-{r['triplet'][-4:]} {100 * r['valid_share']:.0f} %"
                    for r in rows))
                print("    where the ice windows go (pair: median SNR; removed by the SNR, speed "
                      "and other filters; left):")
                for r in walk.closure_losses(tmp, preprocess=method, data=walk.DATA):
                    rm = r["removed"]
                    others = sum(v for k, v in rm.items() if k not in ("snr", "speed"))
                    print(f"      {r['pair']} ({r['days']} d): {r['median_snr']:.2f}; "
                          f"{100 * rm['snr']:.0f} / {100 * rm['speed']:.0f} / {100 * others:.0f} "
                          f"%; {100 * r['valid_share']:.0f} %")


def main():
    speedup = accuracy_and_speed()
    rate = throughput()
    print(f"Full Sentinel-2 tile (10,980 x 10,980 px, step 3 = 13.4 M windows) at this rate: "
          f"~{13.4e6 / rate / 60:.0f} min of correlation.")
    memory()
    cancel_latency()
    end_to_end()
    sentinel2_tile()
    perito_closure()
    if speedup < 3:
        print("WARNING: less than 3x faster than the baseline in this run (loaded machine?)")


if __name__ == "__main__":
    main()
