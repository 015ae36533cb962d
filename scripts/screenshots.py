"""Render the dock offscreen on the sample scene: docs/timeseries.png and docs/calibration.png.

The tiny sample scene is generated under .build/screenshots, the UAV calibration is computed with
``glaciervelocity:calibrateweights`` and the fused stack with ``glaciervelocity:fuse`` (a plain
constrained least-squares fit and weighted mean stand in while those algorithms are not
registered), the stacks are loaded into a project, the time-series tab is shown at a fast glacier
pixel inside the UAV footprint and the calibration tab with the calibration tables.

Usage: python scripts/screenshots.py [output folder, default docs]   (make screenshots)
"""

import itertools
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLUGINS = os.path.join(ROOT, ".build", "plugins")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

LAYERS = (("landsat_v", "Landsat"), ("sentinel2_v", "Sentinel-2"), ("sentinel1_v", "Sentinel-1"),
          ("uav_v", "UAV"))


def link_plugin():
    subprocess.run([os.path.join(ROOT, "scripts", "link-plugin"), PLUGINS], check=True,
                   capture_output=True)
    sys.path.insert(0, PLUGINS)


def start_qgis():
    from qgis.core import QgsApplication

    app = QgsApplication([], True)
    app.initQgis()
    sys.path.append(os.path.join(app.pkgDataPath(), "python", "plugins"))
    from processing.core.Processing import Processing

    Processing.initialize()
    from glacier_velocity.processing_provider.provider import GlacierVelocityProvider

    provider = GlacierVelocityProvider()
    QgsApplication.processingRegistry().addProvider(provider)
    return app, provider


def has_algorithm(alg_id):
    from qgis.core import QgsApplication

    return QgsApplication.processingRegistry().algorithmById(alg_id) is not None


# ------------------------------------------------------------------ stand-ins (until issue 5 lands)

def _fit_stats(v, uav):
    d = v - uav
    return {"n": int(v.size), "bias": float(d.mean()), "rmse": float(np.sqrt((d ** 2).mean())),
            "r2": float(np.corrcoef(v, uav)[0, 1] ** 2), "slope": float(np.polyfit(uav, v, 1)[0])}


def _simplex_lsq(A, b):
    """min ||A w - b|| with w >= 0, sum w = 1: the best feasible equality-constrained solution
    over every support set (exact for the few sources we have)."""
    best, best_res = None, np.inf
    k = A.shape[1]
    for size in range(1, k + 1):
        for support in itertools.combinations(range(k), size):
            a = A[:, support]
            kkt = np.block([[2 * a.T @ a, np.ones((size, 1))], [np.ones((1, size)), np.zeros((1, 1))]])
            sol = np.linalg.lstsq(kkt, np.concatenate([2 * a.T @ b, [1.0]]), rcond=None)[0][:size]
            if (sol >= -1e-12).all():
                w = np.zeros(k)
                w[list(support)] = sol
                res = np.sum((A @ w - b) ** 2)
                if res < best_res:
                    best, best_res = w, res
    return best


def simple_calibration(paths, cal_csv, samples_csv):
    """Constrained least-squares weights of Landsat, Sentinel-2 (primary) and Sentinel-1
    (auxiliary) against the UAV, with the contract's tables. Returns the weight string."""
    from glacier_velocity.core.io.dates import match_intervals
    from glacier_velocity.core.io.pixel_series import write_csv
    from glacier_velocity.core.io.products import read_stack

    names = ["landsat_v", "sentinel2_v", "sentinel1_v"]
    uinfo, uav = read_stack(paths["uav_v"])
    stacks = {n: read_stack(paths[n]) for n in names}
    cols = {k: [] for k in ["interval", "row", "col", "uav"] + names}
    for t, iv in enumerate(uinfo.intervals):
        idx = [match_intervals([iv], stacks[n][0].intervals)[0] for n in names]
        if min(idx) < 0:
            continue
        vals = [stacks[n][1][i] for n, i in zip(names, idx)]
        ok = np.isfinite(uav[t]) & np.logical_and.reduce([np.isfinite(v) for v in vals])
        rows, cs = np.nonzero(ok)
        cols["interval"] += [str(iv)] * rows.size
        cols["row"] += rows.tolist()
        cols["col"] += cs.tolist()
        cols["uav"] += uav[t][ok].tolist()
        for n, v in zip(names, vals):
            cols[n] += v[ok].tolist()
    u = np.array(cols["uav"])
    A = np.column_stack([np.array(cols[n]) for n in names])
    w = _simplex_lsq(A, u)
    combined = A @ w
    roles = ["primary", "primary", "auxiliary"]
    sensors = ["landsat", "sentinel2", "sentinel1"]
    header = ["source", "sensor", "role", "weight", "n", "bias", "rmse", "r2", "slope"]
    rows = [[n, s, r, w[k]] + list(_fit_stats(A[:, k], u).values())
            for k, (n, s, r) in enumerate(zip(names, sensors, roles))]
    rows.append(["combined", "", "combined", w.sum()] + list(_fit_stats(combined, u).values()))
    write_csv(cal_csv, header, rows)
    write_csv(samples_csv, ["interval", "row", "col", "uav"] + [f"v_{n}" for n in names] +
              ["v_combined"],
              [[cols["interval"][i], cols["row"][i], cols["col"][i], u[i]] + list(A[i]) +
               [combined[i]] for i in range(u.size)])
    return ",".join(f"{x:.6f}" for x in w)


def simple_fusion(paths, weights, out):
    """Weighted mean of the stacks valid at each pixel (weights renormalised), where at least one
    primary stack is valid: the fusion rule of issue 5."""
    from glacier_velocity.core.io.products import read_stack, write_stack

    names = ["landsat_v", "sentinel2_v", "sentinel1_v"]
    w = [float(x) for x in weights.split(",")]
    info, _ = read_stack(paths[names[0]])
    num = den = 0.0
    for n, wk in zip(names, w):
        v = read_stack(paths[n])[1].astype(np.float64)
        ok = np.isfinite(v)
        num = num + np.where(ok, wk * v, 0.0)
        den = den + np.where(ok, wk, 0.0)
    primary = np.logical_or.reduce([np.isfinite(read_stack(paths[n])[1]) for n in names[:2]])
    fused = np.where(primary & (den > 0), num / np.where(den > 0, den, 1.0), np.nan)
    return write_stack(out, info.grid, fused.astype(np.float32), info.intervals, "fused")


# ------------------------------------------------------------------ the scene's products

def products(work):
    """Scene, calibration tables and fused stack (made once per work folder)."""
    import processing

    from glacier_velocity.core.sampledata.scene import generate_scene, load_scene

    scene = os.path.join(work, "scene")
    if not os.path.exists(os.path.join(scene, "scene.json")):
        print("Generating the tiny sample scene…", flush=True)
        generate_scene(scene, "tiny", 2015, 10, seed=0)
    manifest, model = load_scene(scene)
    paths = manifest["paths"]
    cal_csv = os.path.join(work, "calibration.csv")
    samples_csv = os.path.join(work, "calibration_samples.csv")
    if has_algorithm("glaciervelocity:calibrateweights"):
        res = processing.run("glaciervelocity:calibrateweights", {
            "REFERENCE": paths["uav_v"], "SOURCES": [paths["landsat_v"], paths["sentinel2_v"]],
            "AUXILIARY": paths["sentinel1_v"], "OUTPUT": cal_csv, "OUTPUT_SAMPLES": samples_csv})
        weights = res["WEIGHTS"]
        print(f"Calibrated with glaciervelocity:calibrateweights: weights {weights}")
    else:
        weights = simple_calibration(paths, cal_csv, samples_csv)
        print(f"glaciervelocity:calibrateweights is not registered: plain constrained least "
              f"squares gives weights {weights}")
    fused = os.path.join(work, "fused_v.tif")
    if has_algorithm("glaciervelocity:fuse"):
        processing.run("glaciervelocity:fuse", {
            "SOURCES": [paths["landsat_v"], paths["sentinel2_v"]],
            "AUXILIARY": paths["sentinel1_v"], "WEIGHTS": weights, "OUTPUT": fused})
    else:
        simple_fusion(paths, weights, fused)
    return manifest, model, cal_csv, fused


def glacier_pixel(manifest):
    """The fastest pixel with UAV values in every survey (a glacier 1 trunk pixel)."""
    from glacier_velocity.core.io.products import read_stack

    _, uav = read_stack(manifest["paths"]["uav_v"])
    _, truth = read_stack(manifest["paths"]["truth_v"])
    speed = np.where(np.isfinite(uav).all(0), np.nanmean(truth, 0), -np.inf)
    row, col = np.unravel_index(int(np.argmax(speed)), speed.shape)
    return int(row), int(col)


class Iface:
    """What the dock needs of QgisInterface."""

    def __init__(self, canvas):
        self.canvas = canvas

    def mapCanvas(self):  # noqa: N802 (QGIS's name)
        return self.canvas


def main(out="docs"):
    link_plugin()
    app, _provider = start_qgis()
    from osgeo import gdal
    from qgis.core import QgsCoordinateReferenceSystem, QgsPointXY, QgsProject, QgsRasterLayer
    from qgis.gui import QgsMapCanvas

    from glacier_velocity.ui.dock import GlacierVelocityDock

    out = os.path.abspath(out)
    os.makedirs(out, exist_ok=True)
    work = os.path.join(ROOT, ".build", "screenshots")
    os.makedirs(work, exist_ok=True)
    manifest, _model, cal_csv, fused = products(work)
    paths = manifest["paths"]

    project = QgsProject.instance()
    for key, name in LAYERS:
        project.addMapLayer(QgsRasterLayer(paths[key], name))
    project.addMapLayer(QgsRasterLayer(fused, "Fused"))
    canvas = QgsMapCanvas()
    canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:32645"))
    dock = GlacierVelocityDock(Iface(canvas))
    dock.resize(1100, 800)
    dock.show()
    app.processEvents()

    ts = dock.timeseries
    row, col = glacier_pixel(manifest)
    gt = gdal.Open(paths["landsat_v"]).GetGeoTransform()
    point = QgsPointXY(gt[0] + (col + 0.5) * gt[1], gt[3] + (row + 0.5) * gt[5])
    ts.show_point(point)
    if not ts.wait_idle(60):
        raise SystemExit("Reading the stacks at the pixel did not finish.")
    app.processEvents()
    fused_series = next(s for s in ts.current if s.is_fused)
    k = int(np.nanargmax(np.where(np.isfinite(fused_series.values), fused_series.values, -np.inf)))
    ts.plot.hover_at(fused_series.timestamps()[k], fused_series.values[k])
    app.processEvents()
    dock.grab().save(os.path.join(out, "timeseries.png"))

    dock.tabs.setCurrentWidget(dock.calibration)
    dock.calibration.open_file("calibration", cal_csv)
    dock.resize(1100, 820)
    app.processEvents()
    dock.grab().save(os.path.join(out, "calibration.png"))
    print(f"Wrote {os.path.join(out, 'timeseries.png')} (pixel row {row}, col {col}) and "
          f"{os.path.join(out, 'calibration.png')}")
    dock.close_tools()
    project.removeAllMapLayers()


if __name__ == "__main__":
    main(*sys.argv[1:2])
