"""How Glacier Velocity outputs look when QGIS loads them: one renderer per kind of output.

An algorithm declares the kind of each raster output in ``OUTPUT_KINDS`` (``{"OUTPUT":
VELOCITY}``); the base class attaches an :class:`OutputStyler` (a QGIS layer post-processor) to
every output QGIS will load on completion, so the toolbox, the batch dialog and models all show
styled layers. Kinds:

* ``VELOCITY``: read from the file — a pair product shows its speed band ``v``; a stack of
  ``QUANTITY`` vx/vy is a ``COMPONENT``; anything else is a ``SPEED``.
* ``SPEED`` (m/yr): sequential ramp (viridis) from 0 to the 98th percentile (rounded up to a
  round number), on the most complete band of the stack's last twelve (its latest year; the
  latest such month), with a continuous legend in m/yr.
* ``COMPONENT`` (vx, vy), ``TREND`` (m/yr per decade), ``ANOMALY``: diverging ramp (blue
  negative, white 0, red positive) symmetric about 0.
* ``PVALUE``: classes p < 0.01, < 0.05, < 0.1, ≥ 0.1; ``SIGNIFICANCE``: categories 0/1.
* ``SNR``: grey 0 (black) to 1 (white). ``COUNT`` (valid months, stacks, years) and ``ERROR``
  (1σ, m/yr): sequential ramps from 0. ``DISTANCE`` (metres, e.g. a triplet's closure): the
  error ramp from 0 in m, on the last band (the closure's magnitude after its east and north).

Styles are applied on the main thread, when QGIS calls the post-processor; each styler keeps
itself alive (QGIS holds only a C++ pointer) until it has run. :func:`style_layer` is the same
styling for a layer at hand (the sample scene, tests, screenshots).
"""

import math

import numpy as np
from osgeo import gdal
from qgis.core import (QgsColorRampLegendNodeSettings, QgsColorRampShader,
                       QgsContrastEnhancement, QgsFillSymbol, QgsGradientColorRamp,
                       QgsGradientStop, QgsPalettedRasterRenderer, QgsProcessingContext,
                       QgsProcessingLayerPostProcessorInterface, QgsProject,
                       QgsRasterLayer, QgsRasterShader, QgsSingleBandGrayRenderer,
                       QgsSingleBandPseudoColorRenderer, QgsSingleSymbolRenderer, QgsVectorLayer)
from qgis.PyQt.QtGui import QColor

from ..compat import (LAYER_HINT_RASTER, LAYER_HINT_VECTOR, SHADER_DISCRETE, SHADER_LINEAR,
                      STATS_MIN_MAX)
from ..core.io.products import PAIR_BANDS

VELOCITY, SPEED, COMPONENT, TREND, ANOMALY = "velocity", "speed", "component", "trend", "anomaly"
PVALUE, SIGNIFICANCE, SNR, COUNT, ERROR = "pvalue", "significance", "snr", "count", "error"
DISTANCE = "distance"
GLACIERS, STABLE = "glaciers", "stable"  # polygon layers of the sample scene
KINDS = (VELOCITY, SPEED, COMPONENT, TREND, ANOMALY, PVALUE, SIGNIFICANCE, SNR, COUNT, ERROR,
         DISTANCE, GLACIERS, STABLE)

# colour stops (offset 0-1, colour): viridis; blue-white-red (ColorBrewer RdBu reversed);
# ColorBrewer Blues and YlOrRd
RAMPS = {
    "viridis": ("#440154", "#46327e", "#365c8d", "#277f8e", "#1fa187", "#4ac16d", "#a0da39",
                "#fde725"),
    "diverging": ("#2166ac", "#67a9cf", "#d1e5f0", "#f7f7f7", "#fddbc7", "#ef8a62", "#b2182b"),
    "blues": ("#f7fbff", "#c6dbef", "#6baed6", "#2171b5", "#08306b"),
    "ylorrd": ("#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026"),
}
P_CLASSES = ((0.01, "#08519c", "p < 0.01"), (0.05, "#4292c6", "0.01 ≤ p < 0.05"),
             (0.1, "#9ecae1", "0.05 ≤ p < 0.1"), (1.0, "#e0e0e0", "p ≥ 0.1 (no evidence)"))
SIGNIFICANCE_CLASSES = ((0, "#d9d9d9", "not significant"), (1, "#d7301f", "significant (FDR)"))
UNITS = {SPEED: "m/yr", COMPONENT: "m/yr", ANOMALY: "m/yr", ERROR: "m/yr",
         TREND: "m/yr per decade", COUNT: "", DISTANCE: "m"}
SAMPLE = 250_000  # pixels sampled for the ranges (fast on large stacks)

STRETCH = QgsContrastEnhancement.ContrastEnhancementAlgorithm.StretchToMinimumMaximum

ORDER = "glacier_velocity/order"  # layer-tree property: position inside a group
_ALIVE = set()  # stylers QGIS has not called yet (it holds only a C++ pointer to them)


def ramp(name):
    """A :class:`QgsGradientColorRamp` of :data:`RAMPS` ``name`` (evenly spaced stops)."""
    colours = [QColor(c) for c in RAMPS[name]]
    n = len(colours) - 1
    stops = [QgsGradientStop(i / n, colours[i]) for i in range(1, n)]
    return QgsGradientColorRamp(colours[0], colours[-1], False, stops)


# ---------------------------------------------------------------------------- kinds from files

def velocity_kind(path):
    """``(kind, band)`` of a velocity raster: a pair product's speed band, a vx/vy stack as a
    component, otherwise speed."""
    try:
        ds = gdal.Open(str(path).split("|")[0])
    except RuntimeError:
        ds = None
    if ds is None:
        return SPEED, None
    names = tuple(ds.GetRasterBand(i + 1).GetDescription().lower()
                  for i in range(ds.RasterCount))
    if names[:len(PAIR_BANDS)] == PAIR_BANDS:
        return SPEED, PAIR_BANDS.index("v") + 1
    quantity = (ds.GetMetadata() or {}).get("QUANTITY", "v")
    return (COMPONENT if quantity in ("vx", "vy") else SPEED), None


def data_band(layer, recent=12):
    """The band to show: of the last ``recent`` bands (a stack's latest year), the one with the
    most valid pixels, the latest on ties (1 when no band has data). Counted on a decimated read
    (at most 128×128 pixels per band), so large stacks cost little."""
    ds = gdal.Open(layer.source().split("|")[0]) if layer.providerType() == "gdal" else None
    if ds is None:
        return layer.bandCount()
    cols, rows = ds.RasterXSize, ds.RasterYSize
    step = max(1.0, max(cols, rows) / 128.0)
    size = (max(1, int(cols / step)), max(1, int(rows / step)))
    best, best_count = 1, 0
    for band in range(ds.RasterCount, max(ds.RasterCount - recent, 0), -1):
        b = ds.GetRasterBand(band)
        arr = b.ReadAsArray(buf_xsize=size[0], buf_ysize=size[1]).astype(np.float64)
        nodata = b.GetNoDataValue()
        valid = np.isfinite(arr) & ((arr != nodata) if nodata is not None and
                                    math.isfinite(nodata) else True)
        if int(valid.sum()) > best_count:
            best, best_count = band, int(valid.sum())
    return best


def nice_ceil(value):
    """The smallest of 1, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × 10^k at or above ``value`` (> 0): legend
    ends read as round numbers."""
    if not value > 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(m * power for m in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10) if m * power >= value * 0.999)


def stack_top(path, upper=99.5):
    """A round upper end (:func:`nice_ceil`) of the ``upper`` percentile of a stack's values,
    from a decimated read of every band (at most 128×128 pixels each): one scale for several
    layers of the same scene."""
    ds = gdal.Open(str(path))
    cols, rows = ds.RasterXSize, ds.RasterYSize
    step = max(1.0, max(cols, rows) / 128.0)
    arr = ds.ReadAsArray(buf_xsize=max(1, int(cols / step)), buf_ysize=max(1, int(rows / step)))
    arr = np.asarray(arr, np.float64)
    finite = arr[np.isfinite(arr)]
    return nice_ceil(float(np.percentile(finite, upper))) if finite.size else 1.0


def _has_data(stats):
    # elementCount is not filled for min/max statistics; an empty band has min > max
    return stats.maximumValue >= stats.minimumValue


def value_range(layer, band, lower=0.02, upper=0.98):
    """Percentiles ``(lower, upper)`` of a band's valid values, from a sample."""
    lo, hi = layer.dataProvider().cumulativeCut(band, lower, upper, layer.extent(), SAMPLE)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return 0.0, 1.0
    return lo, hi


# ---------------------------------------------------------------------------- renderers

def _pseudocolor(layer, band, ramp_name, lo, hi, mode=SHADER_LINEAR, units="", items=None):
    """A single-band pseudocolour renderer over ``[lo, hi]`` with ``ramp_name``; ``items``
    ``(value, colour, label)`` replace the evenly spaced ramp entries (classed styles)."""
    colour_ramp = ramp(ramp_name)
    shader_fn = QgsColorRampShader(lo, hi, colour_ramp.clone(), mode)
    if items is None:
        n = 7  # odd: a diverging ramp has an entry at its centre, 0
        suffix = f" {units}" if units else ""
        items = [(lo + (hi - lo) * i / (n - 1), colour_ramp.color(i / (n - 1)),
                  f"{lo + (hi - lo) * i / (n - 1):.4g}{suffix}") for i in range(n)]
    shader_fn.setColorRampItemList([QgsColorRampShader.ColorRampItem(v, QColor(c), label)
                                    for v, c, label in items])
    if units:
        settings = QgsColorRampLegendNodeSettings()
        settings.setSuffix(f" {units}")
        shader_fn.setLegendSettings(settings)
    shader = QgsRasterShader(lo, hi)
    shader.setRasterShaderFunction(shader_fn)
    renderer = QgsSingleBandPseudoColorRenderer(layer.dataProvider(), band, shader)
    renderer.setClassificationMin(lo)
    renderer.setClassificationMax(hi)
    return renderer


def raster_renderer(layer, kind, band=None, top=None):
    """The renderer of ``kind`` for a raster layer (``band`` None: chosen per kind; ``top`` the
    end of a sequential ramp, or of both halves of a diverging one, when several layers must
    share a scale; None: from the layer's values)."""
    if kind == VELOCITY:
        kind, pair_band = velocity_kind(layer.source())
        band = band or pair_band
    if band is None and kind == DISTANCE:
        band = layer.bandCount()
    if band is None:
        band = data_band(layer) if kind in (SPEED, COMPONENT, ANOMALY, ERROR) else 1
    provider = layer.dataProvider()
    if kind == SIGNIFICANCE:
        classes = [QgsPalettedRasterRenderer.Class(v, QColor(c), label)
                   for v, c, label in SIGNIFICANCE_CLASSES]
        return QgsPalettedRasterRenderer(provider, band, classes)
    if kind == PVALUE:
        return _pseudocolor(layer, band, "blues", 0.0, 1.0, SHADER_DISCRETE, items=P_CLASSES)
    if kind == SNR:
        renderer = QgsSingleBandGrayRenderer(provider, band)
        contrast = QgsContrastEnhancement(provider.dataType(band))
        contrast.setContrastEnhancementAlgorithm(STRETCH)
        contrast.setMinimumValue(0.0)
        contrast.setMaximumValue(1.0)
        renderer.setContrastEnhancement(contrast)
        return renderer
    if kind in (COMPONENT, TREND, ANOMALY):
        lo, hi = value_range(layer, band)
        half = top or nice_ceil(max(abs(lo), abs(hi)))
        return _pseudocolor(layer, band, "diverging", -half, half, units=UNITS[kind])
    top = top or nice_ceil(value_range(layer, band)[1])
    if kind == COUNT:
        stats = provider.bandStatistics(band, STATS_MIN_MAX, layer.extent(), SAMPLE)
        top = max(stats.maximumValue, 1.0) if _has_data(stats) else 1.0
    return _pseudocolor(layer, band, {COUNT: "blues", ERROR: "ylorrd", DISTANCE: "ylorrd"}.get(
        kind, "viridis"), 0.0, top, units=UNITS.get(kind, "m/yr"))


def vector_renderer(kind):
    """Glacier outlines (solid blue) or stable ground (dashed brown outline): no fill, so the
    velocities under them keep their colours."""
    if kind == GLACIERS:
        symbol = QgsFillSymbol.createSimple({"color": "0,0,0,0", "style": "no",
                                             "outline_color": "#1f4e9c", "outline_width": "0.5"})
    else:
        symbol = QgsFillSymbol.createSimple({"color": "0,0,0,0", "style": "no",
                                             "outline_color": "#8c6d46", "outline_width": "0.4",
                                             "outline_style": "dash"})
    return QgsSingleSymbolRenderer(symbol)


def style_layer(layer, kind, band=None, top=None):
    """Give ``layer`` the look of ``kind`` (a raster kind, or GLACIERS / STABLE for polygons);
    ``band`` and ``top`` as :func:`raster_renderer`."""
    if isinstance(layer, QgsVectorLayer) and kind in (GLACIERS, STABLE):
        layer.setRenderer(vector_renderer(kind))
    elif isinstance(layer, QgsRasterLayer) and kind:
        layer.setRenderer(raster_renderer(layer, kind, band, top))
    layer.triggerRepaint()
    return layer


# ---------------------------------------------------------------------------- post-processors

class LayerGroup:
    """A layer-tree group shared by several loaded layers (the sample scene): ``name`` at the top
    of the tree (made unique when a group of that name exists) holding ``subgroups`` in order,
    collapsed when their layers are all unticked."""

    def __init__(self, name, subgroups=()):
        self.name, self.subgroups, self.made = name, tuple(subgroups), None

    def node(self, root, path=()):
        """The group (or its sub-group ``path``), created on first use."""
        if self.made is None or root.findGroup(self.made) is None:
            name, k = self.name, 2
            while root.findGroup(name) is not None:
                name, k = f"{self.name} ({k})", k + 1
            self.made = name
            top = root.insertGroup(0, name)
            for k, sub in enumerate(self.subgroups):  # below the layers put directly in ``top``
                node = top.addGroup(sub)
                node.setCustomProperty(ORDER, 1_000_000 + k)
                node.setExpanded(False)
        group = root.findGroup(self.made)
        for sub in path:
            group = group.findGroup(sub) or group.addGroup(sub)
        return group


class OutputStyler(QgsProcessingLayerPostProcessorInterface):
    """Styles a loaded output as ``kind`` (``band``, ``top``: see :func:`raster_renderer`); with
    ``group`` (a :class:`LayerGroup`) moves it there
    (into its sub-group ``subgroup`` when given), at position ``order``, ticked ``visible``."""

    def __init__(self, kind, band=None, top=None, group=None, subgroup=None, order=0,
                 visible=True):
        super().__init__()
        self.kind, self.band, self.top, self.group = kind, band, top, group
        self.subgroup = (subgroup,) if subgroup else ()
        self.order, self.visible = order, visible
        _ALIVE.add(self)

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 (QGIS's name)
        try:
            style_layer(layer, self.kind, self.band, self.top)
            if self.group is not None:
                self._move(layer, context.project() or QgsProject.instance())
        except Exception as exc:  # a style must never lose the result
            if feedback is not None:
                feedback.reportError(f"{layer.name()}: could not be styled ({exc}).")
        finally:
            _ALIVE.discard(self)

    def _move(self, layer, project):
        root = project.layerTreeRoot()
        node = root.findLayer(layer.id())
        if node is None:
            return
        group = self.group.node(root, self.subgroup)
        index = sum(1 for child in group.children()
                    if (child.customProperty(ORDER) or 0) <= self.order)
        clone = node.clone()
        clone.setCustomProperty(ORDER, self.order)
        clone.setItemVisibilityChecked(self.visible)
        group.insertChildNode(index, clone)
        if self.visible and group is not root:
            group.setExpanded(True)
        node.parent().removeChildNode(node)


def attach(context, path, kind, **options):
    """Style ``path`` as ``kind`` (None: as QGIS would) when QGIS loads it on completion (no
    effect otherwise)."""
    if not path or not context.willLoadLayerOnCompletion(path):
        return None
    styler = OutputStyler(kind, **options)
    context.layerToLoadOnCompletionDetails(path).setPostProcessor(styler)
    return styler


def load_on_completion(context, path, name, kind, vector=False, **options):
    """Ask QGIS to load ``path`` (layer ``name``) when the algorithm completes, styled as
    ``kind`` (options of :class:`OutputStyler`: group, subgroup, order, visible)."""
    details = QgsProcessingContext.LayerDetails(name, context.project() or QgsProject.instance(),
                                                name)
    details.forceName = True
    hint = LAYER_HINT_VECTOR if vector else LAYER_HINT_RASTER
    if hint is not None:  # else QGIS guesses the type from the path
        details.layerTypeHint = hint
    context.addLayerToLoadOnCompletion(path, details)
    return attach(context, path, kind, **options)


def default_kind(name):
    """The kind of a raster output an algorithm does not declare, from its name: ``…_ERROR`` an
    error, ``…_COUNT`` a count, any other a velocity (the kind read from the file)."""
    if name.endswith("ERROR"):
        return ERROR
    if name.endswith("COUNT"):
        return COUNT
    return VELOCITY


def attach_outputs(context, results, kinds):
    """Attach stylers to the outputs of ``results`` that ``kinds`` (output name -> kind) names."""
    for name, kind in kinds.items():
        value = results.get(name)
        if kind and isinstance(value, str):
            attach(context, value, kind)
