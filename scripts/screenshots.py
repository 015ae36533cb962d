"""Render the dock offscreen on the sample scene: docs/timeseries.png and docs/calibration.png.

The tiny sample scene is generated under .build/screenshots, the UAV calibration is computed with
``glaciervelocity:calibrateweights`` and the fused stack with ``glaciervelocity:fuse``, the stacks
are loaded into a project, the time-series tab is shown at a fast glacier pixel inside the UAV
footprint and the calibration tab with the calibration tables.

Usage: python scripts/screenshots.py [output folder, default docs]   (make screenshots)
"""

import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

LAYERS = (("landsat_v", "Landsat"), ("sentinel2_v", "Sentinel-2"), ("sentinel1_v", "Sentinel-1"),
          ("uav_v", "UAV"))


def link_plugin():
    sys.path.insert(0, subprocess.run([os.path.join(ROOT, "scripts", "link-plugin")], check=True,
                                      capture_output=True, text=True).stdout.strip())


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
    res = processing.run("glaciervelocity:calibrateweights", {
        "REFERENCE": paths["uav_v"], "SOURCES": [paths["landsat_v"], paths["sentinel2_v"]],
        "AUXILIARY": paths["sentinel1_v"], "OUTPUT": cal_csv, "OUTPUT_SAMPLES": samples_csv})
    weights = res["WEIGHTS"]
    print(f"Calibrated with glaciervelocity:calibrateweights: weights {weights}")
    fused = os.path.join(work, "fused_v.tif")
    processing.run("glaciervelocity:fuse", {
        "SOURCES": [paths["landsat_v"], paths["sentinel2_v"]],
        "AUXILIARY": paths["sentinel1_v"], "WEIGHTS": weights, "OUTPUT": fused})
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
