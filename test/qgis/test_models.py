"""The shipped graphical models: they load into QgsProcessingModelAlgorithm, every child resolves,
they validate, their parameters and outputs are named as documented, they are what
scripts/build_models.py builds, the provider lists them, and the one-pair model runs in-process."""

import os

import numpy as np
import pytest
from qgis.core import QgsProcessingModelAlgorithm

from glacier_velocity.compat import FLAG_OPTIONAL
from glacier_velocity.core.io.dates import Interval, parse_date
from glacier_velocity.core.io.products import read_pair_product

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# the public contract of the models (README, help); scripts and the demo depend on these names
FULL_INPUTS = {"LANDSAT_FOLDER", "SENTINEL2_FOLDER", "SENTINEL1_FOLDER", "REFERENCE", "UAV",
               "STABLE", "GLACIERS", "DEM", "MIN_YEARS", "MIN_AREA", "DASK_SCHEDULER", "DEFORM",
               "SAR_LOOK_BEARING", "SAR_INCIDENCE"} | {
    f"{s}_{p}" for s in ("LANDSAT", "SENTINEL2", "SENTINEL1")
    for p in ("MIN_DAYS", "MAX_DAYS", "WINDOW", "STEP")}
ONE_PAIR_INPUTS = {"REFERENCE", "SECONDARY", "WINDOW", "STEP", "START_DATE", "END_DATE", "STABLE",
                   "SNR_MIN", "MAX_SPEED", "SEARCH", "PRIOR"}
FULL_CHILDREN = {
    **{f"{s}_pairs": "correlatebatch" for s in ("landsat", "sentinel2", "sentinel1")},
    **{f"{s}_stack": "monthlystacks" for s in ("landsat", "sentinel2", "sentinel1")},
    **{f"{s}_filtered": "temporalfilter" for s in ("landsat", "sentinel2", "sentinel1")},
    "calibration": "calibrateweights", "fusion": "fuse", "gapfill": "gapfill",
    "uncertainty": "stableuncertainty", "coverage": "coverage", "pixel_trends": "pixeltrend",
    "glacier_trends": "glaciertrend", "attributes": "attributecorrelation"}

INVERSION_INPUTS = {"LANDSAT_FOLDER", "SENTINEL2_FOLDER", "SENTINEL1_FOLDER", "REFERENCE",
                    "GLACIERS", "DEM", "MIN_YEARS", "MIN_AREA", "DASK_SCHEDULER"} | {
    f"{s}_{p}" for s in ("LANDSAT", "SENTINEL2", "SENTINEL1")
    for p in ("MIN_DAYS", "MAX_DAYS", "WINDOW", "STEP")}
INVERSION_CHILDREN = {
    **{f"{s}_pairs": "correlatebatch" for s in ("landsat", "sentinel2", "sentinel1")},
    "inversion": "invertseries", "sentinel1_inversion": "invertseries", "gapfill": "gapfill",
    "pixel_trends": "pixeltrend", "glacier_trends": "glaciertrend"}


def load(path):
    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(path), path
    return model


@pytest.mark.parametrize("name, model_id, inputs, children", [
    ("image_pairs_to_trends.model3", "imagepairstotrends", FULL_INPUTS, FULL_CHILDREN),
    ("one_pair_clean_velocity.model3", "onepaircleanvelocity", ONE_PAIR_INPUTS,
     {"correlate": "correlate", "clean": "cleanpair"}),
    ("image_pairs_to_trends_inversion.model3", "imagepairstotrendsinversion", INVERSION_INPUTS,
     INVERSION_CHILDREN),
])
def test_model_file_loads_and_validates(provider, name, model_id, inputs, children):
    model = load(os.path.join(ROOT, "models", name))
    assert model.name() == model_id
    ok, issues = model.validate()
    assert ok, issues
    found = {cid: c.algorithmId() for cid, c in model.childAlgorithms().items()}
    assert found == {k: f"glaciervelocity:{v}" for k, v in children.items()}
    for child in model.childAlgorithms().values():
        assert child.algorithm() is not None, f"{child.algorithmId()} does not resolve"
    params = {p.name() for p in model.parameterDefinitions() if not p.isDestination()}
    assert params == inputs
    help_content = model.helpContent()
    for p in params:
        assert help_content.get(p, "").strip(), f"{name}: {p} undocumented"
    assert len(help_content["ALG_DESC"]) > 200


@pytest.mark.parametrize("name", ["image_pairs_to_trends.model3", "one_pair_clean_velocity.model3",
                                  "image_pairs_to_trends_inversion.model3"])
def test_model_opens_in_the_modeler(provider, qgis_processing, monkeypatch, name):
    """The graphical modeler (QGIS's own dialog) shows every input, step and output."""
    modeler = pytest.importorskip("processing.modeler.ModelerDialog")
    monkeypatch.setattr(modeler, "iface", None)  # pytest-qgis's stand-in lacks iconSize()
    model = load(os.path.join(ROOT, "models", name))
    dialog = modeler.ModelerDialog.create(model)
    try:
        from qgis.gui import (QgsModelChildAlgorithmGraphicItem, QgsModelOutputGraphicItem,
                              QgsModelParameterGraphicItem)

        items = dialog.view().scene().items()

        def count(kind):
            return sum(isinstance(i, kind) for i in items)

        assert count(QgsModelChildAlgorithmGraphicItem) == len(model.childAlgorithms())
        assert count(QgsModelParameterGraphicItem) == len(model.parameterComponents())
        assert count(QgsModelOutputGraphicItem) == len(model.destinationParameterDefinitions())
    finally:
        dialog.close()


def test_full_model_outputs_are_every_product(provider, build_models):
    model = load(os.path.join(ROOT, "models", "image_pairs_to_trends.model3"))
    outputs = {p.name() for p in model.destinationParameterDefinitions()}
    assert outputs == {f"{c}:{o}" for c, o, _, _ in build_models.FULL_OUTPUTS}
    # every child's products leave the model: nothing computed is only temporary
    for cid, child in model.childAlgorithms().items():
        mandatory = {d.name() for d in child.algorithm().destinationParameterDefinitions()
                     if not d.flags() & FLAG_OPTIONAL}
        assert mandatory <= set(child.modelOutputs()), cid
    # the weights reach the fusion from the calibration, the folders the stacks
    fusion = model.childAlgorithm("fusion").parameterSources()
    assert [(s.outputChildId(), s.outputName()) for s in fusion["WEIGHTS_TABLE"]] == [
        ("calibration", "OUTPUT")]
    stack = model.childAlgorithm("landsat_stack").parameterSources()
    assert stack["FOLDER"][0].outputChildId() == "landsat_pairs"
    assert stack["CLEAN"][0].staticValue() is True
    assert stack["STABLE"][0].parameterName() == "STABLE"


def test_inversion_model_inverts_every_sensor_then_gapfills_and_trends(provider, build_models):
    model = load(os.path.join(ROOT, "models", "image_pairs_to_trends_inversion.model3"))
    outputs = {p.name() for p in model.destinationParameterDefinitions()}
    assert outputs == {f"{c}:{o}" for c, o, _, _ in build_models.INVERSION_OUTPUTS}
    inversion = model.childAlgorithm("inversion").parameterSources()
    assert sorted(src.outputChildId() for src in inversion["FOLDERS"]) == [
        "landsat_pairs", "sentinel1_pairs", "sentinel2_pairs"]
    s1 = model.childAlgorithm("sentinel1_inversion").parameterSources()
    assert s1["FOLDER"][0].outputChildId() == "sentinel1_pairs"
    gapfill = model.childAlgorithm("gapfill").parameterSources()
    assert gapfill["FUSED"][0].outputChildId() == "inversion"
    assert gapfill["AUXILIARY"][0].outputChildId() == "sentinel1_inversion"
    for child in ("pixel_trends", "glacier_trends"):
        assert model.childAlgorithm(child).parameterSources()["INPUT"][0].outputChildId() == \
            "gapfill"
    defaults = {p.name(): p.defaultValue() for p in model.parameterDefinitions()}
    assert (defaults["LANDSAT_MIN_DAYS"], defaults["LANDSAT_MAX_DAYS"]) == (16, 96)


@pytest.mark.parametrize("name, children", [
    ("image_pairs_to_trends.model3",
     ["landsat_pairs", "sentinel2_pairs", "sentinel1_pairs", "pixel_trends"]),
    ("image_pairs_to_trends_inversion.model3",
     ["landsat_pairs", "sentinel2_pairs", "sentinel1_pairs", "inversion", "sentinel1_inversion",
      "pixel_trends"])])
def test_models_pass_the_dask_scheduler_to_every_step_that_takes_it(provider, name, children):
    model = load(os.path.join(ROOT, "models", name))
    takes = sorted(cid for cid, child in model.childAlgorithms().items()
                   if child.algorithm().parameterDefinition("DASK_SCHEDULER") is not None)
    assert takes == sorted(children)
    for cid in children:
        source = model.childAlgorithm(cid).parameterSources()["DASK_SCHEDULER"][0]
        assert source.parameterName() == "DASK_SCHEDULER", cid


def test_shipped_models_are_what_the_script_builds(provider, build_models):
    assert build_models.stale_models() == [], "run scripts/build_models.py"


def test_provider_lists_the_models(provider):
    full = provider.algorithm("imagepairstotrends")
    assert full is not None and full.displayName() == "Image pairs to trends (full chain)"
    assert full.id() == "glaciervelocity:imagepairstotrends"
    one = provider.algorithm("onepaircleanvelocity")
    assert one is not None and one.group() == "Models"
    assert one.createInstance().displayName() == one.displayName()


def test_one_pair_model_runs(run_alg, scene_tiny, tmp_path):
    """The summer Landsat pair of the scene, correlated and cleaned with the stable polygons."""
    _, manifest, model = scene_tiny
    pair = manifest["pairs"][0]
    raw, clean = str(tmp_path / "raw.tif"), str(tmp_path / "clean.tif")
    res = run_alg("onepaircleanvelocity", {
        "REFERENCE": pair["reference"], "SECONDARY": pair["secondary"], "WINDOW": 16, "STEP": 2,
        "STABLE": manifest["paths"]["stable"], "correlate:OUTPUT": raw, "clean:OUTPUT": clean})
    assert res["clean:OUTPUT"] == clean and res["correlate:OUTPUT"] == raw
    info, d = read_pair_product(clean)
    assert str(info.start) == pair["start"] and info.grid.dx == 2 * pair["pixel"]
    tx, ty = model.velocity(info.grid, Interval(parse_date(pair["start"]), parse_date(pair["end"])))
    err = np.hypot(d["vx"] - tx, d["vy"] - ty)
    fast = (model.labels(info.grid) > 0) & (np.hypot(tx, ty) > 50) & np.isfinite(err)
    assert fast.sum() > 100
    assert np.median(err[fast]) < 15.0  # m/yr; one image pixel over the pair is ~170 m/yr
    stable = model.stable_mask(info.grid) & np.isfinite(d["v"])
    assert abs(np.median(d["vx"][stable])) < 1.0 and abs(np.median(d["vy"][stable])) < 1.0


class _RecordingScene:
    """QGIS's own modeler scene, recording every box it draws for a model."""

    def __init__(self, model):
        from qgis.core import QgsProcessingContext
        from qgis.gui import QgsModelGraphicsScene

        made = self.items = []

        class Scene(QgsModelGraphicsScene):
            def createParameterGraphicItem(self, model, param):  # noqa: N802 (QGIS's names)
                made.append(super().createParameterGraphicItem(model, param))
                return made[-1]

            def createChildAlgGraphicItem(self, model, child):  # noqa: N802
                made.append(super().createChildAlgGraphicItem(model, child))
                return made[-1]

            def createOutputGraphicItem(self, model, output):  # noqa: N802
                made.append(super().createOutputGraphicItem(model, output))
                return made[-1]

        self.scene = Scene()
        self.scene.createItems(model, QgsProcessingContext())


@pytest.mark.parametrize("model_id", ["imagepairstotrends", "onepaircleanvelocity"])
def test_model_layout_can_be_edited(provider, model_id):
    """Every box at positive coordinates (the modeler cannot scroll to negative ones), as stored
    (centre ± half the size) and as the modeler draws it, and no label clipped."""
    model = provider.algorithm(model_id).create()
    components = list(model.parameterComponents().values())
    for child in model.childAlgorithms().values():
        components += [child, *child.modelOutputs().values()]
    for c in components:
        left = c.position().x() - c.size().width() / 2
        top = c.position().y() - c.size().height() / 2
        assert left >= 0 and top >= 0, f"{model_id}: {c.description()} at {left:.0f}, {top:.0f}"
    scene = _RecordingScene(model)  # kept: its items live as long as the scene
    drawn = scene.items
    assert len(drawn) == len(components)
    for item in drawn:
        box = item.sceneBoundingRect()
        assert box.left() >= 0 and box.top() >= 0, f"{model_id}: {item.label()} drawn off-scroll"
        if item.label().startswith("OUTPUT"):
            continue  # QGIS 3.22 labels an output box with the output's id (see below)
        assert item.truncatedTextForItem(item.label()) == item.label(), \
            f"{model_id}: label '{item.label()}' is clipped"


@pytest.mark.parametrize("model_id", ["imagepairstotrends", "onepaircleanvelocity"])
def test_model_outputs_have_descriptive_names(provider, build_models, model_id):
    """Output ids stay `child:OUTPUT_X` (a contract); each output's description (the name the
    dialog, the results and newer modelers show) says what it holds."""
    model = provider.algorithm(model_id).create()
    table = build_models.FULL_OUTPUTS if model_id == "imagepairstotrends" \
        else build_models.ONE_PAIR_OUTPUTS
    expected = {f"{c}:{o}": desc for c, o, _, desc in table}
    shown = {o.name(): o.description() for o in model.outputDefinitions()}
    assert shown == expected
    for output_id, description in shown.items():
        assert "OUTPUT" not in description and len(description.split()) >= 2, output_id
    for child in model.childAlgorithms().values():
        for name, output in child.modelOutputs().items():
            assert output.description() == expected[f"{child.childId()}:{name}"]



def test_model_defaults_reach_the_children(provider):
    """qgis_process and processing.run pass only the inputs given; a shipped model hands its own
    default to a child for the others (QGIS's model alone gives the child nothing, so the child
    took its own default: 32 px Sentinel-1 windows instead of the full model's 64)."""
    from qgis.core import (QgsFeature, QgsGeometry, QgsPointXY, QgsProcessingContext,
                           QgsProcessingFeedback, QgsProcessingModelChildAlgorithm,
                           QgsProcessingModelChildParameterSource, QgsProcessingModelOutput,
                           QgsProcessingModelParameter, QgsProcessingParameterNumber,
                           QgsProcessingParameterVectorLayer, QgsVectorLayer)

    from glacier_velocity.compat import NUMBER_DOUBLE
    from glacier_velocity.processing_provider.provider import ShippedModel

    plain = QgsProcessingModelAlgorithm("m", "m")
    plain.addModelParameter(QgsProcessingParameterNumber("DIST", "d", NUMBER_DOUBLE, 7.0),
                            QgsProcessingModelParameter("DIST"))
    plain.addModelParameter(QgsProcessingParameterVectorLayer("LAYER", "l"),
                            QgsProcessingModelParameter("LAYER"))
    child = QgsProcessingModelChildAlgorithm("native:buffer")  # its own default distance: 10
    child.setChildId("buf")
    child.addParameterSources(
        "INPUT", [QgsProcessingModelChildParameterSource.fromModelParameter("LAYER")])
    child.addParameterSources(
        "DISTANCE", [QgsProcessingModelChildParameterSource.fromModelParameter("DIST")])
    out = QgsProcessingModelOutput("OUT")
    out.setChildId("buf")
    out.setChildOutputName("OUTPUT")
    child.setModelOutputs({"OUT": out})
    plain.addChildAlgorithm(child)
    shipped = ShippedModel()
    shipped.loadVariant(plain.toVariant())
    layer = QgsVectorLayer("Point?crs=EPSG:32645", "p", "memory")
    f = QgsFeature()
    f.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(0, 0)))
    layer.dataProvider().addFeatures([f])
    given = {"LAYER": layer, "buf:OUT": "memory:"}
    distances = {}
    for name, model in (("plain", plain), ("shipped", shipped)):
        res, ok = model.run(given, QgsProcessingContext(), QgsProcessingFeedback())
        assert ok
        distances[name] = res["CHILD_INPUTS"]["buf"]["DISTANCE"]
    del layer
    assert distances["shipped"] == 7.0
    assert not distances["plain"]  # QGIS's own behaviour, which the shipped models correct
