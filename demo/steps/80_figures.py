"""Demo step: PNG figures of the full model's products (and of the decade-long trend), drawn
with matplotlib (Agg backend, no display) into demo_output/figures/."""

import csv

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 (after choosing the backend)
import numpy as np  # noqa: E402
from matplotlib import colors  # noqa: E402

from glacier_velocity.core.trends.glaciers import glacier_labels, region_series  # noqa: E402
from glacier_velocity.core.io.products import read_stack, read_stack_info  # noqa: E402
from glacier_velocity.core.io.raster import raster_grid, read_band, read_bands  # noqa: E402
from glacier_velocity.core.io.vector import open_vector  # noqa: E402

TITLE = "Figures: fused velocities, coverage, calibration, trends, a glacier's time series"
NEEDS = ("full_model",)  # its products, from the step run in the background
SENSORS = {"landsat": "Landsat", "sentinel2": "Sentinel-2", "sentinel1": "Sentinel-1"}
COLOURS = {"landsat": "tab:blue", "sentinel2": "tab:green", "sentinel1": "tab:orange",
           "fused": "tab:red", "gapfilled": "black", "truth": "0.5"}


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def extent_km(grid):
    x0, y0, x1, y1 = grid.bounds
    return [x0 / 1000, x1 / 1000, y0 / 1000, y1 / 1000]


def outlines(ax, path, colour="white"):
    """Draw the polygons of ``path`` (e.g. 'vectors.gpkg|layername=glaciers') in km."""
    ds, layer = open_vector(path)
    for feature in layer:
        geom = feature.GetGeometryRef()
        parts = [geom.GetGeometryRef(i) for i in range(geom.GetGeometryCount())]
        for part in parts:
            rings = [part] if part.GetGeometryName() == "LINEARRING" else [
                part.GetGeometryRef(j) for j in range(part.GetGeometryCount())]
            for ring in rings:
                xy = np.array(ring.GetPoints())[:, :2] / 1000
                ax.plot(xy[:, 0], xy[:, 1], color=colour, lw=0.9)
    del ds


def map_axes(ax, title):
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("easting (km)", fontsize=8)
    ax.set_ylabel("northing (km)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.ticklabel_format(useOffset=False, style="plain")


def save(ctx, fig, name):
    path = ctx.path("figures", name)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    ctx.log(f"figure {name}")
    return f"figures/{name}"


def fused_map(ctx, m):
    """One summer month: fused (with its gaps), gap-filled, and the truth."""
    out, man = m["outputs"], m["manifest"]
    info, fused = read_stack(out["fusion:OUTPUT"])
    _, filled = read_stack(out["gapfill:OUTPUT"])
    tinfo, truth = read_stack(man["paths"]["truth_v"])
    year = man["first_year"] + man["years"] // 2
    b = next(i for i, iv in enumerate(info.intervals) if (iv.start.year, iv.start.month) ==
             (year, 7))
    t = truth[tinfo.intervals.index(info.intervals[b])]
    vmax = float(np.nanpercentile(t, 99.5))
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.4), constrained_layout=True)
    for ax, arr, title in ((axes[0], fused[b], "fused (Landsat + Sentinel-2, calibrated)"),
                           (axes[1], filled[b], "fused and gap-filled (Sentinel-1)"),
                           (axes[2], t, "truth")):
        im = ax.imshow(arr, extent=extent_km(info.grid), cmap="viridis", vmin=0, vmax=vmax,
                       interpolation="nearest")
        outlines(ax, man["paths"]["glaciers"])
        map_axes(ax, f"{title}\n{info.intervals[b]}")
        ax.set_facecolor("0.85")  # NoData shows grey
    fig.colorbar(im, ax=axes, shrink=0.85, label="speed (m/yr)")
    return save(ctx, fig, "fused_velocity.png")


def coverage_figure(ctx, m):
    """Share of months valid per pixel before and after fusion, and on the glaciers overall."""
    out, man = m["outputs"], m["manifest"]
    grid = raster_grid(out["coverage:OUTPUT"])
    counts = read_bands(out["coverage:OUTPUT"])
    months = read_stack_info(out["fusion:OUTPUT"]).count
    labels = ["Landsat", "Sentinel-2", "Sentinel-1", "fused", "fused + gap-filled"]
    fig = plt.figure(figsize=(15, 6.6), constrained_layout=True)
    gs = fig.add_gridspec(2, 5, height_ratios=[1.1, 1])
    for k, label in enumerate(labels):
        ax = fig.add_subplot(gs[0, k])
        im = ax.imshow(100 * counts[k] / months, extent=extent_km(grid), cmap="magma", vmin=0,
                       vmax=100, interpolation="nearest")
        outlines(ax, man["paths"]["glaciers"], "cyan")
        map_axes(ax, label)
        ax.set_facecolor("0.85")
    fig.colorbar(im, ax=fig.axes, shrink=0.6, location="right", label="months valid (%)")
    table = [r for r in rows(out["coverage:OUTPUT_TABLE"]) if r["band"] == "0"]
    ax = fig.add_subplot(gs[1, 1:4])
    shares = [100 * float(r["valid_ratio"]) for r in table]
    bars = ax.bar(labels, shares, color=[COLOURS[k] for k in
                                         ("landsat", "sentinel2", "sentinel1", "fused",
                                          "gapfilled")])
    for bar, s in zip(bars, shares):
        ax.text(bar.get_x() + bar.get_width() / 2, s + 1, f"{s:.1f} %", ha="center", fontsize=9)
    ax.set_ylim(0, 105)
    ax.set_ylabel("glacier pixel-months valid (%)")
    ax.set_title("Coverage inside the glacier outlines, all months (temporally filtered sensor "
                 "stacks, then fused, then gap-filled)", fontsize=10)
    return save(ctx, fig, "coverage.png")


def calibration_figure(ctx, m):
    """Each sensor against the UAV on the matched samples, with the weights and fits."""
    out = m["outputs"]
    samples = rows(out["calibration:OUTPUT_SAMPLES"])
    table = rows(out["calibration:OUTPUT"])
    uav = np.array([float(r["uav"]) for r in samples])
    fig, axes = plt.subplots(1, len(table), figsize=(4 * len(table), 4.2), sharex=True,
                             sharey=True, constrained_layout=True)
    top = float(np.nanmax(uav)) * 1.1
    for ax, r in zip(axes, table):
        key = r["sensor"] or "fused"
        v = np.array([float(s[f"v_{r['source']}"] or "nan") for s in samples])
        ax.scatter(uav, v, s=5, alpha=0.35, color=COLOURS.get(key, "tab:red"), lw=0)
        ax.plot([0, top], [0, top], color="k", lw=0.8, label="1:1")
        name = SENSORS.get(key, "weighted combination")
        ax.set_title(f"{name}: weight {float(r['weight']):.2f}", fontsize=10)
        ax.text(0.04, 0.96, f"n = {r['n']}\nbias {float(r['bias']):+.1f} m/yr\nRMSE "
                f"{float(r['rmse']):.1f} m/yr\nslope {float(r['slope']):.2f}, R² "
                f"{float(r['r2']):.3f}", transform=ax.transAxes, va="top", fontsize=8)
        ax.set_xlabel("UAV speed (m/yr)")
        ax.set_xlim(0, top)
        ax.set_ylim(0, top)
        ax.set_aspect("equal")
    axes[0].set_ylabel("sensor speed (m/yr)")
    fig.suptitle("Calibration of the fusion weights on the UAV stack (matched samples)",
                 fontsize=11)
    return save(ctx, fig, "calibration_scatter.png")


def trend_figure(ctx, m):
    """Pixel trends with their significance beside the true trend: the decade-long run of the
    trend step when it ran, else the full model's."""
    if ctx.products.get("trend_significant"):
        trend_path, sig_path = ctx.products["trend"], ctx.products["trend_significant"]
        truth_path, glaciers = ctx.scene["paths"]["true_trend"], ctx.scene["paths"]["glaciers"]
        source = f"{ctx.scene['years']}-year stacks of the trend section"
    else:
        trend_path = m["outputs"]["pixel_trends:OUTPUT_TREND"]
        sig_path = m["outputs"]["pixel_trends:OUTPUT_SIGNIFICANT"]
        truth_path = m["manifest"]["paths"]["true_trend"]
        glaciers = m["manifest"]["paths"]["glaciers"]
        source = f"full model, {m['manifest']['years']} years"
    grid = raster_grid(trend_path)
    trend, sig, truth = read_band(trend_path), read_band(sig_path), read_band(truth_path)
    lim = float(np.nanpercentile(np.abs(truth), 99.5)) * 1.2 or 1.0
    norm = colors.Normalize(-lim, lim)
    rgba = plt.get_cmap("RdBu_r")(norm(np.nan_to_num(trend)))
    rgba[..., 3] = np.where(sig == 1, 1.0, 0.25)  # faded where not significant
    rgba[~np.isfinite(trend)] = (0.85, 0.85, 0.85, 1.0)
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 4.8), constrained_layout=True)
    axes[0].imshow(rgba, extent=extent_km(grid), interpolation="nearest")
    if np.any(sig == 1):
        axes[0].contour(np.where(sig == 1, 1.0, 0.0), levels=[0.5], colors="k", linewidths=0.6,
                        extent=extent_km(grid), origin="upper")
    map_axes(axes[0], f"estimated trend ({source});\nfaded = not significant (FDR 0.05), "
             "black line = significant area")
    im = axes[1].imshow(truth, extent=extent_km(grid), cmap="RdBu_r", norm=norm,
                        interpolation="nearest")
    map_axes(axes[1], "true trend")
    for ax in axes:
        outlines(ax, glaciers, "k")
    fig.colorbar(im, ax=axes, shrink=0.85, label="trend (m/yr per decade)")
    return save(ctx, fig, "trend_map.png")


def timeseries_figure(ctx, m):
    """Monthly mean speed of the accelerating glacier: each sensor, fused, gap-filled, truth.
    Glacier means use the ratio estimator of the glacier trends (visible pixels scaled to the
    whole glacier by their usual share of its flow), as gaps hide the fast centre or the margins."""
    out, man = m["outputs"], m["manifest"]
    grid = read_stack_info(man["paths"]["truth_v"]).grid
    labels, glaciers = glacier_labels(man["paths"]["glaciers"], grid)
    k = 0  # the first polygon: the accelerating glacier
    fig, ax = plt.subplots(figsize=(11, 4.6), constrained_layout=True)
    series = [("truth", man["paths"]["truth_v"], COLOURS["truth"], "-", 2.5)]
    series += [(f"{SENSORS[s]} monthly stack", out[f"{s}_stack:OUTPUT"], COLOURS[s], "o", 3.5)
               for s in SENSORS]
    series += [("fused", out["fusion:OUTPUT"], COLOURS["fused"], "s", 4.5),
               ("fused + gap-filled", out["gapfill:OUTPUT"], COLOURS["gapfilled"], "-", 1.5)]
    for label, path, colour, style, size in series:
        info = read_stack_info(path)
        values = region_series(path, labels, len(glaciers))[0][:, k]
        x = [iv.mid for iv, v in zip(info.intervals, values) if np.isfinite(v)]
        y = values[np.isfinite(values)]
        if style == "-":
            ax.plot(x, y, color=colour, lw=size, label=label)
        else:
            ax.plot(x, y, style, color=colour, ms=size, label=label, alpha=0.8)
    ax.set_ylabel("mean speed of the glacier (m/yr)")
    ax.set_title(f"{glaciers[k]['name']}: monthly mean speed (months where a product sees at "
                 "least 30 % of the glacier)", fontsize=10)
    ax.legend(fontsize=8, ncol=3)
    ax.grid(alpha=0.3)
    return save(ctx, fig, "glacier_timeseries.png")


def run(ctx):
    m = ctx.products.get("model")
    if not m:
        ctx.log("no full-model run in this demo: no figures")
        return
    figures = [("Fused velocity map with glacier outlines (one summer month; NoData grey)",
                fused_map(ctx, m)),
               ("Coverage before and after fusion", coverage_figure(ctx, m)),
               ("Calibration scatter against the UAV", calibration_figure(ctx, m)),
               ("Trend map with significance, beside the true trend", trend_figure(ctx, m)),
               ("A glacier's time series", timeseries_figure(ctx, m))]
    lines = []
    for caption, path in figures:
        lines += [f"**{caption}** (`{path}`)", "", f"![{caption}]({path})", ""]
    ctx.report("Figures", lines)
