"""Real-data walk-through (README): run the plugin headless on the real data in ../shared/data.

1. Perito Moreno (Sentinel-2 renderings, EPSG:4326 JPEG): warp two dates to UTM 18S at 10 m and run
   the shipped model "one pair to a clean velocity map" (models/one_pair_clean_velocity.model3).
2. Kaskawulsh (a raw Landsat 8 feature-tracking map in m/day, with bedrock polygons): clean it with
   ``cleanpair`` and measure stable-ground uncertainty before and after with ``stableuncertainty``.

Everything runs through scripts/qgis-process, as a user's shell script would. Figures are written
when ``figures`` is set. Usage: python3 scripts/real_data_walkthrough.py [OUT_DIR] [--figures DIR]
"""

import csv
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QGIS_PROCESS = os.path.join(ROOT, "scripts", "qgis-process")
DATA = os.path.join(os.path.dirname(ROOT), "shared", "data")
sys.path.insert(0, subprocess.run([os.path.join(ROOT, "scripts", "link-plugin")], check=True,
                                  capture_output=True, text=True).stdout.strip())

# The lower trunk and front of Perito Moreno in UTM 18S (10 m), as in the correlation tests.
PERITO_GRID = (596000.0, 4360600.0, 10.0, 480, 900, 32718)


def qgis_process(*args):
    proc = subprocess.run([QGIS_PROCESS, "run", *map(str, args)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"qgis_process {' '.join(map(str, args))} failed:\n"
                           f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc.stdout


def perito_moreno(out, data=DATA):
    """Warp the 2020-01-01 and 2020-01-21 images, run the one-pair model; return output paths."""
    images = list(perito_images(out, data, ("20200101", "20200121")).values())
    raw, clean = os.path.join(out, "perito_raw.tif"), os.path.join(out, "perito_clean.tif")
    qgis_process(os.path.join(ROOT, "models", "one_pair_clean_velocity.model3"), "--",
                 f"REFERENCE={images[0]}", f"SECONDARY={images[1]}", "WINDOW=32", "STEP=8",
                 # 8-bit JPEG renderings: correct matches have SNR ~0.5-0.9; the front flows >3 m/d
                 "SNR_MIN=0.5", "MAX_SPEED=2000",
                 f"correlate:OUTPUT={raw}", f"clean:OUTPUT={clean}")
    return {"images": images, "raw": raw, "clean": clean}


# The seven Perito Moreno dates; consecutive dates form the five closure triplets
PERITO_DATES = ("20200101", "20200106", "20200121", "20200205", "20200207", "20200220", "20200301")


def perito_images(out, data=DATA, dates=PERITO_DATES):
    """The Perito Moreno renderings warped onto :data:`PERITO_GRID` (cubic spline), once."""
    from glacier_velocity.core.io.grid import Grid
    from glacier_velocity.core.io.raster import warp_to_grid, write_raster

    grid = Grid.from_bounds(*PERITO_GRID)
    images = {}
    for date in dates:
        path = os.path.join(out, f"perito_{date}.tif")
        if not os.path.exists(path):
            write_raster(path, grid, warp_to_grid(os.path.join(data, "perito_moreno", date + ".jpg"),
                                                  grid, "cubicspline", bands=[1]))
        images[date] = path
    return images


def perito_closure(out, preprocess="auto", deform=True, data=DATA):
    """Closure of the five Perito Moreno triplets of consecutive dates with the defaults (WINDOW
    32, STEP 8, no hand-set SEARCH) and the walk-through's cleaning (SNR_MIN 0.5, MAX_SPEED 2000),
    on the glacier mask eroded by 3 product pixels. In process (core functions), so a test and the
    bench can run it. Returns one row per triplet: dates, median_closure_px, valid_share (ice
    windows valid in all three pairs) and median_along_flow_px (see core.correlation.closure)."""
    from scipy import ndimage

    from glacier_velocity.core.correlation.closure import triplet_closure
    from glacier_velocity.core.correlation.images import correlate_images
    from glacier_velocity.core.filters.clean import FilterSettings, clean_pair
    from glacier_velocity.core.io.pairsource import PairSource
    from glacier_velocity.core.io.raster import warp_to_grid

    images = perito_images(out, data)
    products = {}

    def product(a, b):
        if (a, b) not in products:
            raw = os.path.join(out, f"perito_{preprocess}_{int(deform)}_{a}_{b}_raw.tif")
            clean = os.path.join(out, f"perito_{preprocess}_{int(deform)}_{a}_{b}.tif")
            correlate_images(images[a], images[b], raw, window=32, step=8, preprocess=preprocess,
                             deform=deform)
            clean_pair(PairSource(raw), clean, FilterSettings(snr_min=0.5, max_speed=2000.0))
            products[(a, b)] = clean
        return products[(a, b)]

    rows = []
    for a, b, c in zip(PERITO_DATES, PERITO_DATES[1:], PERITO_DATES[2:]):
        paths = [product(a, b), product(b, c), product(a, c)]
        grid = PairSource(paths[2]).grid
        mask = warp_to_grid(os.path.join(data, "perito_moreno", "mask.jpg"), grid, "nearest",
                            bands=[1])[0]
        ice = ndimage.binary_erosion(np.nan_to_num(mask) > 127, iterations=3)
        stats = triplet_closure(paths, region=ice)[0][1]
        rows.append({"triplet": f"{a}-{b}-{c}", **{k: stats[k] for k in (
            "windows", "valid", "median_closure_px", "valid_share", "median_along_flow_px")}})
    return rows


def closure_losses(out, preprocess="auto", deform=True, data=DATA):
    """Where :func:`perito_closure`'s ice windows are lost, per pair (run it first in ``out``):
    one row per pair with its dates, days, median_snr (ice windows), the share of ice windows
    each filter of the walk-through's cleaning removes (``removed``: filter name -> share, in
    chain order) and valid_share (ice windows left)."""
    from scipy import ndimage

    from glacier_velocity.core.filters.clean import FilterSettings, apply_filters
    from glacier_velocity.core.io.pairsource import PairSource
    from glacier_velocity.core.io.raster import warp_to_grid

    triplets = zip(PERITO_DATES, PERITO_DATES[1:], PERITO_DATES[2:])
    pairs = sorted({pair for x, y, z in triplets for pair in ((x, y), (y, z), (x, z))})
    rows, ice = [], None
    for a, b in pairs:
        source = PairSource(os.path.join(out, f"perito_{preprocess}_{int(deform)}_{a}_{b}_raw.tif"))
        vx, vy, snr = source.read()
        if ice is None:
            mask = warp_to_grid(os.path.join(data, "perito_moreno", "mask.jpg"), source.grid,
                                "nearest", bands=[1])[0]
            ice = ndimage.binary_erosion(np.nan_to_num(mask) > 127, iterations=3)
        settings = FilterSettings(snr_min=0.5, max_speed=2000.0).resolved(source)
        cx, _, masks, _ = apply_filters(vx, vy, snr, settings)
        rows.append({"pair": f"{a}-{b}", "days": (source.end - source.start).days,
                     "median_snr": float(np.nanmedian(snr[ice])),
                     "removed": {k: float(m[ice].mean()) for k, m in masks.items()},
                     "valid_share": float(np.isfinite(cx)[ice].mean())})
    return rows


def closure_summary(rows):
    """``(median of the triplets' median closures (px), share of ice windows valid in all three
    pairs over all triplets)``; triplets with fewer than 10 % of their ice windows valid (hazy
    images: a handful of vectors whose median means little) do not count in the median."""
    medians = [r["median_closure_px"] for r in rows if r["valid_share"] >= 0.1]
    share = sum(r["valid"] for r in rows) / max(1, sum(r["windows"] for r in rows))
    return (float(np.median(medians)) if medians else float("nan")), share


def kaskawulsh(out, data=DATA):
    """Clean the raw map (m/day) on bedrock; stable-ground tables before and after (m/yr)."""
    folder = os.path.join(data, "kaskawulsh")
    vx = os.path.join(folder, "20180304-20180405_velo-raw_vx.tif")
    vy = os.path.join(folder, "20180304-20180405_velo-raw_vy.tif")
    bedrock = os.path.join(folder, "bedrock_V2.shp")
    clean = os.path.join(out, "kaskawulsh_clean.tif")
    qgis_process("glaciervelocity:cleanpair", "--", f"INPUT={vx}", f"INPUT_VY={vy}",
                 "INPUT_UNITS=1", f"STABLE={bedrock}", f"OUTPUT={clean}")
    # the raw map as a pair product (m/yr), so both are measured the same way
    from glacier_velocity.core.io.products import write_pair_product
    from glacier_velocity.core.io.raster import raster_grid, read_band

    raw = os.path.join(out, "kaskawulsh_raw.tif")
    write_pair_product(raw, raster_grid(vx), read_band(vx) * 365.25, read_band(vy) * 365.25,
                       np.full(raster_grid(vx).shape, np.nan, np.float32), "2018-03-04",
                       "2018-04-05", "landsat")
    tables = {}
    for name, product in (("raw", raw), ("clean", clean)):
        table = os.path.join(out, f"kaskawulsh_stable_{name}.csv")
        qgis_process("glaciervelocity:stableuncertainty", "--", f"INPUT={product}",
                     f"STABLE={bedrock}", "SAMPLE_SIZE=0", f"OUTPUT_TABLE={table}")
        with open(table) as f:
            tables[name] = list(csv.DictReader(f))
    return {"clean": clean, "tables": tables, "vx": vx, "vy": vy, "bedrock": bedrock,
            "glacier": os.path.join(folder, "glacier_V1_Kaskawulsh_s_inwardBuffer600m.shp")}


def figures(perito, kask, folder):
    """PNG figures of both walk-throughs into ``folder``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from glacier_velocity.core.io.products import read_pair_product
    from glacier_velocity.core.io.raster import read_band

    os.makedirs(folder, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), constrained_layout=True)
    img = read_band(perito["images"][0])
    info, d = read_pair_product(perito["clean"])
    x0, y0, x1, y1 = (c / 1000 for c in info.grid.bounds)  # km
    axes[0].imshow(img, cmap="gray", extent=(x0, x1, y0, y1))
    axes[0].set_title("Perito Moreno, Sentinel-2 2020-01-01 (UTM 18S)")
    speed = d["v"] / 365.25
    im = axes[1].imshow(speed, cmap="viridis", vmin=0, vmax=3, extent=(x0, x1, y0, y1))
    step = 4
    xs, ys = info.grid.centres()
    xx, yy = np.meshgrid(xs / 1000, ys / 1000)
    axes[1].quiver(xx[::step, ::step], yy[::step, ::step], d["vx"][::step, ::step],
                   d["vy"][::step, ::step], color="white", scale=6000, width=0.002)
    axes[1].set_title("Clean velocity 2020-01-01 to 01-21 (one-pair model)")
    fig.colorbar(im, ax=axes[1], label="speed (m/day)")
    for ax in axes:
        ax.set_xlabel("easting (km, UTM 18S)")
        ax.set_ylabel("northing (km)")
    fig.savefig(os.path.join(folder, "real_perito_moreno.png"), dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), constrained_layout=True)
    raw = np.hypot(read_band(kask["vx"]), read_band(kask["vy"]))
    _, c = read_pair_product(kask["clean"])
    for ax, data, title in ((axes[0], raw, "Kaskawulsh raw (m/day)"),
                            (axes[1], c["v"] / 365.25, "Kaskawulsh after cleanpair (m/day)")):
        im = ax.imshow(data, cmap="viridis", vmin=0, vmax=1.5)
        ax.set_title(title)
        ax.set_axis_off()
    fig.colorbar(im, ax=axes, label="speed (m/day)", shrink=0.8)
    fig.savefig(os.path.join(folder, "real_kaskawulsh.png"), dpi=110)
    plt.close(fig)


def main(argv):
    out = argv[0] if argv and not argv[0].startswith("--") else "walkthrough_output"
    os.makedirs(out, exist_ok=True)
    if not os.path.isdir(DATA):
        print(f"No real data at {DATA}: nothing to do.")
        return 0
    perito = perito_moreno(out)
    rows = perito_closure(out)
    median, share = closure_summary(rows)
    print(f"Perito Moreno closure, five triplets: median {median:.3f} px on ice, {100 * share:.0f} % "
          "of ice windows valid in all three pairs")
    for row in rows:
        print(f"Perito Moreno closure {row['triplet']}: median {row['median_closure_px']:.3f} px "
              f"on ice, {100 * row['valid_share']:.0f} % of ice windows valid in all three pairs, "
              f"along flow {row['median_along_flow_px']:+.3f} px")
    kask = kaskawulsh(out)
    for name in ("raw", "clean"):
        for row in kask["tables"][name]:
            if row["quantity"] in ("vx", "vy"):
                print(f"Kaskawulsh {name} {row['quantity']}: std {float(row['std']) / 365.25:.3f} "
                      f"m/day, median {float(row['median']) / 365.25:+.4f} m/day")
    if "--figures" in argv:
        figures(perito, kask, argv[argv.index("--figures") + 1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
