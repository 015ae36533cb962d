"""Whole-chain benchmark (issue 15): the realistic valley scene (3 years) against its truth.

Default (minutes): the chain from the scene's monthly sensor stacks — temporal filter,
calibration on the UAV stack, fusion with per-pixel errors, gap filling with the paper's window
coefficient and with the combined (window + temporal) one — timed, every figure beside the
issue's targets. Then (``--from-images`` alone, ``--stacks-only`` without it) the shipped full
model (models/image_pairs_to_trends.model3) through scripts/qgis-process on the tiny ellipse
scene and on the valley scene, both from image series, with their wall and CPU times side by
side (the issue's target: under 10 minutes for the valley scene on 2 quiet cores; the valley run
correlates 108 pairs of 500-750 px images), and every figure of the valley run against its
truth, the glacier trend classes included. Usage:
python bench/bench_chain.py [--from-images | --stacks-only] [--size small] [--keep DIR [--reuse]]
"""

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, ".build", "plugins"))

from glacier_velocity.core.fusion.calibration import calibrate  # noqa: E402
from glacier_velocity.core.fusion.gapfill import gapfill_stack  # noqa: E402
from glacier_velocity.core.fusion.weighted import fuse_stacks, fused_value_shares  # noqa: E402
from glacier_velocity.core.io.products import read_stack_info  # noqa: E402
from glacier_velocity.core.sampledata.assessment import (assess_chain,  # noqa: E402
                                                         format_assessment)
from glacier_velocity.core.sampledata.scene import generate_scene, load_scene  # noqa: E402
from glacier_velocity.core.timeseries.temporal import temporal_filter_file  # noqa: E402

SENSORS = ("landsat", "sentinel2", "sentinel1")
NAMES = {"landsat": "Landsat", "sentinel2": "Sentinel-2", "sentinel1": "Sentinel-1",
         "landsat_filtered": "Landsat, filtered", "sentinel2_filtered": "Sentinel-2, filtered",
         "sentinel1_filtered": "Sentinel-1, filtered"}
YEARS = 3


def scene(folder, size, image_series):
    if not os.path.exists(os.path.join(folder, "scene.json")):
        t0 = time.perf_counter()
        generate_scene(folder, size, 2015, YEARS, seed=0, image_series=image_series,
                       scene="valley")
        print(f"valley scene ({size}) written in {time.perf_counter() - t0:.0f} s")
    return load_scene(folder)


def chain_from_stacks(folder, out, size):
    """The chain from the scene's monthly stacks; prints the figures of both gap fillings."""
    manifest, model = scene(folder, size, False)
    p = manifest["paths"]
    t0 = time.perf_counter()
    filtered = {}
    for s in SENSORS:
        filtered[s] = os.path.join(out, f"{s}_filtered.tif")
        temporal_filter_file(p[f"{s}_v"], filtered[s])
    cal = calibrate(p["uav_v"], [filtered["landsat"], filtered["sentinel2"]], filtered["sentinel1"])
    fused, fused_err = os.path.join(out, "fused.tif"), os.path.join(out, "fused_error.tif")
    fuse_stacks([filtered["landsat"], filtered["sentinel2"]], fused, cal.weight_string,
                filtered["sentinel1"], errors=cal.error_string, error_output=fused_err)
    t_fuse = time.perf_counter() - t0
    print(f"filter + calibration + fusion: {t_fuse:.1f} s; weights "
          f"{cal.weight_string}, errors (RMSE vs UAV) {cal.error_string} m/yr")
    labels = model.labels(read_stack_info(p["truth_v"]).grid)
    for coefficient in ("spatial", "combined"):
        t1 = time.perf_counter()
        filled = os.path.join(out, f"filled_{coefficient}.tif")
        error = os.path.join(out, f"filled_{coefficient}_error.tif")
        gapfill_stack(fused, filtered["sentinel1"], filled, coefficient=coefficient,
                      fused_error=fused_err, error_output=error)
        print(f"\n--- gap filling, {coefficient} coefficient ({time.perf_counter() - t1:.1f} s)")
        stacks = dict({s: p[f"{s}_v"] for s in SENSORS},
                      **{f"{s}_filtered": filtered[s] for s in SENSORS})
        res = assess_chain(p["truth_v"], labels, stacks, fused, filled, filtered["sentinel1"],
                           error)
        print("\n".join(format_assessment(res, NAMES)))


def run_model(folder, out, qgis_process, reuse=False, scheduler=""):
    """The shipped full model on a scene with image series: ``(wall s, CPU s, outputs)``, the
    CPU time (user + system) of the qgis_process run and its threads, which a loaded machine
    does not inflate the way it inflates wall time (local Dask workers included once they have
    exited). With ``reuse``, outputs already in ``out`` (a complete earlier run) are taken as
    they are: ``(None, None, outputs)``; ``scheduler`` is the model's DASK_SCHEDULER."""
    spec_path = os.path.join(ROOT, "scripts", "build_models.py")
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_models", spec_path)
    bm = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bm)
    manifest, _ = load_scene(folder)
    outputs = bm.full_model_outputs(out)
    min_area = 0.5 * min(g["area_km2"] for g in manifest["glaciers"])
    if reuse and all(os.path.exists(p) for p in outputs.values()):
        return None, None, outputs
    inputs = bm.sample_scene_inputs(folder, manifest, min_area)
    if scheduler:
        inputs["DASK_SCHEDULER"] = scheduler
    args = bm.run_arguments(inputs, outputs)
    t0, c0 = time.perf_counter(), _children_cpu()
    subprocess.run([qgis_process, "run", f"glaciervelocity:{bm.FULL_ID}", "--", *args],
                   check=True, capture_output=True)
    return time.perf_counter() - t0, _children_cpu() - c0, outputs


def _children_cpu():
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _load_average():
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def from_images(work, size, reuse=False, scheduler=""):
    """The shipped full model on the tiny scene then on the valley scene, timed, and the valley
    run's figures against its truth (``reuse``: an earlier run's outputs in ``work``)."""
    qgis_process = os.path.join(ROOT, "scripts", "qgis-process")
    tiny = os.path.join(work, "tiny_scene")
    if not os.path.exists(os.path.join(tiny, "scene.json")):
        generate_scene(tiny, "tiny", 2015, YEARS, seed=0, image_series=True)
    load = _load_average()
    t_tiny, c_tiny, _ = run_model(tiny, os.path.join(work, "tiny_model"), qgis_process, reuse,
                                  scheduler)
    folder = os.path.join(work, "valley_scene")
    manifest, model = scene(folder, size, True)
    t_valley, c_valley, o = run_model(folder, os.path.join(work, "valley_model"), qgis_process,
                                      reuse, scheduler)
    if t_valley is not None:
        print(f"full model: tiny ellipse scene {t_tiny:.0f} s wall / {c_tiny:.0f} s CPU, valley "
              f"scene ({size}) {t_valley:.0f} s wall / {c_valley:.0f} s CPU ({t_valley / t_tiny:.1f}x "
              f"the tiny scene's wall time, {c_valley / c_tiny:.1f}x its CPU; load average "
              f"{load:.1f} -> {_load_average():.1f} on {os.cpu_count()} cores). Target: under "
              f"600 s on 2 quiet cores, i.e. about {c_valley / 2:.0f} s if the CPU time spreads "
              "over both.")
    print("\n".join(assess_run(manifest, model, o)))


def assess_run(manifest, model, o):
    """Report lines of a full-model run (outputs ``o`` by model output name) on a scene against
    its truth: the calibration, then :func:`assess_chain`'s figures."""
    p = manifest["paths"]
    labels = model.labels(read_stack_info(p["truth_v"]).grid)
    with open(o["glacier_trends:OUTPUT_TABLE"], newline="") as f:
        trend_rows = list(csv.DictReader(f))
    stacks = dict({s: o[f"{s}_stack:OUTPUT"] for s in SENSORS},
                  **{f"{s}_filtered": o[f"{s}_filtered:OUTPUT"] for s in SENSORS})
    res = assess_chain(p["truth_v"], labels, stacks, o["fusion:OUTPUT"], o["gapfill:OUTPUT"],
                       o["sentinel1_filtered:OUTPUT"], o["gapfill:OUTPUT_ERROR"], trend_rows,
                       manifest["glaciers"])
    with open(o["calibration:OUTPUT"], newline="") as f:
        lines = ["calibration: " + "; ".join(f"{r['source']} w={float(r['weight']):.3f} rmse="
                                             f"{float(r['rmse']):.1f}" for r in csv.DictReader(f))]
    shares = fused_value_shares(o["fusion:OUTPUT"])
    lines.append("share of the fused values: " + ", ".join(
        f"{NAMES[f'{s}_filtered']} {100 * v:.1f} %" for s, v in zip(SENSORS, shares)))
    return lines + format_assessment(res, NAMES)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stacks-only", action="store_true")
    parser.add_argument("--from-images", action="store_true",
                        help="only the shipped full model from images (tiny and valley scenes)")
    parser.add_argument("--scheduler", default="",
                        help="the model's DASK_SCHEDULER, e.g. local:3 (default: in-process)")
    parser.add_argument("--reuse", action="store_true",
                        help="with --keep: assess the model outputs of an earlier run")
    parser.add_argument("--size", default="small")
    parser.add_argument("--keep", help="work folder to keep (scenes are reused from it)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or tmp
        os.makedirs(work, exist_ok=True)
        out = os.path.join(work, "chain")
        os.makedirs(out, exist_ok=True)
        if not args.from_images:
            chain_from_stacks(os.path.join(work, "valley_stacks_scene"), out, args.size)
        if not args.stacks_only:
            print("\n=== the shipped full model from images")
            from_images(work, args.size, args.reuse, args.scheduler)


if __name__ == "__main__":
    main()
