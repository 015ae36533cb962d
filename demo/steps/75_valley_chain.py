"""Demo step: the realistic valley-glacier scene (issue 15), fused and gap-filled through the
algorithms from its monthly sensor stacks, each product beside the truth and the issue's targets.
The paper's window coefficient and the combined (window + temporal) one side by side."""

import os

from glacier_velocity.core.io.products import read_stack_info
from glacier_velocity.core.sampledata.assessment import assess_chain, format_assessment
from glacier_velocity.core.sampledata.scene import load_scene

TITLE = "The valley scene: fusion, gap filling and per-pixel errors against the truth"
SIZE, YEARS = "small", 3  # 7.5 km: a 1.5-1.8 km wide trunk, an icefall at 560 m/yr
SENSORS = ("landsat", "sentinel2", "sentinel1")
NAMES = {"landsat": "Landsat", "sentinel2": "Sentinel-2", "sentinel1": "Sentinel-1",
         "landsat_filtered": "Landsat, filtered", "sentinel2_filtered": "Sentinel-2, filtered",
         "sentinel1_filtered": "Sentinel-1, filtered"}


def run(ctx):
    folder = os.path.dirname(ctx.path("valley", "scene", "scene.json"))
    ctx.qgis("generatescene", SCENE=1, SIZE=["tiny", "small", "medium", "large"].index(SIZE),
             YEARS=YEARS, OUTPUT=folder)
    manifest, model = load_scene(folder)
    p = manifest["paths"]
    filtered = {}
    for s in SENSORS:
        filtered[s] = ctx.path("valley", f"{s}_filtered.tif")
        ctx.qgis("temporalfilter", INPUT=p[f"{s}_v"], OUTPUT=filtered[s])
    res = ctx.qgis("calibrateweights", REFERENCE=p["uav_v"],
                   SOURCES=[filtered["landsat"], filtered["sentinel2"]],
                   AUXILIARY=filtered["sentinel1"], OUTPUT=ctx.path("valley", "calibration.csv"))
    fused, fused_err = ctx.path("valley", "fused.tif"), ctx.path("valley", "fused_error.tif")
    ctx.qgis("fuse", SOURCES=[filtered["landsat"], filtered["sentinel2"]],
             AUXILIARY=filtered["sentinel1"], WEIGHTS=res["WEIGHTS"], ERRORS=res["ERRORS"],
             SUBSET_WEIGHTS=res["SUBSET_WEIGHTS"], OUTPUT=fused, OUTPUT_ERROR=fused_err)
    labels = model.labels(read_stack_info(p["truth_v"]).grid)
    stacks = dict({s: p[f"{s}_v"] for s in SENSORS},
                  **{f"{s}_filtered": filtered[s] for s in SENSORS})
    lines = [f"`generatescene SCENE=valley` ({manifest['side_m'] / 1000:g} km, {YEARS} years: a "
             "dendritic valley glacier with a 1.5-1.8 km trunk and an icefall at up to 560 m/yr, "
             "tributaries 300-800 m wide, a side glacier and three under 1 km², Sentinel-1 "
             "layover/shadow on the steep walls, clouds and snow favouring the upper basin). Its "
             "monthly sensor stacks (each sensor's noise, bias, gaps and outliers) are filtered in "
             "time, the weights calibrated on the UAV stack (WEIGHTS "
             f"{res['WEIGHTS']}; ERRORS, each sensor's RMSE against the UAV, {res['ERRORS']} "
             "m/yr; where a sensor is missing the others take the weights calibrated for them "
             "alone, SUBSET_WEIGHTS), fused with per-pixel errors and gap-filled from Sentinel-1 "
             "twice: with the "
             "paper's window coefficient and with the window and temporal coefficients combined "
             "(the default). Sensors are judged on their own valid pixels. (The same scene from "
             "images, through the shipped full model, takes far longer than the demo's five "
             "minutes: 108 correlations of 500-750 px images; `python bench/bench_chain.py "
             "--from-images` runs and judges it.)"]
    for coefficient, index in (("spatial", 1), ("combined", 0)):
        filled = ctx.path("valley", f"gapfilled_{coefficient}.tif")
        error = ctx.path("valley", f"gapfilled_{coefficient}_error.tif")
        ctx.qgis("gapfill", FUSED=fused, AUXILIARY=filtered["sentinel1"], COEFFICIENT=index,
                 FUSED_ERROR=fused_err, OUTPUT=filled, OUTPUT_ERROR=error)
        figures = assess_chain(p["truth_v"], labels, stacks, fused, filled, filtered["sentinel1"],
                               error)
        lines += ["", f"**Gap filling with the {coefficient} coefficient** "
                  f"(`gapfill COEFFICIENT={index}`):", ""] + format_assessment(figures, NAMES)
    ctx.report(TITLE, lines)
