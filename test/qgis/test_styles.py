"""Outputs arrive styled: each output kind's renderer and ramp after a run whose context loads the
layers, with QGIS's own result handler running the post-processors (as the toolbox does)."""

import math

import numpy as np
import pytest

VIRIDIS_ENDS = ("#440154", "#fde725")
DIVERGING_ENDS = ("#2166ac", "#b2182b")


@pytest.fixture
def project(qgis_app):
    from qgis.core import QgsProject

    project = QgsProject.instance()
    project.clear()
    yield project
    project.clear()


@pytest.fixture
def run_loaded(provider, project):
    """Run an algorithm with the given outputs marked "open after running", then let QGIS's
    result handler load them (running our post-processors); returns ``{output name: layer}``."""
    import processing
    from processing.gui.Postprocessing import handleAlgorithmResults
    from qgis.core import (QgsProcessingContext, QgsProcessingFeedback,
                           QgsProcessingOutputLayerDefinition)

    def _run(alg_id, params, outputs):
        context = QgsProcessingContext()
        context.setProject(project)
        params = dict(params)
        for name, path in outputs.items():
            params[name] = QgsProcessingOutputLayerDefinition(str(path), project)
        feedback = QgsProcessingFeedback()
        alg = f"glaciervelocity:{alg_id}"
        results = processing.run(alg, params, context=context, feedback=feedback)
        assert handleAlgorithmResults(
            processing.core.Processing.QgsApplication.processingRegistry().algorithmById(alg),
            context, feedback, False, params)
        by_source = {lyr.source(): lyr for lyr in project.mapLayers().values()}
        return {name: by_source[results[name]] for name in outputs}

    return _run


def shader_of(layer):
    from qgis.core import QgsSingleBandPseudoColorRenderer

    renderer = layer.renderer()
    assert isinstance(renderer, QgsSingleBandPseudoColorRenderer), type(renderer).__name__
    return renderer.shader().rasterShaderFunction()


def ramp_ends(layer):
    items = shader_of(layer).colorRampItemList()
    return items[0].color.name(), items[-1].color.name()


def test_every_raster_output_has_a_style(provider):
    from qgis.core import QgsProcessingParameterRasterDestination

    from glacier_velocity.processing_provider.base import GlacierAlgorithm
    from glacier_velocity.processing_provider.styles import (DISTANCE, ERROR, KINDS, TREND,
                                                             VELOCITY, default_kind)

    seen = {}
    for alg in provider.algorithms():
        if not isinstance(alg, GlacierAlgorithm):
            continue
        kinds = alg.output_kinds()
        for d in alg.destinationParameterDefinitions():
            if isinstance(d, QgsProcessingParameterRasterDestination):
                assert kinds[d.name()] in KINDS, (alg.id(), d.name())
                seen[(alg.name(), d.name())] = kinds[d.name()]
    assert seen[("pixeltrend", "OUTPUT_TREND")] == TREND
    assert seen[("fuse", "OUTPUT")] == VELOCITY
    assert seen[("closure", "OUTPUT")] == DISTANCE  # metres, not m/yr
    assert default_kind("OUTPUT_ERROR") == ERROR  # e.g. the per-pixel error stacks


def test_trend_p_and_significance_styles(run_loaded, scene_tiny, tmp_path):
    from qgis.core import QgsPalettedRasterRenderer

    layers = run_loaded("pixeltrend", {"INPUT": scene_tiny[1]["paths"]["landsat_v"]},
                        {k: tmp_path / f"{k}.tif" for k in
                         ("OUTPUT_TREND", "OUTPUT_P", "OUTPUT_SIGNIFICANT", "OUTPUT_N_YEARS")})
    trend = shader_of(layers["OUTPUT_TREND"])
    assert trend.minimumValue() == pytest.approx(-trend.maximumValue())  # centred on 0
    assert trend.maximumValue() > 5  # the scene's trends reach tens of m/yr per decade
    assert ramp_ends(layers["OUTPUT_TREND"]) == DIVERGING_ENDS
    middle = trend.colorRampItemList()[len(trend.colorRampItemList()) // 2]
    assert middle.color.name() == "#f7f7f7" and middle.value == pytest.approx(0, abs=1e-9)
    assert trend.legendSettings().suffix() == " m/yr per decade"

    from glacier_velocity.compat import SHADER_DISCRETE

    p = shader_of(layers["OUTPUT_P"])
    assert p.colorRampType() == SHADER_DISCRETE  # classes, not a gradient
    assert [round(i.value, 3) for i in p.colorRampItemList()] == [0.01, 0.05, 0.1, 1.0]
    assert p.colorRampItemList()[0].label == "p < 0.01"

    sig = layers["OUTPUT_SIGNIFICANT"].renderer()
    assert isinstance(sig, QgsPalettedRasterRenderer)
    assert [(c.value, c.label) for c in sig.classes()] == [(0, "not significant"),
                                                           (1, "significant (FDR)")]
    counts = shader_of(layers["OUTPUT_N_YEARS"])
    assert counts.minimumValue() == 0 and counts.maximumValue() == 10  # ten years of data
    assert ramp_ends(layers["OUTPUT_N_YEARS"]) == ("#f7fbff", "#08306b")


def test_speed_stack_and_component_styles(run_loaded, scene_tiny, tmp_path):
    from osgeo import gdal

    p = scene_tiny[1]["paths"]
    layers = run_loaded("temporalfilter", {"INPUT": p["landsat_v"], "INPUT_VX": p["truth_vx"]},
                        {"OUTPUT": tmp_path / "v.tif", "OUTPUT_VX": tmp_path / "vx.tif"})
    speed = layers["OUTPUT"]
    band = speed.renderer().band()
    arr = gdal.Open(speed.source()).ReadAsArray()
    valid = np.isfinite(arr[-12:]).sum(axis=(1, 2))  # the stack's last year
    most = arr.shape[0] - 12 + int(np.flatnonzero(valid == valid.max())[-1]) + 1
    assert band == most  # the latest year's most complete month, not band 1 (nor RGB of 1-3)
    shader = shader_of(speed)
    assert shader.minimumValue() == 0
    p98 = np.percentile(arr[band - 1][np.isfinite(arr[band - 1])], 98)
    assert p98 * 0.98 <= shader.maximumValue() <= p98 * 1.5  # rounded up to a round number
    assert shader.maximumValue() in (100, 150, 200, 250, 300, 400, 500)
    assert ramp_ends(speed) == VIRIDIS_ENDS
    assert shader.legendSettings().suffix() == " m/yr"

    vx = shader_of(layers["OUTPUT_VX"])  # a vx stack (QUANTITY vx): diverging about 0
    assert vx.minimumValue() == pytest.approx(-vx.maximumValue()) and vx.maximumValue() > 10
    assert ramp_ends(layers["OUTPUT_VX"]) == DIVERGING_ENDS


def test_pair_product_shows_speed_and_snr_is_grey(run_loaded, scene_tiny, tmp_path):
    from qgis.core import QgsRasterLayer, QgsSingleBandGrayRenderer

    from glacier_velocity.core.io.grid import Grid
    from glacier_velocity.core.io.products import write_pair_product
    from glacier_velocity.processing_provider import styles
    from glacier_velocity.processing_provider.styles import nice_ceil

    grid = Grid.from_dataset(__import__("osgeo.gdal").gdal.Open(scene_tiny[1]["paths"]["dem"]))
    rng = np.random.default_rng(0)
    vx, vy = rng.normal(30, 5, grid.shape), rng.normal(-40, 5, grid.shape)
    pair = write_pair_product(str(tmp_path / "pair.tif"), grid, vx, vy,
                              rng.uniform(0, 1, grid.shape), "2016-07-03", "2016-08-04", "landsat")
    layers = run_loaded("harmonise", {"INPUT": pair}, {"OUTPUT": tmp_path / "h.tif"})
    renderer = layers["OUTPUT"].renderer()
    assert renderer.band() == 3  # the speed band v, not an RGB of vx, vy, v
    assert ramp_ends(layers["OUTPUT"]) == VIRIDIS_ENDS
    p98 = np.percentile(np.hypot(vx, vy), 98)  # about 63 m/yr: the legend ends at 80
    assert shader_of(layers["OUTPUT"]).maximumValue() == nice_ceil(p98) == 80

    snr = styles.style_layer(QgsRasterLayer(pair, "snr"), styles.SNR, band=4)
    grey = snr.renderer()
    assert isinstance(grey, QgsSingleBandGrayRenderer) and grey.grayBand() == 4
    ce = grey.contrastEnhancement()
    assert (ce.minimumValue(), ce.maximumValue()) == (0.0, 1.0)


def test_closure_raster_shows_its_magnitude_in_metres(run_loaded, tmp_path):
    from glacier_velocity.core.io.grid import Grid
    from glacier_velocity.core.io.products import write_pair_product

    grid = Grid.from_bounds(420000, 3330000, 30, 40, 40, 32645)
    rng = np.random.default_rng(1)
    paths = []
    for name, (a, b) in {"ab": ("2020-01-05", "2020-02-06"), "bc": ("2020-02-06", "2020-03-09"),
                         "ac": ("2020-01-05", "2020-03-09")}.items():
        paths.append(str(tmp_path / f"{name}.tif"))
        write_pair_product(paths[-1], grid, rng.normal(100, 5, grid.shape),
                           rng.normal(0, 5, grid.shape), np.ones(grid.shape), a, b, "landsat")
    layers = run_loaded("closure", {"SOURCES": paths, "PIXEL_SIZE": 15,
                                    "OUTPUT_TABLE": str(tmp_path / "c.csv")},
                        {"OUTPUT": tmp_path / "closure.tif"})
    layer = layers["OUTPUT"]
    assert layer.renderer().band() == 3  # the magnitude, after closure_east and closure_north
    items = shader_of(layer).colorRampItemList()
    assert items[0].value == 0 and items[-1].label.endswith(" m")


def test_sample_scene_loads_as_a_group(run_loaded, project, tmp_path, provider):
    import processing
    from processing.gui.Postprocessing import handleAlgorithmResults
    from qgis.core import (QgsApplication, QgsLayerTreeGroup, QgsProcessingContext,
                           QgsProcessingFeedback, QgsSingleBandPseudoColorRenderer)

    context = QgsProcessingContext()
    context.setProject(project)
    params = {"SIZE": 0, "YEARS": 1, "OUTPUT": str(tmp_path / "scene")}
    feedback = QgsProcessingFeedback()
    processing.run("glaciervelocity:generatescene", params, context=context, feedback=feedback)
    alg = QgsApplication.processingRegistry().algorithmById("glaciervelocity:generatescene")
    assert handleAlgorithmResults(alg, context, feedback, False, params)

    root = project.layerTreeRoot()
    group = root.children()[0]
    assert isinstance(group, QgsLayerTreeGroup) and group.name() == "Sample scene (ellipses, tiny)"
    names = [c.name() for c in group.children()]
    assert names == ["Glaciers", "Stable ground", "Speed stacks (m/yr)", "Images", "Truth",
                     "Terrain"]
    stacks = group.findGroup("Speed stacks (m/yr)")
    assert [c.name() for c in stacks.children()] == ["UAV speed", "Landsat speed",
                                                     "Sentinel-2 speed", "Sentinel-1 speed"]
    assert [c.isVisible() for c in stacks.children()] == [True, True, False, False]
    tops = set()
    for node in stacks.children():
        assert isinstance(node.layer().renderer(), QgsSingleBandPseudoColorRenderer)
        tops.add(node.layer().renderer().shader().rasterShaderFunction().maximumValue())
    assert len(tops) == 1 and 150 <= tops.pop() <= 400  # one scale: the colours compare
    assert len(group.findGroup("Images").children()) == 12  # two pairs per sensor
    assert not group.findGroup("Images").children()[0].isVisible()  # they would hide the stacks
    glaciers = group.children()[0].layer()
    assert glaciers.featureCount() == 4
    assert glaciers.renderer().symbol().symbolLayer(0).brushStyle() == 0  # outlines only
    assert len(project.mapLayers()) == 2 + 4 + 12 + 5 + 3
    assert all(math.isfinite(lyr.extent().width()) for lyr in project.mapLayers().values())
