"""Demo step: the whole chain as one run of the shipped graphical model (image folders of three
sensors to fused, gap-filled monthly velocities, uncertainty and trends) on a sample scene with
image series, every product beside the scene's truth."""

import csv
import importlib.util
import os

import numpy as np

from glacier_velocity.core.io.products import read_stack
from glacier_velocity.core.io.raster import read_band
from glacier_velocity.core.sampledata.scene import load_scene

TITLE = "The full model: image folders to fused velocities, uncertainty and trends in one run"
MODEL_ID = "imagepairstotrends"
SIZE, YEARS = "tiny", 3  # 3 years x 12 pairs x 3 sensors = 108 correlations; trends need 3 years
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NAMES = {"landsat": "Landsat", "sentinel2": "Sentinel-2", "sentinel1": "Sentinel-1"}


def build_models():
    """scripts/build_models.py as a module: the model's inputs and outputs by name."""
    spec = importlib.util.spec_from_file_location(
        "build_models", os.path.join(ROOT, "scripts", "build_models.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def against_truth(path, truth, tinfo, mask):
    """(RMSE, bias, share of mask pixel-months valid) of a speed stack against the truth stack,
    on the months it has (matched by interval) and its valid pixels inside ``mask``."""
    info, data = read_stack(path)
    t = truth[[tinfo.intervals.index(iv) for iv in info.intervals]]
    m = np.broadcast_to(mask, data.shape)
    ok = np.isfinite(data) & m
    err = data[ok] - t[ok]
    return float(np.sqrt(np.mean(err ** 2))), float(np.mean(err)), float(ok.sum() / m.sum())


def run(ctx):
    bm = build_models()
    manifest, model, outputs = _run_model(ctx, bm)
    p = manifest["paths"]
    tinfo, truth = read_stack(p["truth_v"])
    glacier = model.labels(tinfo.grid) > 0
    lines, measured = _products(bm, manifest, model, outputs, tinfo, truth, glacier)
    lines += _gap_filling(outputs, measured, tinfo, truth, glacier)
    lines += _trends(manifest, outputs, glacier)
    ctx.report(TITLE, lines)


def _run_model(ctx, bm):
    """Generate a scene with image series and run the full model on it (a line per product as
    it appears); returns the scene's manifest and model, and the model's outputs."""
    folder = os.path.dirname(ctx.path("model", "scene", "scene.json"))
    ctx.qgis("generatescene", SIZE=["tiny", "small", "medium", "large"].index(SIZE), YEARS=YEARS,
             IMAGE_SERIES="true", OUTPUT=folder)
    manifest, model = load_scene(folder)
    out = os.path.dirname(ctx.path("model", "products", "x"))
    outputs = bm.full_model_outputs(out)
    min_area = 0.5 * min(g["area_km2"] for g in manifest["glaciers"])
    inputs = bm.sample_scene_inputs(folder, manifest, min_area)
    descriptions = {f"{c}:{o}": d for c, o, _, d in bm.FULL_OUTPUTS}
    watch = {outputs[k]: f"model: {descriptions[k]}" for k in outputs
             if not k.endswith("_pairs:OUTPUT")}  # a pair folder appears with its first pair
    ctx.log(f"running glaciervelocity:{MODEL_ID} on {len(manifest['series'])} image pairs "
            f"({', '.join(NAMES)}, {YEARS} years); a line per product as the model writes it")
    ctx.qgis(MODEL_ID, watch=watch, **inputs, **outputs)
    ctx.products["model"] = {"folder": folder, "manifest": manifest, "model": model,
                             "outputs": outputs, "inputs": inputs}
    return manifest, model, outputs


def _products(bm, manifest, model, outputs, tinfo, truth, glacier):
    """Every stack of the run against the truth, weights and stable-ground statistics; returns the
    report lines and ``{path: (RMSE on glaciers, valid share)}``."""
    stable = model.stable_mask(tinfo.grid)
    cal = {r["sensor"] or r["source"]: r for r in rows(outputs["calibration:OUTPUT"])}
    unc = {(r["product"], r["quantity"]): r for r in rows(outputs["uncertainty:OUTPUT_TABLE"])
           if r["band"] == "0"}
    lines = [f"`scripts/qgis-process run glaciervelocity:{MODEL_ID}` (the shipped model "
             f"`models/{bm.FULL_FILE}`) on a {manifest['side_m'] / 1000:g} km sample scene with "
             f"{YEARS} years of image pairs: one pair every 30 days per sensor "
             f"({len(manifest['series'])} pairs: Landsat-like 15 m, 16-day; Sentinel-2-like 10 m, "
             "10-day, cloudy in winter; Sentinel-1-like 10 m speckled intensity, 12-day), paired "
             "by baseline with the scene's `series_rules`, correlated with windows of "
             + ", ".join(f"{bm.SAMPLE_WINDOWS[s]} px ({NAMES[s]})" for s in bm.SENSORS)
             + " (the scene's glaciers are only 240-420 m wide), cleaned (Landsat, Sentinel-2) and "
             "stacked by calendar month on the 30 m reference grid, filtered in time, fused with "
             "weights calibrated on the UAV stack, gap-filled from Sentinel-1, then uncertainty, "
             f"coverage and trends. Products in `model/products/` ({len(outputs)} outputs).", "",
             "| product | weight | RMSE vs truth, glaciers (m/yr) | bias vs truth, glaciers | "
             "glacier pixel-months valid | RMSE vs truth, stable ground | stable-ground E, NMAD "
             "(truth 0) |", "|---|---|---|---|---|---|---|"]
    products = [(f"{NAMES[s]} monthly stack", outputs[f"{s}_stack:OUTPUT"], None)
                for s in bm.SENSORS]
    products += [(f"{NAMES[s]}, temporally filtered", outputs[f"{s}_filtered:OUTPUT"], s)
                 for s in bm.SENSORS]
    products += [("**fused**", outputs["fusion:OUTPUT"], "combined"),
                 ("**fused, gap-filled**", outputs["gapfill:OUTPUT"], None)]
    measured = {}
    for label, path, key in products:
        r, b, share = against_truth(path, truth, tinfo, glacier)
        rs, _, _ = against_truth(path, truth, tinfo, stable)
        measured[path] = (r, share)
        u = unc.get((os.path.splitext(os.path.basename(path))[0], "v"))
        weight = f"{float(cal[key]['weight']):.3f}" if key in cal else ""
        stats = f"{float(u['e']):.1f}, {float(u['nmad']):.1f}" if u else "—"
        lines.append(f"| {label} | {weight} | {r:.1f} | {b:+.1f} | {100 * share:.1f} % | "
                     f"{rs:.1f} | {stats} |")
    weights = {s: float(cal[s]["weight"]) for s in bm.SENSORS if s in cal}
    top = max(weights, key=weights.get)
    fused = measured[outputs["fusion:OUTPUT"]][0]
    singles = {s: measured[outputs[f"{s}_stack:OUTPUT"]][0] for s in bm.SENSORS}
    lines += ["", f"Fused RMSE on the glaciers {fused:.1f} m/yr against "
              + ", ".join(f"{NAMES[s]} {v:.1f}" for s, v in singles.items())
              + " m/yr for the monthly stacks (each on its own valid pixels; the full-model CLI "
              "test asserts fused < every sensor). Calibration on the UAV stack "
              f"({cal['combined']['n']} samples): RMSE vs UAV "
              + ", ".join(f"{NAMES[s]} {float(cal[s]['rmse']):.1f} (slope "
                          f"{float(cal[s]['slope']):.2f})" for s in bm.SENSORS if s in cal)
              + " m/yr. The correlation windows average the velocity across these narrow "
              "glaciers, so every sensor underestimates the fast centre lines (slopes < 1), with "
              "errors largely shared between sensors, and the constrained least squares favours "
              "the sharpest one. " + (
                  f"Here it takes {NAMES[top]} alone: the fused product is its filtered stack where "
                  "that has a value (no coverage gained) and its gain over the monthly stacks comes "
                  "from the temporal filter; gap filling adds the coverage."
                  if weights[top] > 0.999 else
                  "The fused product combines the filtered stacks where they overlap and takes "
                  "each alone elsewhere.")
              + " Stable-ground speeds are biased upward by noise (a speed cannot be negative): E "
              "there measures noise, not a velocity bias."]
    return lines, measured


def _gap_filling(outputs, measured, tinfo, truth, glacier):
    """The gap-filled pixel-months against the truth and the Sentinel-1 values they came from."""
    info, fused_stack = read_stack(outputs["fusion:OUTPUT"])
    filled = read_stack(outputs["gapfill:OUTPUT"])[1]
    t = truth[[tinfo.intervals.index(iv) for iv in info.intervals]]
    new = np.broadcast_to(glacier, t.shape) & np.isnan(fused_stack) & np.isfinite(filled)
    err = filled[new] - t[new]
    fast = t[new] > 50
    s1 = read_stack(outputs["sentinel1_filtered:OUTPUT"])
    s1 = s1[1][[s1[0].intervals.index(iv) for iv in info.intervals]]
    err_s1 = s1[new] - t[new]  # the Sentinel-1 values the fills were scaled from
    return ["", f"Gap filling added {new.sum()} glacier pixel-months (from "
              f"{100 * measured[outputs['fusion:OUTPUT']][1]:.1f} % to "
              f"{100 * measured[outputs['gapfill:OUTPUT']][1]:.1f} % of them valid): RMSE "
              f"{np.sqrt(np.mean(err ** 2)):.1f} m/yr, mean error {np.mean(err):+.1f} m/yr, "
              f"{np.mean(err[fast]):+.1f} m/yr where the ice is faster than 50 m/yr (the filtered "
              f"Sentinel-1 values they were scaled from: RMSE {np.sqrt(np.nanmean(err_s1 ** 2)):.1f}, "
              f"mean error {np.nanmean(err_s1):+.1f} and {np.nanmean(err_s1[fast]):+.1f} m/yr). "
              "In months when "
              "the optical stacks see little of a glacier, often only its slow margins (cloudy "
              "winters), the local Sentinel-1 coefficient is fitted there and the filled centre "
              "comes out too slow (see the time-series figure)."]


def _trends(manifest, outputs, glacier):
    """Pixel and glacier trends of the run: 3 years are enough to compute a trend, not to detect
    one of a few m/yr per decade."""
    p = manifest["paths"]
    trend = read_band(outputs["pixel_trends:OUTPUT_TREND"])
    sig = read_band(outputs["pixel_trends:OUTPUT_SIGNIFICANT"])
    true_trend = read_band(p["true_trend"])
    on = glacier & np.isfinite(trend)
    gt = {int(r["id"]): r for r in rows(outputs["glacier_trends:OUTPUT_TABLE"])}
    lines = ["", f"Trends over {YEARS} years (OLS on annual means, FDR at 0.05): pixel trend RMSE "
              f"on the glaciers {np.sqrt(np.mean((trend - true_trend)[on] ** 2)):.0f} m/yr per "
              f"decade against true trends of {np.nanmin(true_trend[glacier]):+.0f} to "
              f"{np.nanmax(true_trend[glacier]):+.0f}; {int(np.nansum(sig))} significant pixels. "
              "Three annual means leave one degree of freedom: the confidence intervals are "
              "wide, as they should be (the decade-long trends are in the trend section above).",
              "", "| glacier | trend [95 % CI] (m/yr per decade) | true | class | expected |",
              "|---|---|---|---|---|"]
    for g in manifest["glaciers"]:
        r = gt.get(g["gid"])
        if r:
            lines.append(f"| {g['name']} | {float(r['trend']):+.1f} [{float(r['ci_low']):+.0f}, "
                         f"{float(r['ci_high']):+.0f}] | {g['true_trend_mean']:+.1f} | "
                         f"{r['class']} | {g['expected_class']} |")
    attrs = {int(r["id"]): r for r in rows(outputs["attributes:OUTPUT_TABLE"])}
    lines += ["", "Glacier attributes from the DEM (model output `attributes_table.csv`): "
              + "; ".join(f"{g['name']} slope {float(attrs[g['gid']]['slope_mean']):.1f}° (true "
                          f"{g['slope']:.0f}°), aspect {float(attrs[g['gid']]['aspect_deg']):.0f}° "
                          f"(true {g['bearing']:.0f}°)" for g in manifest["glaciers"]
                          if g["gid"] in attrs) + "."]
    return lines
