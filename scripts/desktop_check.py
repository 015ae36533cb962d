"""The plugin tried in the real QGIS desktop as a user meets it (``make desktop-check``).

``make desktop-check`` starts QGIS under Xvfb with a private profile in which the plugin is
enabled, and QGIS runs this file once it is up. Step by step on the GUI's event loop it:

* reads the Processing toolbox: every algorithm of the provider listed in its group, the three
  shipped models under the provider;
* opens the dialogs of the newer algorithms (invertseries, importitslive, exportcube, closure,
  fuse, gapfill) and takes a picture of each, help beside the parameters;
* runs gapfill and invertseries from their dialogs (the Run button) and checks every output is
  added to the map, styled (a pseudocolour ramp in m/yr);
* opens each shipped model in the modeler: every component box at positive coordinates;
* reloads the plugin as the Plugin Manager does (``qgis.utils.reloadPlugin``): every algorithm
  and model is still there, and a model runs;
* clicks a glacier pixel with the dock's tool: the dock plots its history.

Pictures go to ``GV_CHECK`` (default ``.build/desktop-check``), one line per finding to stdout;
QGIS exits with status 1 when a check failed.
"""

import os
import sys
import time

import processing
from osgeo import gdal
from qgis.core import QgsApplication, QgsProject, QgsRasterLayer, QgsRectangle
from qgis.gui import QgsModelComponentGraphicItem, QgsProcessingToolboxTreeView
from qgis.PyQt.QtCore import QRect, Qt
from qgis.PyQt.QtWidgets import QAction, QSplitter
from qgis.utils import iface

sys.path.insert(0, os.path.abspath(os.environ.get("GV_SCRIPTS", "scripts")))
import desktop_common  # noqa: E402 (found through GV_SCRIPTS)
from desktop_common import (SCREEN, click_map, map_point, run_steps,  # noqa: E402
                            show_main_window, wait)

OUT = os.path.abspath(os.environ.get("GV_CHECK", os.path.join(".build", "desktop-check")))
ALG = "glaciervelocity:"
DIALOGS = ("invertseries", "importitslive", "exportcube", "closure", "fuse", "gapfill")
MODELS = ("imagepairstotrends", "imagepairstotrendsinversion", "onepaircleanvelocity")


def shot(name, rect=SCREEN):
    return desktop_common.shot(OUT, name, rect, settle=1.0)


def provider_algorithms():
    return sorted(a.id() for a in QgsApplication.processingRegistry().algorithms()
                  if a.provider() is not None and a.provider().id() == "glaciervelocity")


class Check:
    def __init__(self):
        self.steps = [self.setup, self.toolbox, self.dialogs, self.run_from_dialog,
                      self.modeler, self.reload, self.dock]
        self.failures = []

    def expect(self, ok, text):
        print(("ok    " if ok else "FAIL  ") + text, flush=True)
        if not ok:
            self.failures.append(text)

    def setup(self):
        os.makedirs(OUT, exist_ok=True)
        self.toolbox_dock = show_main_window()
        self.algorithms = provider_algorithms()
        self.expect(len(self.algorithms) >= 27, f"{len(self.algorithms)} algorithms and models "
                    "registered")
        folder = os.path.join(OUT, "scene")
        result = processing.runAndLoadResults(ALG + "generatescene", {
            "SIZE": 0, "YEARS": 3, "SEED": 0, "OUTPUT": folder})
        from glacier_velocity.core.sampledata.scene import load_scene

        self.manifest, _ = load_scene(result["OUTPUT"])
        paths = self.paths = self.manifest["paths"]
        extent = QgsRasterLayer(paths["landsat_v"], "extent").extent()
        iface.mapCanvas().setExtent(QgsRectangle(extent).buffered(extent.width() * 0.03))
        iface.mapCanvas().refreshAllLayers()

    def toolbox(self):
        tree = self.toolbox_dock.findChild(QgsProcessingToolboxTreeView)
        model = tree.model()
        listed = {}
        for row in range(model.rowCount()):
            top = model.index(row, 0)
            if model.data(top) != "Glacier Velocity":
                continue
            tree.expand(top)
            for k in range(model.rowCount(top)):
                group = model.index(k, 0, top)
                tree.expand(group)
                names = [model.data(model.index(i, 0, group))
                         for i in range(model.rowCount(group))]
                listed[model.data(group)] = names
                print(f"      {model.data(group)}: {', '.join(names) or '(an algorithm)'}")
            tree.scrollTo(top, QgsProcessingToolboxTreeView.ScrollHint.PositionAtTop)
        shown = sum(len(v) or 1 for v in listed.values())
        self.expect(shown == len(self.algorithms), f"toolbox shows {shown} entries under Glacier "
                    f"Velocity for {len(self.algorithms)} registered")
        expected = {"Correlation", "Filters", "Time series", "Fusion", "Uncertainty", "Trends",
                    "Import and export", "Sample data"}
        self.expect(expected <= set(listed), "groups " + ", ".join(sorted(listed)))
        self.toolbox_dock.resize(420, 960)
        shot("toolbox.png")

    def dialogs(self):
        params = {"invertseries": {}, "importitslive": {}, "exportcube": {
            "INPUT": self.paths["landsat_v"]}, "closure": {}, "fuse": {
            "SOURCES": [self.paths["landsat_v"], self.paths["sentinel2_v"]]},
            "gapfill": {"FUSED": self.paths["landsat_v"]}}
        for alg_id in DIALOGS:
            alg = QgsApplication.processingRegistry().algorithmById(ALG + alg_id)
            defaults = ", ".join(f"{p.name()}={p.defaultValue()!r}"
                                 for p in alg.parameterDefinitions()
                                 if p.defaultValue() not in (None, ""))
            print(f"      {alg_id} defaults: {defaults}")
            dlg = processing.createAlgorithmDialog(ALG + alg_id, params[alg_id])
            dlg.setGeometry(QRect(100, 40, 1400, 920))
            dlg.show()
            wait(0.5)
            splitter = dlg.findChild(QSplitter)
            if splitter is not None:
                splitter.setSizes([760, 640])
            shot(f"dialog_{alg_id}.png", dlg.frameGeometry())
            dlg.close()
            wait(0.2)

    def run_from_dialog(self):
        """gapfill, then invertseries (pairs of three sensors), each run with its Run button:
        every output asked for is added to the map, styled with a ramp and its units."""
        from glacier_velocity.core.sampledata.pair_series import pair_series

        pairs = os.path.join(OUT, "pairs")
        if not os.path.isdir(pairs):
            pair_series(size=30, years=1, n_pairs=60, seed=1).write(pairs)
        self.dialog_run("gapfill", {"FUSED": self.paths["landsat_v"],
                                    "AUXILIARY": self.paths["sentinel1_v"]},
                        {"OUTPUT": "gapfilled.tif"}, "m/yr")
        self.dialog_run("invertseries", {"FOLDER": pairs},
                        {"OUTPUT": "inverted.tif", "OUTPUT_ERROR": "inverted_error.tif"}, "m/yr")

    def dialog_run(self, alg_id, params, outputs, units):
        project = QgsProject.instance()
        before = set(project.mapLayers())
        for name in outputs.values():
            for suffix in ("", ".aux.xml"):
                if os.path.exists(os.path.join(OUT, name + suffix)):
                    os.remove(os.path.join(OUT, name + suffix))
        dlg = processing.createAlgorithmDialog(ALG + alg_id, dict(params, **{
            k: os.path.join(OUT, v) for k, v in outputs.items()}))
        dlg.show()
        wait(0.5)
        dlg.runAlgorithm()  # what the Run button does
        end = time.monotonic() + 600
        while time.monotonic() < end and len(set(project.mapLayers()) - before) < len(outputs):
            wait(0.5)
        wait(1.0)
        shot(f"dialog_{alg_id}_done.png", dlg.frameGeometry())
        dlg.close()
        added = [project.mapLayer(i) for i in set(project.mapLayers()) - before]
        self.expect(len(added) == len(outputs), f"{alg_id} run from its dialog: "
                    f"{sorted(lyr.name() for lyr in added)} added to the map")
        for lyr in added:
            r = lyr.renderer()
            shader = getattr(r, "shader", lambda: None)()
            ramp = shader.rasterShaderFunction() if shader is not None else None
            items = ramp.colorRampItemList() if ramp is not None else []
            self.expect(r.type() == "singlebandpseudocolor" and len(items) >= 3
                        and items[-1].label.endswith(units),
                        f"'{lyr.name()}' styled {r.type()} on band {r.band()}: "
                        + (f"{items[0].label} to {items[-1].label}" if items else "no ramp"))
        if added:
            iface.mapCanvas().setLayers(added + iface.mapCanvas().layers())
            shot(f"{alg_id}_on_map.png")

    def modeler(self):
        from processing.modeler.ModelerDialog import ModelerDialog

        for model_id in MODELS:
            model = QgsApplication.processingRegistry().algorithmById(ALG + model_id)
            self.expect(model is not None, f"model {model_id} registered")
            if model is None:
                continue
            dlg = ModelerDialog.create(model)
            dlg.setGeometry(SCREEN)
            dlg.show()
            wait(1.0)
            scene = dlg.view().scene()
            boxes = [i for i in scene.items() if isinstance(i, QgsModelComponentGraphicItem)]
            left = min(i.sceneBoundingRect().left() for i in boxes)
            top = min(i.sceneBoundingRect().top() for i in boxes)
            self.expect(left >= 0 and top >= 0, f"model {model_id}: {len(boxes)} boxes, left "
                        f"edge {left:.0f}, top edge {top:.0f}")
            # the modeler's own Zoom to Items (a fitInView at once left the right edge cut off)
            actions = {a.objectName(): a for a in dlg.findChildren(QAction) if a.objectName()}
            actions["mActionZoomToItems"].trigger()
            wait(0.5)
            shot(f"model_{model_id}.png", dlg.frameGeometry())
            dlg.close()
            wait(0.3)

    def reload(self):
        import qgis.utils

        qgis.utils.reloadPlugin("glacier_velocity")
        wait(1.0)
        after = provider_algorithms()
        self.expect(after == self.algorithms, f"after reloadPlugin: {len(after)} algorithms "
                    f"and models (before {len(self.algorithms)}); missing "
                    f"{sorted(set(self.algorithms) - set(after))}")
        folder = os.path.dirname(self.paths["landsat_v"])  # <scene>/stacks
        images = sorted(os.path.join(folder, "..", "images", f)
                        for f in os.listdir(os.path.join(folder, "..", "images"))
                        if f.startswith("LC08_") and f.endswith(".tif"))
        params = {"REFERENCE": images[0], "SECONDARY": images[1],
                  "correlate:OUTPUT": os.path.join(OUT, "model_raw.tif"),
                  "clean:OUTPUT": os.path.join(OUT, "model_clean.tif")}
        print(f"      running onepaircleanvelocity with {params}")
        result = processing.run(ALG + "onepaircleanvelocity", params)
        self.expect(any(os.path.exists(str(v)) for v in result.values()),
                    f"a model runs after the reload: {result}")

    def dock(self):
        from qgis.utils import plugins

        dock = plugins["glacier_velocity"].dock
        dock.show()
        iface.mainWindow().resizeDocks([dock], [700], Qt.Orientation.Horizontal)
        self.toolbox_dock.hide()
        dock.pick_action.setChecked(True)
        wait(1.0)
        ds = gdal.Open(self.paths["truth_v"])
        mean = ds.ReadAsArray().mean(0)
        ds = None
        r, c = divmod(int(mean.argmax()), mean.shape[1])
        click_map(map_point(self.paths["landsat_v"], r, c))
        done = dock.timeseries.wait_idle(120)
        valid = [s for s in dock.timeseries.current if (s.values == s.values).any()]
        self.expect(done and len(valid) >= 2, f"dock plots {len(valid)} stacks at the clicked "
                    f"pixel ({r}, {c})")
        shot("dock.png")

    def finish(self, raised):
        failures = self.failures + raised
        print(f"== {len(failures)} failure(s)" + "".join(f"\n  {f}" for f in failures),
              flush=True)
        QgsProject.instance().setDirty(False)
        sys.stdout.flush()
        os._exit(1 if failures else 0)


CHECK = Check()
run_steps(CHECK.steps, CHECK.finish, "==", 300)
