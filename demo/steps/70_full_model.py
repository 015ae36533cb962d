"""Demo step: the whole chain as one run of the shipped graphical model (image folders of three
sensors to fused, gap-filled monthly velocities, uncertainty and trends) on a sample scene with
image series, every product beside the scene's truth."""

import csv
import importlib.util
import os

import numpy as np

from glacier_velocity.core.io.products import read_stack
from glacier_velocity.core.io.raster import read_band
from glacier_velocity.core.sampledata.assessment import (against_truth, assess_chain,
                                                         format_assessment)
from glacier_velocity.core.sampledata.scene import load_scene

TITLE = "The full model: image folders to fused velocities, uncertainty and trends in one run"
BACKGROUND = True  # most of the demo's time: it runs beside the other steps (run_demo.py)
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


def run(ctx):
    bm = build_models()
    manifest, model, outputs = _run_model(ctx, bm)
    p = manifest["paths"]
    tinfo, truth = read_stack(p["truth_v"])
    glacier = model.labels(tinfo.grid) > 0
    lines, measured = _products(bm, manifest, model, outputs, tinfo, truth, glacier)
    lines += _gap_filling(bm, manifest, model, outputs, tinfo)
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
        e = against_truth(path, tinfo, truth, glacier)
        r, b, share = e["rmse"], e["bias"], e["share"]
        rs = against_truth(path, tinfo, truth, stable)["rmse"]
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


def _gap_filling(bm, manifest, model, outputs, tinfo):
    """Issue 15's figures of the run against the truth: each sensor, fused, gap-filled, the fills
    alone and the per-pixel errors."""
    p = manifest["paths"]
    figures = assess_chain(p["truth_v"], model.labels(tinfo.grid),
                           {s: outputs[f"{s}_stack:OUTPUT"] for s in bm.SENSORS},
                           outputs["fusion:OUTPUT"], outputs["gapfill:OUTPUT"],
                           outputs["sentinel1_filtered:OUTPUT"], outputs["gapfill:OUTPUT_ERROR"])
    return (["", "Issue 15's figures on this scene (gap filling with the window and temporal "
             "coefficients combined; per-pixel errors from the sensors' RMSE against the UAV; "
             "the realistic valley scene is judged in the next section):", ""]
            + format_assessment(figures, NAMES))


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
