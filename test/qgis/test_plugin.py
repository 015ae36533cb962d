"""The plugin loads in QGIS, registers its provider, documents every parameter, and turns bad
input into a clear QgsProcessingException."""

import configparser
import os

import pytest
from qgis.core import QgsApplication, QgsProcessingException

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_metadata():
    meta = configparser.ConfigParser()
    meta.read(os.path.join(ROOT, "metadata.txt"))
    g = meta["general"]
    assert g["hasProcessingProvider"] == "yes"
    assert g["qgisMinimumVersion"] == "3.22" and g["qgisMaximumVersion"] == "4.99"
    assert g["supportsQt6"] == "True"
    for key in ("name", "description", "about", "version", "author", "email", "tracker",
                "repository", "changelog", "icon"):
        assert g.get(key, "").strip(), key
    assert os.path.exists(os.path.join(ROOT, g["icon"]))


@pytest.fixture
def no_provider(qgis_app):
    """No glaciervelocity provider registered during the test (another test's is removed)."""
    registry = QgsApplication.processingRegistry()
    existing = registry.providerById("glaciervelocity")
    if existing is not None:
        registry.removeProvider(existing)
    yield
    # the next test's `provider` fixture registers a fresh one when it needs it


def test_class_factory_without_iface(qgis_app, no_provider):
    """qgis_process calls classFactory(None) then initProcessing()."""
    import glacier_velocity

    plugin = glacier_velocity.classFactory(None)
    plugin.initProcessing()
    registry = QgsApplication.processingRegistry()
    try:
        assert registry.providerById("glaciervelocity") is plugin.provider
        assert registry.algorithmById("glaciervelocity:generatescene") is not None
        plugin.initGui()  # no iface: no GUI, no error
    finally:
        plugin.unload()
    assert registry.providerById("glaciervelocity") is None


class RecordingIface:
    """The part of QgisInterface the plugin uses, recording what is added and removed."""

    def __init__(self, canvas):
        from qgis.PyQt.QtWidgets import QMainWindow

        self.canvas, self.window = canvas, QMainWindow()
        self.added, self.removed = [], []

    def mainWindow(self):  # noqa: N802 (QGIS's names)
        return self.window

    def mapCanvas(self):  # noqa: N802
        return self.canvas

    def addDockWidget(self, area, dock):  # noqa: N802
        self.added.append(("dock", dock))

    def removeDockWidget(self, dock):  # noqa: N802
        self.removed.append(("dock", dock))

    def addPluginToMenu(self, menu, action):  # noqa: N802
        self.added.append(("menu", action))

    def removePluginMenu(self, menu, action):  # noqa: N802
        self.removed.append(("menu", action))

    def addToolBarIcon(self, action):  # noqa: N802
        self.added.append(("tool", action))

    def removeToolBarIcon(self, action):  # noqa: N802
        self.removed.append(("tool", action))


def test_gui_load_and_unload(qgis_app, qgis_canvas, no_provider):
    """initGui adds the dock, menu entries and toolbar buttons; unload removes every one."""
    import glacier_velocity

    iface = RecordingIface(qgis_canvas)
    plugin = glacier_velocity.classFactory(iface)
    plugin.initGui()
    try:
        assert plugin.dock is not None
        assert {k for k, _ in iface.added} == {"dock", "menu", "tool"}
        assert QgsApplication.processingRegistry().providerById("glaciervelocity") is not None
    finally:
        plugin.unload()
    assert plugin.dock is None and not plugin.actions
    assert sorted((k, id(a)) for k, a in iface.added) == sorted((k, id(a)) for k, a in iface.removed)
    assert QgsApplication.processingRegistry().providerById("glaciervelocity") is None


def test_shipped_models_offered_for_editing(qgis_app, qgis_canvas, no_provider, monkeypatch):
    """The toolbox's context menu of a shipped model opens a copy in the modeler (no file path:
    saving asks where, the shipped file is never overwritten); not offered for algorithms."""
    import sys

    import glacier_velocity

    sys.path.insert(0, "/usr/share/qgis/python/plugins")  # the Processing plugin (toolbox)
    import processing.modeler.ModelerDialog as modeler
    from processing.gui.ProviderActions import ProviderContextMenuActions

    monkeypatch.setattr(modeler, "iface", None)  # pytest-qgis' iface lacks the desktop's iconSize()
    iface = RecordingIface(qgis_canvas)
    plugin = glacier_velocity.classFactory(iface)
    plugin.initGui()
    try:
        action = plugin.edit_model
        assert action in ProviderContextMenuActions.actions
        registry = QgsApplication.processingRegistry()
        action.setData(registry.algorithmById("glaciervelocity:fuse"), None)
        assert not action.isEnabled()
        shipped = registry.algorithmById("glaciervelocity:imagepairstotrends")
        action.setData(shipped, None)
        assert action.isEnabled()
        dialog = action.execute()
        try:
            opened = dialog.model()
            assert set(opened.childAlgorithms()) == set(shipped.childAlgorithms())
            assert opened.sourceFilePath() == ""
        finally:
            dialog.close()
    finally:
        plugin.unload()
    assert action not in ProviderContextMenuActions.actions


def test_provider_groups_and_help(provider):
    algs = provider.algorithms()
    assert algs, "no algorithm registered"
    allowed = {"Correlation", "Filters", "Time series", "Fusion", "Uncertainty", "Trends",
               "Sample data", "Import and export"}
    from glacier_velocity.processing_provider.base import GlacierAlgorithm

    for alg in algs:
        assert not alg.icon().isNull()
        help_text = alg.shortHelpString()
        if not isinstance(alg, GlacierAlgorithm):  # a shipped model: documented by its own help
            assert len(help_text.strip()) > 80, f"{alg.id()}: model help too short"
            continue
        assert alg.group() in allowed, alg.id()
        assert len(alg.HELP.strip()) > 80, f"{alg.id()}: help text too short"
        for p in alg.parameterDefinitions():
            assert alg.PARAM_HELP.get(p.name(), "").strip(), f"{alg.id()}: {p.name()} unexplained"
            assert f"- {p.name()} (" in help_text
        for o in alg.outputDefinitions():
            if alg.parameterDefinition(o.name()) is None:
                assert alg.PARAM_HELP.get(o.name(), "").strip(), f"{alg.id()}: output {o.name()}"


def test_generate_scene_algorithm(run_alg, tmp_path):
    out = str(tmp_path / "scene")
    result = run_alg("generatescene", {"SIZE": 0, "YEARS": 2, "SEED": 3, "OUTPUT": out})
    assert result["MANIFEST"] == os.path.join(out, "scene.json")
    from glacier_velocity.core.io.products import read_stack_info
    from glacier_velocity.core.sampledata.scene import load_scene

    manifest, model = load_scene(out)
    info = read_stack_info(manifest["paths"]["landsat_v"])
    assert info.count == 24 and info.sensor == "landsat" and info.grid.dx == 30


def test_bad_input_becomes_processing_exception(run_alg, tmp_path):
    """Core InputErrors reach the user as QgsProcessingException with the message intact."""
    from glacier_velocity.processing_provider.base import GlacierAlgorithm
    from glacier_velocity.core.errors import InputError
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback

    class Failing(GlacierAlgorithm):
        ALG_ID = "failing"

        def process(self, parameters, context, feedback):
            raise InputError("'x.tif' has no coordinate reference system")

    with pytest.raises(QgsProcessingException, match="'x.tif' has no coordinate reference system"):
        Failing().processAlgorithm({}, QgsProcessingContext(), QgsProcessingFeedback())


def test_cancel_stops_and_reports(run_alg, tmp_path):
    """A cancelled feedback stops a long core computation with a clear message."""
    from qgis.core import QgsProcessingFeedback

    feedback = QgsProcessingFeedback()
    feedback.cancel()
    with pytest.raises(QgsProcessingException, match="Cancelled"):
        run_alg("generatescene", {"SIZE": 0, "YEARS": 1, "OUTPUT": str(tmp_path / "c")}, feedback)


def test_algorithm_reference_is_current(provider, load_script):
    """docs/ALGORITHMS.md is what scripts/document_algorithms.py renders now (`make docs`)."""
    module = load_script("document_algorithms")
    with open(module.TARGET) as f:
        assert f.read() == module.render(provider), "run `make docs` to refresh docs/ALGORITHMS.md"


class LoggingFeedback:
    """A QgsProcessingFeedback that keeps the log lines an algorithm pushes."""

    def __new__(cls):
        from qgis.core import QgsProcessingFeedback

        class Feedback(QgsProcessingFeedback):
            def __init__(self):
                super().__init__()
                self.lines = []

            def pushInfo(self, info):  # noqa: N802 (QGIS's name)
                self.lines.append(info)
                super().pushInfo(info)

        return Feedback()


def test_long_algorithms_log_their_stages(run_alg, scene_tiny, tmp_path):
    """The core's progress stages reach the Processing log as lines, in order."""
    p = scene_tiny[1]["paths"]
    feedback = LoggingFeedback()
    run_alg("stableuncertainty", {"INPUT": [p["landsat_v"], p["sentinel2_v"]], "STABLE": p["stable"],
                                  "SAMPLE_SIZE": 200, "OUTPUT_TABLE": str(tmp_path / "s.csv")},
            feedback)
    stages = [line for line in feedback.lines if line.startswith("Product ")]
    assert stages == ["Product 1 of 2: landsat_v", "Product 2 of 2: sentinel2_v"]

    from glacier_velocity.core.progress import Progress

    seen = []
    progress = Progress(log=seen.append)
    progress.sub(0.0, 0.5, "Reading").stage("Pass 1 of 2")
    progress.sub(0.5, 1.0).stage("Writing")
    assert seen == ["Reading", "Pass 1 of 2", "Writing"]
