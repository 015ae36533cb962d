"""Screenshots of the plugin in the real QGIS desktop, for the README (``make screenshots``).

``make screenshots`` starts QGIS under Xvfb with a private profile in which the plugin is enabled,
and QGIS runs this file once it is up (``qgis --code scripts/screenshots.py``). It then does what
a new user does, step by step on the GUI's event loop, and takes each picture of the whole screen
with ImageMagick (``import -window root``), cropped to the window shown:

* ``docs/desktop.png``: the sample scene generated from the toolbox (it loads as one styled layer
  group), the toolbox open on our groups;
* ``docs/dialog.png``: the Pixel trends dialog with its help;
* ``docs/timeseries.png``: the dock after a click on a glacier pixel, one pixel pinned (its marker
  on the map), the fused stack included with the error bars of its error stack;
  ``docs/calibration.png``: the calibration tab;
* ``docs/modeler.png``: the full image-to-trends model open in the modeler.

Environment: ``GV_SCREENSHOTS`` (output folder), ``GV_WORK`` (scratch folder). QGIS quits at the
end; a failed step is printed and QGIS exits with status 1.
"""

import os
import sys

import numpy as np
import processing
from qgis.core import (QgsApplication, QgsCoordinateReferenceSystem, QgsProject,
                       QgsRasterLayer, QgsRectangle)
from qgis.gui import QgsProcessingToolboxTreeView
from qgis.PyQt.QtCore import QPoint, QRect, Qt
from qgis.PyQt.QtWidgets import QAction, QDockWidget, QSplitter
from qgis.utils import iface, plugins

sys.path.insert(0, os.path.abspath(os.environ.get("GV_SCRIPTS", "scripts")))
import desktop_common  # noqa: E402 (found through GV_SCRIPTS)
from desktop_common import (SCREEN, click_map, map_point, run_steps,  # noqa: E402
                            show_main_window, wait)

OUT = os.path.abspath(os.environ.get("GV_SCREENSHOTS", "docs"))
WORK = os.path.abspath(os.environ.get("GV_WORK", os.path.join(".build", "screenshots")))
STEP_MS = 400
ALG = "glaciervelocity:"


def shot(name, rect=SCREEN):
    """The screen (cropped to ``rect``) as ``OUT/name``."""
    return desktop_common.shot(OUT, name, rect)


def glacier_pixel(paths):
    """A fast glacier pixel inside the UAV footprint (row, col) and a slower one for the pin."""
    from glacier_velocity.core.io.products import read_stack

    _, uav = read_stack(paths["uav_v"])
    _, truth = read_stack(paths["truth_v"])
    mean = np.nanmean(truth, 0)
    speed = np.where(np.isfinite(uav).all(0), mean, -np.inf)
    fast = np.unravel_index(int(np.argmax(speed)), speed.shape)
    slow = np.unravel_index(int(np.argmin(np.abs(np.where(np.isfinite(mean), mean, -1e9)
                                                  - 0.5 * mean[fast]))), speed.shape)
    return fast, slow


class Session:
    """The steps, run one after the other from the event loop."""

    def __init__(self):
        self.steps = [self.setup, self.scene, self.toolbox, self.dialog, self.dock,
                      self.calibration, self.modeler]

    def setup(self):
        os.makedirs(OUT, exist_ok=True)
        os.makedirs(WORK, exist_ok=True)
        self.toolbox_dock = show_main_window()
        window = iface.mainWindow()
        browser = window.findChild(QDockWidget, "Browser")
        if browser is not None:  # the layer tree gets the height
            browser.hide()
        if ALG + "generatescene" not in [a.id() for a in
                                         QgsApplication.processingRegistry().algorithms()]:
            raise RuntimeError("The Glacier Velocity provider is not loaded.")

    def scene(self):
        """Generate the sample scene as from the toolbox: it arrives as one styled group."""
        folder = os.path.join(WORK, "scene")
        result = processing.runAndLoadResults(ALG + "generatescene", {
            "SIZE": 0, "YEARS": 10, "SEED": 0, "OUTPUT": folder})
        from glacier_velocity.core.sampledata.scene import load_scene

        self.manifest, _ = load_scene(result["OUTPUT"])
        paths = self.manifest["paths"]
        cal = os.path.join(WORK, "calibration.csv")
        res = processing.run(ALG + "calibrateweights", {
            "REFERENCE": paths["uav_v"], "SOURCES": [paths["landsat_v"], paths["sentinel2_v"]],
            "AUXILIARY": paths["sentinel1_v"], "OUTPUT": cal,
            "OUTPUT_SAMPLES": os.path.join(WORK, "calibration_samples.csv")})
        self.calibration_table = cal
        fused = os.path.join(WORK, "fused_v.tif")
        # the fused stack's 1 sigma beside it (fused_v_error.tif): the dock draws error bars
        processing.runAndLoadResults(ALG + "fuse", {
            "SOURCES": [paths["landsat_v"], paths["sentinel2_v"]],
            "AUXILIARY": paths["sentinel1_v"], "WEIGHTS": res["WEIGHTS"], "OUTPUT": fused,
            "ERRORS": res["ERRORS"], "OUTPUT_ERROR": os.path.join(WORK, "fused_v_error.tif")})
        project = QgsProject.instance()
        fused_layer = next(lyr for lyr in project.mapLayers().values()
                           if lyr.source() == fused)
        fused_layer.setName("Fused speed")
        self.fused = fused_layer.id()
        for lyr in list(project.mapLayers().values()):  # the bars need no layer of their own
            if lyr.source().endswith("fused_v_error.tif"):
                project.removeMapLayer(lyr.id())
        root = project.layerTreeRoot()
        node = root.findLayer(fused_layer.id())
        clone = node.clone()
        clone.setItemVisibilityChecked(False)  # the scene's stacks show on the map
        root.insertChildNode(len(root.children()), clone)  # below the scene's group
        node.parent().removeChildNode(node)
        canvas = iface.mapCanvas()
        canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:32645"))
        extent = QgsRasterLayer(paths["landsat_v"], "extent").extent()
        canvas.setExtent(QgsRectangle(extent).buffered(extent.width() * 0.03))
        canvas.refreshAllLayers()
        project.setDirty(False)

    def toolbox(self):
        tree = self.toolbox_dock.findChild(QgsProcessingToolboxTreeView)
        tree.collapseAll()
        model = tree.model()
        for row in range(model.rowCount()):
            index = model.index(row, 0)
            if model.data(index) == "Glacier Velocity":
                tree.expand(index)
                for k in range(model.rowCount(index)):
                    group = model.index(k, 0, index)
                    if model.data(group) in ("Sample data", "Trends"):
                        tree.expand(group)
                tree.scrollTo(index, QgsProcessingToolboxTreeView.ScrollHint.PositionAtTop)
        shot("desktop.png")

    def dialog(self):
        dlg = processing.createAlgorithmDialog(ALG + "pixeltrend", {"INPUT": self.fused})
        dlg.setGeometry(QRect(150, 60, 1300, 880))
        dlg.show()
        wait(0.5)
        splitter = dlg.findChild(QSplitter)
        if splitter is not None:  # room for the help beside the parameters
            splitter.setSizes([720, 560])
        wait(0.5)
        shot("dialog.png", dlg.frameGeometry())
        dlg.close()

    def dock(self):
        plugin = plugins["glacier_velocity"]
        dock = self.dock_widget = plugin.dock
        dock.show()
        iface.mainWindow().resizeDocks([dock], [700], Qt.Orientation.Horizontal)
        self.toolbox_dock.hide()
        dock.pick_action.setChecked(True)
        ts = dock.timeseries
        # the fused stack, the UAV, Landsat and Sentinel-2: a readable plot
        ts.set_ticked([lyr.id() for lyr in QgsProject.instance().mapLayers().values()
                       if lyr.name() in ("Fused speed", "UAV speed", "Landsat speed",
                                         "Sentinel-2 speed")])
        wait(1.0)
        paths = self.manifest["paths"]
        (fr, fc), (sr, sc) = glacier_pixel(paths)
        click_map(map_point(paths["landsat_v"], sr, sc))
        dock.timeseries.wait_idle(60)
        dock.timeseries.pin()
        click_map(map_point(paths["landsat_v"], fr, fc))
        if not dock.timeseries.wait_idle(60):
            raise RuntimeError("The dock did not read the stacks at the clicked pixel.")
        shot("timeseries.png")

    def calibration(self):
        dock = self.dock_widget
        dock.tabs.setCurrentWidget(dock.calibration)
        dock.calibration.open_file("calibration", self.calibration_table)
        shot("calibration.png", QRect(dock.mapToGlobal(QPoint(0, 0)), dock.size()))
        dock.tabs.setCurrentWidget(dock.timeseries)

    def modeler(self):
        from processing.modeler.ModelerDialog import ModelerDialog

        model = QgsApplication.processingRegistry().algorithmById(ALG + "imagepairstotrends")
        dlg = self.modeler_dialog = ModelerDialog.create(model)
        dlg.setGeometry(SCREEN)
        dlg.show()
        wait(1.0)
        actions = {a.objectName(): a for a in dlg.findChildren(QAction) if a.objectName()}
        actions["mActionHidePanels"].trigger()  # the model gets the whole window
        wait(0.5)
        actions["mActionZoomToItems"].trigger()
        wait(0.5)
        shot("modeler.png", dlg.frameGeometry())

    def finish(self, failures):
        QgsProject.instance().setDirty(False)
        sys.stdout.flush()
        os._exit(1 if failures else 0)  # QGIS's own exit asks questions; nothing is unsaved


SESSION = Session()
run_steps(SESSION.steps, SESSION.finish, "Screenshots", STEP_MS)
