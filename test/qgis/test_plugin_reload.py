"""The plugin survives what the Plugin Manager does to it: load, unload, load again, reload.

QGIS removes from ``sys.modules`` only the plugin modules its import hook saw
(``qgis.utils._plugin_modules``, tracked only for plugins ``updateAvailablePlugins()`` listed), so
this drives ``qgis.utils`` exactly as the desktop does, in a fresh interpreter (this file run as a
script): the hook is installed before the plugin is first imported, and the ``iface`` has a real
``QgsMapCanvas``. The parent test only reads the JSON the session prints.
"""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PLUGIN = "glacier_velocity"
MODELS = ("glaciervelocity:imagepairstotrends", "glaciervelocity:onepaircleanvelocity")


def test_reload_keeps_every_algorithm_and_model(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run([sys.executable, __file__, str(tmp_path)], capture_output=True,
                          text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    first = report["first load"]
    assert len(first["algorithms"]) >= 20 and set(MODELS) <= set(first["algorithms"])
    for stage in ("after unload and load", "after reloadPlugin"):
        got = report[stage]
        assert got["algorithms"] == first["algorithms"], stage
        assert got["models valid"] == {m: "" for m in MODELS}, stage
        # the provider's classes come from the reloaded modules, not the stale ones
        assert got["fresh modules"], stage
    # the provider imports its algorithm modules through QGIS's import hook, which records them
    assert report["untracked algorithm modules"] == []
    # the plugin's modules are gone from sys.modules once unloaded (so a ZIP upgrade takes effect)
    assert report["left after unload"] == []
    # an algorithm runs after the reload: a 2-year tiny scene has 24 monthly Landsat bands
    assert report["run after reload"] == {"landsat bands": 24}


# --------------------------------------------------------------------- the desktop session
class _Iface:
    """The part of QgisInterface the plugin uses, around a real QgsMapCanvas."""

    def __init__(self):
        from qgis.gui import QgsMapCanvas
        from qgis.PyQt.QtWidgets import QMainWindow

        self.window = QMainWindow()
        self.canvas = QgsMapCanvas(self.window)

    def mainWindow(self):  # noqa: N802 (QGIS's names)
        return self.window

    def mapCanvas(self):  # noqa: N802
        return self.canvas

    def addDockWidget(self, area, dock):  # noqa: N802
        self.window.addDockWidget(area, dock)

    def removeDockWidget(self, dock):  # noqa: N802
        self.window.removeDockWidget(dock)

    def addPluginToMenu(self, menu, action):  # noqa: N802
        pass

    def removePluginMenu(self, menu, action):  # noqa: N802
        pass

    def addToolBarIcon(self, action):  # noqa: N802
        pass

    def removeToolBarIcon(self, action):  # noqa: N802
        pass


def _state():
    from qgis.core import QgsApplication

    registry = QgsApplication.processingRegistry()
    provider = registry.providerById("glaciervelocity")
    algs = sorted(a.id() for a in provider.algorithms()) if provider else []
    valid = {}
    for model_id in MODELS:
        model = registry.createAlgorithmById(model_id)  # what the toolbox and qgis_process run
        valid[model_id] = "missing" if model is None else "; ".join(model.validate()[1])
    base = sys.modules[f"{PLUGIN}.processing_provider.base"].GlacierAlgorithm
    ours = [a for a in provider.algorithms() if a.provider() and hasattr(a, "ALG_ID")]
    return {"algorithms": algs, "models valid": valid,
            "fresh modules": bool(ours) and all(isinstance(a, base) for a in ours)}


def _run_scene(out):
    """Generate a 2-year tiny scene through Processing; its Landsat stack's band count (or the error)."""
    import processing
    from osgeo import gdal
    from qgis.core import QgsProcessingException

    try:
        processing.run("glaciervelocity:generatescene",
                       {"SIZE": 0, "YEARS": 2, "SEED": 1, "OUTPUT": out})
    except QgsProcessingException as exc:
        return {"error": str(exc)}
    with open(os.path.join(out, "scene.json")) as f:
        landsat = json.load(f)["paths"]["landsat_v"]
    landsat = landsat if os.path.isabs(landsat) else os.path.join(out, landsat)
    return {"landsat bands": gdal.Open(landsat).RasterCount}


def _session(work):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from qgis.core import QgsApplication
    from qgis.PyQt.QtCore import QCoreApplication

    app = QgsApplication([], True)
    app.initQgis()
    sys.path.insert(0, "/usr/share/qgis/python/plugins")
    from processing.core.Processing import Processing

    Processing.initialize()
    import qgis.utils as utils

    plugins = subprocess.run([os.path.join(ROOT, "scripts", "link-plugin")], check=True,
                             capture_output=True, text=True).stdout.strip()
    sys.path.insert(0, plugins)
    utils.plugin_paths = [plugins]
    utils.updateAvailablePlugins()  # turns on module tracking for the plugins it lists
    utils.iface = _Iface()
    assert PLUGIN in utils.available_plugins
    report = {}
    assert utils.loadPlugin(PLUGIN) and utils.startPlugin(PLUGIN)
    report["first load"] = _state()
    report["untracked algorithm modules"] = sorted(
        m for m in sys.modules if m.startswith(f"{PLUGIN}.processing_provider.")
        and m not in utils._plugin_modules.get(PLUGIN, ()))
    # Plugin Manager: untick, then tick
    assert utils.unloadPlugin(PLUGIN)
    QCoreApplication.processEvents()
    report["left after unload"] = sorted(m for m in sys.modules if m.split(".")[0] == PLUGIN)
    assert utils.loadPlugin(PLUGIN) and utils.startPlugin(PLUGIN)
    report["after unload and load"] = _state()
    assert utils.reloadPlugin(PLUGIN)  # what a ZIP upgrade and Plugin Reloader call
    report["after reloadPlugin"] = _state()
    report["run after reload"] = _run_scene(os.path.join(work, "scene"))
    utils.unloadPlugin(PLUGIN)
    print(json.dumps(report))
    app.exitQgis()


if __name__ == "__main__":
    _session(sys.argv[1])
