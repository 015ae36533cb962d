"""Build the shipped Processing models in code and save them as ``models/*.model3``.

The models are plain QgsProcessingModelAlgorithm graphs of the plugin's algorithms, so they open
and can be edited in the graphical modeler (QGIS 3.22 and newer) and run by path or by id:

    scripts/qgis-process run glaciervelocity:imagepairstotrends -- LANDSAT_FOLDER=... \\
        fusion:OUTPUT=fused.tif gapfill:OUTPUT=gapfilled.tif ...
    scripts/qgis-process run models/one_pair_clean_velocity.model3 -- REFERENCE=a.tif \\
        SECONDARY=b.tif correlate:OUTPUT=raw.tif clean:OUTPUT=clean.tif

Model outputs are named ``<step>:<output of the step's algorithm>`` (e.g. ``fusion:OUTPUT``, the
fused stack); :data:`FULL_OUTPUTS` lists them. qgis_process wants every one of them (a path, or
TEMPORARY_OUTPUT); :func:`full_model_outputs` names them all in one folder. Usage:
python3 scripts/build_models.py [--check]
(``--check`` exits 1 when a shipped file differs from what this script builds, attribute order
aside: Qt writes XML attributes in hash order).
"""

import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(ROOT, "models")
PROVIDER = "glaciervelocity"
SENSORS = ("landsat", "sentinel2", "sentinel1")
SENSOR_NAMES = {"landsat": "Landsat", "sentinel2": "Sentinel-2", "sentinel1": "Sentinel-1"}
# Pairing and correlation defaults per sensor: baselines around one or two revisits (pairs stay
# within a calendar month, as the monthly stacks need), STEP so that the optical pair products
# come out at about the 30 m of a typical reference grid, larger windows against SAR speckle.
# Sentinel-1's 64-pixel (640 m) windows are sampled every 6 pixels (60 m, still ten samples per
# window): on the valley scene it measures as at every 3 (glacier RMSE 27.5 against 27.0 m/yr on a
# summer pair; 32-pixel windows give 36.1) for a quarter of the correlation time.
SENSOR_DEFAULTS = {
    "landsat": {"MIN_DAYS": 8, "MAX_DAYS": 32, "STEP": 2, "WINDOW": 32},
    "sentinel2": {"MIN_DAYS": 5, "MAX_DAYS": 30, "STEP": 3, "WINDOW": 32},
    "sentinel1": {"MIN_DAYS": 6, "MAX_DAYS": 24, "STEP": 6, "WINDOW": 64},
}
# Window deformation is off in the full model: on the valley scene's summer Landsat pairs it
# leaves the monthly chain's accuracy unchanged (glacier vector RMSE 26.2 against 26.1 m/yr,
# fast ice 27.4 / 27.6: noise and decorrelation, not shear, dominate a 16-day pair) for four
# times the correlation CPU (30.7 against 7.2 s per pair): noise alone puts most windows over
# its strain threshold. DEFORM turns it on.
FULL_DEFORM = False
# cleanpair removes vectors with SNR < 0.9: speckle keeps correct SAR matches near 0.5, so the
# Sentinel-1 pairs are stacked without it (the temporal filter and the median still apply)
CLEAN = {"landsat": True, "sentinel2": True, "sentinel1": False}
# The model's DEM also masks Sentinel-1 layover and shadow (monthlystacks DEM): speckle keeps a
# high SNR there (median 0.90), and on the valley scene those vectors biased the glacier values
# by +18 m/yr (a fifth to three tenths of the window in layover or shadow) to +27 m/yr (more).
# Its geometry (SAR_LOOK_BEARING, SAR_INCIDENCE) defaults to the sample scenes'.
TERRAIN_MASKED = ("sentinel1",)
# The temporal filter's 0.5-1.5 x reference test removes correct but noisy Sentinel-1 values on
# slow ice (its noise, about 25 m/yr, exceeds half a slow reference): Sentinel-1 pixel-years
# slower than 60 m/yr are left untested. Valley scene (masked Sentinel-1): gap-filled glacier
# coverage 89.8 -> 92.1 %, RMSE 16.8 -> 16.9 m/yr, fills on ice > 100 m/yr unchanged (-2.2 /
# -2.1 % bias, RMSE 19.8 / 19.7), small glaciers' seasonal amplitude -90 -> -37 % and -74 -> -14 %.
TEMPORAL_MIN_REFERENCE = {"sentinel1": 60.0}

FULL_ID = "imagepairstotrends"
FULL_FILE = "image_pairs_to_trends.model3"
ONE_PAIR_ID = "onepaircleanvelocity"
ONE_PAIR_FILE = "one_pair_clean_velocity.model3"

# model outputs of the full model: (child id, output of its algorithm, kind, description)
FULL_OUTPUTS = (
    [(f"{s}_pairs", "OUTPUT", "folder", f"{SENSOR_NAMES[s]} pair products") for s in SENSORS]
    + [(f"{s}_pairs", "OUTPUT_TABLE", "table", f"{SENSOR_NAMES[s]} pair index") for s in SENSORS]
    + [(f"{s}_stack", "OUTPUT", "raster", f"{SENSOR_NAMES[s]} monthly speed stack")
       for s in SENSORS]
    + [(f"{s}_filtered", "OUTPUT", "raster",
        f"{SENSOR_NAMES[s]} monthly speed stack, temporally filtered") for s in SENSORS]
    + [("calibration", "OUTPUT", "table", "Calibration table (weights, bias, RMSE per sensor)"),
       ("calibration", "OUTPUT_SAMPLES", "table", "Calibration samples (UAV and each sensor)"),
       ("fusion", "OUTPUT", "raster", "Fused monthly speed stack"),
       ("fusion", "OUTPUT_COUNT", "raster", "Sensors contributing per pixel and month"),
       ("fusion", "OUTPUT_ERROR", "raster", "Fused speed error (1 sigma, m/yr)"),
       ("gapfill", "OUTPUT", "raster", "Fused and gap-filled monthly speed stack"),
       ("gapfill", "OUTPUT_ERROR", "raster", "Fused and gap-filled speed error (1 sigma, m/yr)"),
       ("uncertainty", "OUTPUT_TABLE", "table", "Stable-ground uncertainty table"),
       ("coverage", "OUTPUT_TABLE", "table", "Coverage table (glaciers, per stack and month)"),
       ("coverage", "OUTPUT", "raster", "Valid months per pixel (one band per stack)"),
       ("pixel_trends", "OUTPUT_TREND", "raster", "Pixel trend (m/yr per decade)"),
       ("pixel_trends", "OUTPUT_P", "raster", "Pixel trend p-value"),
       ("pixel_trends", "OUTPUT_SIGNIFICANT", "raster", "Significant pixel trends (FDR)"),
       ("glacier_trends", "OUTPUT_TABLE", "table", "Glacier trends"),
       ("glacier_trends", "OUTPUT_SUMMARY", "table", "Glacier trend class shares"),
       ("attributes", "OUTPUT_TABLE", "table", "Glacier attributes"),
       ("attributes", "OUTPUT_CORRELATION", "table", "Attribute correlations")])

ONE_PAIR_OUTPUTS = (("correlate", "OUTPUT", "raster", "Raw pair product"),
                    ("clean", "OUTPUT", "raster", "Clean velocity map (pair product)"))

FULL_HELP = """From per-sensor image folders to fused, gap-filled monthly velocities, their
uncertainty and their trends, in one run. For each sensor (Landsat, Sentinel-2, Sentinel-1) the
images of its folder are paired by baseline (<SENSOR>_MIN_DAYS to <SENSOR>_MAX_DAYS) and
correlated (Correlate image pairs (batch), <SENSOR>_WINDOW and <SENSOR>_STEP); the pair products
are cleaned with the default chain and stable-ground ramp removal (Landsat and Sentinel-2;
Sentinel-1 SNR stays low under speckle, so its pairs go uncleaned), stacked by calendar month on
the REFERENCE grid (Monthly stacks, with each month's 1 sigma error stack; Sentinel-1 vectors
whose window sees layover or shadow in the DEM for the SAR_LOOK_BEARING and SAR_INCIDENCE
geometry are removed) and filtered in time (Temporal robust filter, which carries the error
stacks; Sentinel-1 pixel-years slower than 60 m/yr untested: its noise exceeds the test's band
there). The fusion weights are calibrated on the UAV velocity stack (Landsat and Sentinel-2
primary, Sentinel-1 auxiliary; where a sensor is missing, the others take the weights calibrated
for them alone), the stacks fused with them and the gaps filled from Sentinel-1 (window and
per-pixel temporal coefficients combined; Sentinel-1's own holes, layover and image borders,
first filled from its neighbours), each with its per-pixel 1 sigma error (fusion:OUTPUT_ERROR,
gapfill:OUTPUT_ERROR, m/yr): each sensor's RMSE against the UAV in quadrature with the pixel's
monthly error, which also scales the weights per pixel (inverse variance). Then: stable-ground
uncertainty and glacier coverage of every stack, pixel trends with FDR significance, glacier
trends and classes, and glacier attributes correlated with velocity (DEM). Velocities in m/yr,
trends in m/yr per decade. Every product is a model output named <step>:<output>, e.g.
fusion:OUTPUT, gapfill:OUTPUT, pixel_trends:OUTPUT_TREND (scripts/build_models.py lists them)."""

ONE_PAIR_HELP = """One image pair to a clean velocity map: Correlate an image pair (WINDOW, STEP;
dates from the product names, else START_DATE/END_DATE), then Clean a velocity pair (quality
filters and, with STABLE, ramp removal on stable ground). Outputs: the raw pair product
(correlate:OUTPUT) and the clean one (clean:OUTPUT), bands vx, vy, v (m/yr, east and north
positive) and snr."""


SCHEDULER_MODEL_HELP = ("where the {} run: empty = this computer; tcp://host:port = a Dask "
                        "cluster; local:N = N local worker processes. On a cluster, every folder "
                        "and file must be on storage the workers see under the same path.")


def _help_full():
    from glacier_velocity.core.filters.terrain import DEFAULT_SHARE
    from glacier_velocity.processing_provider._pair_common import TERRAIN_HELP

    h = {"ALG_DESC": " ".join(FULL_HELP.split()), "ALG_CREATOR": "Glacier Velocity",
         "REFERENCE": "raster whose grid (CRS, extent, pixel) every monthly stack takes, e.g. a "
                      "30 m raster over the region.",
         "UAV": "UAV velocity stack (m/yr; band descriptions START/END = survey intervals): the "
                "reference of the weight calibration.",
         "STABLE": "stable-ground polygons (bedrock; true velocity zero): ramp removal and "
                   "uncertainty.",
         "GLACIERS": "glacier outline polygons (e.g. RGI): coverage, glacier trends, attributes.",
         **TREND_HELP,
         "DEM": TREND_HELP["DEM"][:-1] + "; Sentinel-1 layover and shadow (vectors whose "
                f"correlation window covers more than a share {DEFAULT_SHARE:g} of them are "
                "removed before stacking).",
         "SAR_LOOK_BEARING": TERRAIN_HELP["LOOK_BEARING"].replace("(with DEM)", "(Sentinel-1)"),
         "SAR_INCIDENCE": TERRAIN_HELP["INCIDENCE"].replace("(with DEM)", "(Sentinel-1)"),
         "DEFORM": "window deformation in the correlations (off by default: on monthly stacks "
                   "of short-baseline pairs it costs about four times the correlation time for "
                   "no measurable gain; turn it on for single pairs across strong shear).",
         "DASK_SCHEDULER": SCHEDULER_MODEL_HELP.format("pair correlations and pixel trends")}
    return _with_sensor_and_output_help(h, SENSOR_DEFAULTS, FULL_OUTPUTS)


def _with_sensor_and_output_help(h, defaults, outputs):
    """``h`` with the help of every sensor's folder and correlation numbers (``defaults`` by
    sensor) and of every model output."""
    for s in SENSORS:
        n, d = SENSOR_NAMES[s], defaults[s]
        h[f"{s.upper()}_FOLDER"] = f"folder of {n} images (product names carry the dates)."
        h[f"{s.upper()}_MIN_DAYS"] = f"shortest {n} pair baseline, days (default {d['MIN_DAYS']})."
        h[f"{s.upper()}_MAX_DAYS"] = f"longest {n} pair baseline, days (default {d['MAX_DAYS']})."
        h[f"{s.upper()}_WINDOW"] = f"{n} correlation window, pixels (default {d['WINDOW']})."
        h[f"{s.upper()}_STEP"] = (f"{n} pixels between correlation windows (default {d['STEP']}); "
                                  "the pair product's pixel is STEP × the image pixel.")
    for child, out, _, desc in outputs:
        h[f"{child}:{out}"] = desc + "."
    return h


def _help_one_pair():
    return {"ALG_DESC": " ".join(ONE_PAIR_HELP.split()), "ALG_CREATOR": "Glacier Velocity",
            "REFERENCE": "the earlier image.", "SECONDARY": "the later image.",
            "STABLE": "stable-ground polygons (optional): a ramp fitted there is removed.",
            "WINDOW": "correlation window side, pixels (32; 64 for SAR or weak texture).",
            "STEP": "pixels between windows; output pixel = STEP × image pixel.",
            "START_DATE": "date of the earlier image (YYYY-MM-DD) when its name has none.",
            "END_DATE": "date of the later image (YYYY-MM-DD) when its name has none.",
            "SNR_MIN": "minimum SNR kept by the cleaning (0.9, the published value; lower it for "
                       "weak or compressed texture, 0 = off).",
            "MAX_SPEED": "maximum speed, m/yr (1095 = 3 m/day; raise it for faster glaciers): "
                         "the correlation looks for displacements up to MAX_SPEED × baseline "
                         "(around PRIOR when given) and the cleaning removes faster vectors "
                         "(0 = no speed filter, search of a quarter window).",
            "SEARCH": "search range in pixels, overriding MAX_SPEED × baseline (0 = automatic).",
            "PRIOR": "prior velocity field (a pair product, m/yr; optional): each window starts "
                     "at its expected offset, velocity × baseline.",
            "correlate:OUTPUT": "raw pair product (vx, vy, v in m/yr, snr).",
            "clean:OUTPUT": "cleaned pair product (vx, vy, v in m/yr, snr)."}


def _qgis():
    """Import the QGIS classes (after the application exists)."""
    import qgis.core as qc

    return qc


# Modeler layout: every box is BOX_WIDTH wide (the longest label fits unclipped), in columns
# COLUMN apart and rows ROW apart; the modeler centres a box on its position, and a box left or
# above 0 cannot be scrolled to, so column 0 / row 0 start MARGIN from the origin (room for the
# fold button the modeler draws above a child box).
BOX_WIDTH, BOX_HEIGHT, COLUMN, ROW, MARGIN = 280, 30, 330, 110, 60


class ModelBuilder:
    """Adds parameters, child algorithms and outputs to a model, laid out in columns counted from
    ``first_column`` (the leftmost one used)."""

    def __init__(self, name, title, first_column=0):
        qc = _qgis()
        self.qc = qc
        self.model = qc.QgsProcessingModelAlgorithm(name, "Models", "models")
        self.title = title  # shown by the provider in the toolbox (help key TITLE)
        self.order = []
        self.first_column = first_column

    def _place(self, component, column, row):
        from qgis.PyQt.QtCore import QPointF, QSizeF

        component.setSize(QSizeF(BOX_WIDTH, BOX_HEIGHT))
        component.setPosition(QPointF(MARGIN + BOX_WIDTH / 2 + COLUMN * (column - self.first_column),
                                      MARGIN + BOX_HEIGHT / 2 + ROW * row))

    def parameter(self, definition, column, row):
        component = self.qc.QgsProcessingModelParameter(definition.name())
        self._place(component, column, row)
        component.setDescription(definition.description())
        self.model.addModelParameter(definition, component)
        self.order.append(definition.name())

    def child(self, child_id, alg_id, description, sources, column, row, outputs=()):
        """Add ``glaciervelocity:<alg_id>`` as ``child_id``; ``sources`` maps its parameter names
        to a source or a list of sources; ``outputs`` are (output name, description) pairs that
        become model outputs ``child_id:output name``."""
        qc = self.qc
        c = qc.QgsProcessingModelChildAlgorithm(f"{PROVIDER}:{alg_id}")
        c.setChildId(child_id)
        c.setDescription(description)
        self._place(c, column, row)
        for name, src in sources.items():
            c.addParameterSources(name, src if isinstance(src, list) else [src])
        # every other input keeps its algorithm's default, stated as the modeler would
        alg = qc.QgsApplication.processingRegistry().algorithmById(f"{PROVIDER}:{alg_id}")
        for d in alg.parameterDefinitions():
            if (d.name() not in sources and not d.isDestination()
                    and d.defaultValue() is not None):
                c.addParameterSources(d.name(), [self.v(d.defaultValue())])
        model_outputs = {}
        for k, (out, desc) in enumerate(outputs):
            o = qc.QgsProcessingModelOutput(out, desc)
            o.setChildId(child_id)
            o.setChildOutputName(out)
            self._place(o, column + 0.5, row + 0.35 + 0.3 * k)
            model_outputs[out] = o
        c.setModelOutputs(model_outputs)
        self.model.addChildAlgorithm(c)

    # sources
    def p(self, name):
        return self.qc.QgsProcessingModelChildParameterSource.fromModelParameter(name)

    def c(self, child_id, output="OUTPUT"):
        return self.qc.QgsProcessingModelChildParameterSource.fromChildOutput(child_id, output)

    def v(self, value):
        return self.qc.QgsProcessingModelChildParameterSource.fromStaticValue(value)

    def finish(self, help_content):
        self.model.setHelpContent(dict(help_content, TITLE=self.title))
        if hasattr(self.model, "setParameterOrder"):  # QGIS >= 3.26 keeps the order given
            self.model.setParameterOrder(self.order)
        return self.model


def _outputs(table, child_id):
    return [(out, desc) for c, out, _, desc in table if c == child_id]


def _sensor_inputs(b, defaults, place):
    """Each sensor's image folder (cell (0, 3k)) and its pairing and correlation numbers
    (``defaults`` by sensor; the j-th number of sensor k at cell ``place(k, j)``)."""
    qc = _qgis()
    from glacier_velocity.compat import FILE_BEHAVIOR_FOLDER, NUMBER_INTEGER

    for k, s in enumerate(SENSORS):
        n, d, key = SENSOR_NAMES[s], defaults[s], s.upper()
        b.parameter(qc.QgsProcessingParameterFile(f"{key}_FOLDER", f"{n} image folder",
                                                  behavior=FILE_BEHAVIOR_FOLDER), 0, 3 * k)
        for j, (name, label, lo) in enumerate((("MIN_DAYS", "minimum baseline (days)", 1),
                                               ("MAX_DAYS", "maximum baseline (days)", 1),
                                               ("WINDOW", "correlation window (px)", 8),
                                               ("STEP", "step between windows (px)", 1))):
            b.parameter(qc.QgsProcessingParameterNumber(
                f"{key}_{name}", f"{n} {label}", NUMBER_INTEGER, d[name], minValue=lo),
                *place(k, j))


TREND_HELP = {
    "DEM": "elevation model (any grid and CRS): glacier aspect, slope and elevation.",
    "MIN_YEARS": "minimum number of valid years for a trend (at least 3).",
    "MIN_AREA": "glaciers smaller than this (km²) are left out of the glacier tables."}


def _trend_inputs(b, column):
    """The glacier outlines, the DEM and the trend numbers every model's trends take: outlines
    and DEM in ``column`` (rows 9 and 10), the numbers in the next column."""
    qc = _qgis()
    from glacier_velocity.compat import NUMBER_DOUBLE, NUMBER_INTEGER, TYPE_VECTOR_POLYGON

    b.parameter(qc.QgsProcessingParameterFeatureSource(
        "GLACIERS", "Glacier polygons", [TYPE_VECTOR_POLYGON]), column, 9)
    b.parameter(qc.QgsProcessingParameterRasterLayer("DEM", "DEM"), column, 10)
    b.parameter(qc.QgsProcessingParameterNumber(
        "MIN_YEARS", "Minimum valid years for a trend", NUMBER_INTEGER, 5, minValue=3),
        column + 1, 9)
    b.parameter(qc.QgsProcessingParameterNumber(
        "MIN_AREA", "Minimum glacier area (km²)", NUMBER_DOUBLE, 1.0, minValue=0.0),
        column + 1, 10)


def _correlate_children(b, outputs, column, extra=None):
    """One correlatebatch child per sensor (``<sensor>_pairs``, row 3k of ``column``) fed by the
    sensor's inputs (and ``extra`` parameters)."""
    for k, s in enumerate(SENSORS):
        key = s.upper()
        b.child(f"{s}_pairs", "correlatebatch", f"Correlate {SENSOR_NAMES[s]} pairs",
                dict({"FOLDER": b.p(f"{key}_FOLDER"), "MIN_DAYS": b.p(f"{key}_MIN_DAYS"),
                      "MAX_DAYS": b.p(f"{key}_MAX_DAYS"), "WINDOW": b.p(f"{key}_WINDOW"),
                      "STEP": b.p(f"{key}_STEP")}, **(extra or {})),
                column, 3 * k, _outputs(outputs, f"{s}_pairs"))


def build_full():
    """The full chain, image folders to trends (a QgsProcessingModelAlgorithm)."""
    qc = _qgis()
    from glacier_velocity.compat import NUMBER_DOUBLE, TYPE_VECTOR_POLYGON
    from glacier_velocity.core.filters.terrain import DEFAULT_INCIDENCE, DEFAULT_LOOK_BEARING
    from glacier_velocity.processing_provider.base import advanced

    b = ModelBuilder(FULL_ID, "Image pairs to trends (full chain)", first_column=-2)
    _sensor_inputs(b, SENSOR_DEFAULTS, lambda k, j: (-2 + j % 2, 3 * k + j // 2))
    b.parameter(qc.QgsProcessingParameterRasterLayer("REFERENCE", "Reference grid"), 1, 9)
    b.parameter(qc.QgsProcessingParameterFeatureSource(
        "STABLE", "Stable-ground polygons", [TYPE_VECTOR_POLYGON]), 1, 10)
    b.parameter(qc.QgsProcessingParameterRasterLayer("UAV", "UAV velocity stack"), 3, 9)
    _trend_inputs(b, 5)
    b.parameter(advanced(qc.QgsProcessingParameterString(
        "DASK_SCHEDULER", "Dask scheduler", optional=True)), 0, 9)
    b.parameter(advanced(qc.QgsProcessingParameterBoolean(
        "DEFORM", "Window deformation", defaultValue=FULL_DEFORM)), 0, 10)
    b.parameter(advanced(qc.QgsProcessingParameterNumber(
        "SAR_LOOK_BEARING", "Sentinel-1 look bearing (°)", NUMBER_DOUBLE,
        DEFAULT_LOOK_BEARING, minValue=0.0, maxValue=359.999)), 1, 11)
    b.parameter(advanced(qc.QgsProcessingParameterNumber(
        "SAR_INCIDENCE", "Sentinel-1 incidence (°)", NUMBER_DOUBLE, DEFAULT_INCIDENCE,
        minValue=0.001, maxValue=89.999)), 1, 12)

    _correlate_children(b, FULL_OUTPUTS, 1, {"DASK_SCHEDULER": b.p("DASK_SCHEDULER"),
                                             "DEFORM": b.p("DEFORM")})
    for k, s in enumerate(SENSORS):
        n = SENSOR_NAMES[s]
        terrain = ({"DEM": b.p("DEM"), "LOOK_BEARING": b.p("SAR_LOOK_BEARING"),
                    "INCIDENCE": b.p("SAR_INCIDENCE")} if s in TERRAIN_MASKED else {})
        b.child(f"{s}_stack", "monthlystacks", f"{n} monthly stack",
                dict({"FOLDER": b.c(f"{s}_pairs"), "REFERENCE": b.p("REFERENCE"),
                      "CLEAN": b.v(CLEAN[s]), "STABLE": b.p("STABLE"), "SENSOR": b.v(s)},
                     **terrain), 2, 3 * k, _outputs(FULL_OUTPUTS, f"{s}_stack"))
        floor = ({"MIN_REFERENCE": b.v(TEMPORAL_MIN_REFERENCE[s])}
                 if s in TEMPORAL_MIN_REFERENCE else {})
        b.child(f"{s}_filtered", "temporalfilter", f"{n} temporal filter",
                dict({"INPUT": b.c(f"{s}_stack")}, **floor), 3, 3 * k,
                _outputs(FULL_OUTPUTS, f"{s}_filtered"))
    primary = [b.c("landsat_filtered"), b.c("sentinel2_filtered")]
    every = [b.c(f"{s}_filtered") for s in SENSORS]
    b.child("calibration", "calibrateweights", "Calibrate weights on the UAV",
            {"REFERENCE": b.p("UAV"), "SOURCES": primary,
             "AUXILIARY": b.c("sentinel1_filtered")}, 4, 2, _outputs(FULL_OUTPUTS, "calibration"))
    b.child("fusion", "fuse", "Fuse the stacks",
            {"SOURCES": primary, "AUXILIARY": b.c("sentinel1_filtered"),
             "WEIGHTS_TABLE": b.c("calibration"), "ERRORS": b.c("calibration", "ERRORS"),
             "SUBSET_WEIGHTS": b.c("calibration", "SUBSET_WEIGHTS"),
             "PIXEL_ERRORS": b.v(True), "INVERSE_VARIANCE": b.v(True)},
             4, 4, _outputs(FULL_OUTPUTS, "fusion"))
    b.child("gapfill", "gapfill", "Gap-fill with Sentinel-1",
            {"FUSED": b.c("fusion"), "AUXILIARY": b.c("sentinel1_filtered"),
             "FUSED_ERROR": b.c("fusion", "OUTPUT_ERROR")}, 4, 6,
            _outputs(FULL_OUTPUTS, "gapfill"))
    products = every + [b.c("fusion"), b.c("gapfill")]
    b.child("uncertainty", "stableuncertainty", "Stable-ground uncertainty",
            {"INPUT": products, "STABLE": b.p("STABLE")}, 5, 2,
            _outputs(FULL_OUTPUTS, "uncertainty"))
    b.child("coverage", "coverage", "Coverage before and after fusion",
            {"INPUT": products, "GLACIERS": b.p("GLACIERS")}, 5, 4,
            _outputs(FULL_OUTPUTS, "coverage"))
    b.child("pixel_trends", "pixeltrend", "Pixel trends",
            {"INPUT": b.c("gapfill"), "MIN_YEARS": b.p("MIN_YEARS"),
             "DASK_SCHEDULER": b.p("DASK_SCHEDULER")}, 6, 2,
            _outputs(FULL_OUTPUTS, "pixel_trends"))
    b.child("glacier_trends", "glaciertrend", "Glacier trends",
            {"INPUT": b.c("gapfill"), "GLACIERS": b.p("GLACIERS"), "DEM": b.p("DEM"),
             "MIN_AREA": b.p("MIN_AREA"), "MIN_YEARS": b.p("MIN_YEARS")}, 6, 4,
            _outputs(FULL_OUTPUTS, "glacier_trends"))
    b.child("attributes", "attributecorrelation", "Attribute correlations",
            {"INPUT": b.c("gapfill"), "GLACIERS": b.p("GLACIERS"), "DEM": b.p("DEM"),
             "MIN_AREA": b.p("MIN_AREA")}, 6, 6, _outputs(FULL_OUTPUTS, "attributes"))
    return b.finish(_help_full())


def build_one_pair():
    """Correlate one pair and clean it (a QgsProcessingModelAlgorithm)."""
    qc = _qgis()
    from glacier_velocity.compat import NUMBER_DOUBLE, NUMBER_INTEGER, TYPE_VECTOR_POLYGON
    from glacier_velocity.core.filters.quality import DEFAULT_MAX_SPEED, DEFAULT_SNR

    b = ModelBuilder(ONE_PAIR_ID, "One pair to a clean velocity map", first_column=-1)
    b.parameter(qc.QgsProcessingParameterRasterLayer("REFERENCE", "Reference (earlier) image"),
                0, 0)
    b.parameter(qc.QgsProcessingParameterRasterLayer("SECONDARY", "Secondary (later) image"),
                0, 1)
    b.parameter(qc.QgsProcessingParameterNumber("WINDOW", "Window size (px)", NUMBER_INTEGER, 32,
                                                minValue=8, maxValue=1024), 0, 2)
    b.parameter(qc.QgsProcessingParameterNumber("STEP", "Step between windows (px)",
                                                NUMBER_INTEGER, 2, minValue=1, maxValue=1024),
                0, 3)
    b.parameter(qc.QgsProcessingParameterString("START_DATE", "Reference date (YYYY-MM-DD)",
                                                optional=True), -1, 0)
    b.parameter(qc.QgsProcessingParameterString("END_DATE", "Secondary date (YYYY-MM-DD)",
                                                optional=True), -1, 1)
    b.parameter(qc.QgsProcessingParameterFeatureSource(
        "STABLE", "Stable-ground polygons", [TYPE_VECTOR_POLYGON], optional=True), 1, 3)
    b.parameter(qc.QgsProcessingParameterNumber("SNR_MIN", "Minimum SNR", NUMBER_DOUBLE,
                                                DEFAULT_SNR, minValue=0, maxValue=1), 2, 3)
    b.parameter(qc.QgsProcessingParameterNumber("MAX_SPEED", "Maximum speed (m/yr)", NUMBER_DOUBLE,
                                                DEFAULT_MAX_SPEED, minValue=0), 2, 4)
    b.parameter(qc.QgsProcessingParameterNumber("SEARCH", "Search range (px, 0 = auto)",
                                                NUMBER_DOUBLE, 0.0, minValue=0), 0, 4)
    b.parameter(qc.QgsProcessingParameterRasterLayer("PRIOR", "Prior velocity field",
                                                     optional=True), 0, 5)
    b.child("correlate", "correlate", "Correlate the pair",
            {"REFERENCE": b.p("REFERENCE"), "SECONDARY": b.p("SECONDARY"),
             "WINDOW": b.p("WINDOW"), "STEP": b.p("STEP"), "START_DATE": b.p("START_DATE"),
             "END_DATE": b.p("END_DATE"), "MAX_SPEED": b.p("MAX_SPEED"),
             "SEARCH": b.p("SEARCH"), "PRIOR": b.p("PRIOR")}, 1, 1,
            _outputs(ONE_PAIR_OUTPUTS, "correlate"))
    b.child("clean", "cleanpair", "Clean the pair",
            {"INPUT": b.c("correlate"), "STABLE": b.p("STABLE"), "SNR_MIN": b.p("SNR_MIN"),
             "MAX_SPEED": b.p("MAX_SPEED")}, 2, 1, _outputs(ONE_PAIR_OUTPUTS, "clean"))
    return b.finish(_help_one_pair())



# ------------------------------------------------------------------ the inversion chain (issue 16)

INVERSION_ID = "imagepairstotrendsinversion"
INVERSION_FILE = "image_pairs_to_trends_inversion.model3"
# Baselines of many lengths overlap in the inversion, so the pairs need not fit a month.
INVERSION_DEFAULTS = {
    "landsat": {"MIN_DAYS": 16, "MAX_DAYS": 96, "STEP": 2, "WINDOW": 32},
    "sentinel2": {"MIN_DAYS": 10, "MAX_DAYS": 60, "STEP": 3, "WINDOW": 32},
    "sentinel1": {"MIN_DAYS": 12, "MAX_DAYS": 48, "STEP": 3, "WINDOW": 64},
}
INVERSION_OUTPUTS = (
    [(f"{s}_pairs", "OUTPUT", "folder", f"{SENSOR_NAMES[s]} pair products") for s in SENSORS]
    + [("inversion", "OUTPUT", "raster", "Monthly speed stack inverted from every sensor's pairs"),
       ("inversion", "OUTPUT_ERROR", "raster", "1 sigma of the inverted monthly speed"),
       ("inversion", "OUTPUT_TABLE", "table", "Pairs and residuals per month"),
       ("sentinel1_inversion", "OUTPUT", "raster", "Monthly speed stack inverted from Sentinel-1"),
       ("gapfill", "OUTPUT", "raster", "Inverted and gap-filled monthly speed stack"),
       ("pixel_trends", "OUTPUT_TREND", "raster", "Pixel trend (m/yr per decade)"),
       ("pixel_trends", "OUTPUT_P", "raster", "Pixel trend p-value"),
       ("pixel_trends", "OUTPUT_SIGNIFICANT", "raster", "Significant pixel trends (FDR)"),
       ("glacier_trends", "OUTPUT_TABLE", "table", "Glacier trends"),
       ("glacier_trends", "OUTPUT_SUMMARY", "table", "Glacier trend class shares")])
INVERSION_HELP = """From per-sensor image folders to monthly velocities by temporal inversion,
gap-filled, and their trends. For each sensor (Landsat, Sentinel-2, Sentinel-1) the images of its
folder are paired by baseline (<SENSOR>_MIN_DAYS to <SENSOR>_MAX_DAYS; long and overlapping
baselines help the inversion) and correlated (Correlate image pairs (batch)). All pairs of all
sensors then enter one inversion (Invert overlapping pairs into a time series) on the REFERENCE
grid: calendar-month vx and vy with a 1 sigma error per month, outlier pairs removed by robust
reweighting, each pair weighted by its error. The Sentinel-1 pairs alone give a second inverted
series that guides the gap filling of the first. Then pixel trends with FDR significance and
glacier trends and classes (DEM). Velocities in m/yr, trends in m/yr per decade. Every product is
a model output named <step>:<output>, e.g. inversion:OUTPUT, gapfill:OUTPUT,
pixel_trends:OUTPUT_TREND."""


def _help_inversion():
    h = {"ALG_DESC": " ".join(INVERSION_HELP.split()), "ALG_CREATOR": "Glacier Velocity",
         "REFERENCE": "raster whose grid (CRS, extent, pixel) the inverted stacks take, e.g. a "
                      "30 m raster over the region.",
         "GLACIERS": "glacier outline polygons (e.g. RGI): glacier trends.",
         **TREND_HELP,
         "DASK_SCHEDULER": SCHEDULER_MODEL_HELP.format(
             "pair correlations, inversions and pixel trends")}
    return _with_sensor_and_output_help(h, INVERSION_DEFAULTS, INVERSION_OUTPUTS)


def build_inversion():
    """Image folders to inverted, gap-filled monthly velocities and trends."""
    qc = _qgis()
    from glacier_velocity.processing_provider.base import advanced

    b = ModelBuilder(INVERSION_ID, "Image pairs to trends by temporal inversion")
    _sensor_inputs(b, INVERSION_DEFAULTS, lambda k, j: (j % 2, 3 * k + 1 + j // 2))
    b.parameter(qc.QgsProcessingParameterRasterLayer("REFERENCE", "Reference grid"), 2, 9)
    _trend_inputs(b, 4)
    b.parameter(advanced(qc.QgsProcessingParameterString(
        "DASK_SCHEDULER", "Dask scheduler", optional=True)), 2, 10)
    dask = {"DASK_SCHEDULER": b.p("DASK_SCHEDULER")}
    _correlate_children(b, INVERSION_OUTPUTS, 2, dask)
    b.child("inversion", "invertseries", "Invert every sensor's pairs",
            dict({"FOLDERS": [b.c(f"{s}_pairs") for s in SENSORS],
                  "REFERENCE": b.p("REFERENCE")}, **dask),
            3, 2, _outputs(INVERSION_OUTPUTS, "inversion"))
    b.child("sentinel1_inversion", "invertseries", "Invert the Sentinel-1 pairs",
            dict({"FOLDER": b.c("sentinel1_pairs"), "REFERENCE": b.p("REFERENCE")}, **dask), 3, 6,
            _outputs(INVERSION_OUTPUTS, "sentinel1_inversion"))
    b.child("gapfill", "gapfill", "Gap-fill with Sentinel-1",
            {"FUSED": b.c("inversion"), "AUXILIARY": b.c("sentinel1_inversion")}, 4, 4,
            _outputs(INVERSION_OUTPUTS, "gapfill"))
    b.child("pixel_trends", "pixeltrend", "Pixel trends",
            dict({"INPUT": b.c("gapfill"), "MIN_YEARS": b.p("MIN_YEARS")}, **dask), 5, 2,
            _outputs(INVERSION_OUTPUTS, "pixel_trends"))
    b.child("glacier_trends", "glaciertrend", "Glacier trends",
            {"INPUT": b.c("gapfill"), "GLACIERS": b.p("GLACIERS"), "DEM": b.p("DEM"),
             "MIN_AREA": b.p("MIN_AREA"), "MIN_YEARS": b.p("MIN_YEARS")}, 5, 5,
            _outputs(INVERSION_OUTPUTS, "glacier_trends"))
    return b.finish(_help_inversion())


BUILDERS = {FULL_FILE: build_full, ONE_PAIR_FILE: build_one_pair,
            INVERSION_FILE: build_inversion}

# ------------------------------------------------------------------ running the full model

# The sample scene's glaciers are only 240-420 m wide in the tiny scene (twice that in the small
# one): correlation windows of 16 px (240 m Landsat, 160 m Sentinel-2) and 32 px for Sentinel-1
# (320 m) keep more of their velocity profile than the defaults made for real glaciers.
SAMPLE_WINDOWS = {"landsat": 16, "sentinel2": 16, "sentinel1": 32}
SAMPLE_STEPS = {"sentinel1": 3}  # a tenth of its window, as the default 6 is of 64


def sample_scene_inputs(scene_folder, manifest, min_area=0.1):
    """Inputs of the full model for a sample scene written with image series (its manifest from
    ``core.sampledata.scene.load_scene``): its series folders, pairing rules and layers. The
    valley scene's glaciers are wide enough for the model's default windows."""
    windows = ({s: SENSOR_DEFAULTS[s]["WINDOW"] for s in SENSORS}
               if manifest.get("scene") == "valley" else SAMPLE_WINDOWS)
    p = manifest["paths"]
    # every number is given, as the benchmark records them (the shipped models also fill a
    # missing input with their own default: processing_provider.provider.ShippedModel)
    inputs = {"REFERENCE": p["reference_grid"], "UAV": p["uav_v"], "STABLE": p["stable"],
              "GLACIERS": p["glaciers"], "DEM": p["dem"],
              "MIN_YEARS": min(manifest["years"], 5), "MIN_AREA": min_area,
              "DEFORM": str(FULL_DEFORM).lower()}
    for s in SENSORS:
        rule = manifest["series_rules"][s]
        step = SENSOR_DEFAULTS[s]["STEP"]
        if manifest.get("scene") != "valley":
            step = SAMPLE_STEPS.get(s, step)
        inputs.update({f"{s.upper()}_FOLDER": os.path.join(scene_folder, "series", s),
                       f"{s.upper()}_MIN_DAYS": rule["min_days"],
                       f"{s.upper()}_MAX_DAYS": rule["max_days"],
                       f"{s.upper()}_WINDOW": windows[s], f"{s.upper()}_STEP": step})
    return inputs


def full_model_outputs(folder):
    """Every output of the full model in ``folder``: {'child:OUTPUT_X': path}, the file named
    after the step and the output (``fusion.tif``, ``fusion_count.tif``, ``landsat_pairs/``,
    ``landsat_pairs_table.csv``): folders for pair products, .csv tables, .tif rasters."""
    ext = {"folder": "", "table": ".csv", "raster": ".tif"}
    return {f"{c}:{o}": os.path.join(folder, c + o[len("OUTPUT"):].lower() + ext[kind])
            for c, o, kind, _ in FULL_OUTPUTS}


def run_arguments(inputs, outputs):
    """``NAME=value`` arguments for ``qgis_process run MODEL --``."""
    return [f"{k}={v}" for k, v in list(inputs.items()) + list(outputs.items())]


def start_qgis():
    """A headless QgsApplication with the Glacier Velocity provider registered (children of the
    models must resolve). Returns the application (keep a reference)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    plugins = subprocess.run([os.path.join(ROOT, "scripts", "link-plugin")], check=True,
                             capture_output=True, text=True).stdout.strip()
    if plugins not in sys.path:
        sys.path.insert(0, plugins)
    from qgis.core import QgsApplication

    app = QgsApplication.instance()
    if app is None:
        app = QgsApplication([], False)
        app.initQgis()
    registry = QgsApplication.processingRegistry()
    if registry.providerById(PROVIDER) is None:
        from glacier_velocity.processing_provider.provider import GlacierVelocityProvider

        start_qgis.provider = GlacierVelocityProvider()  # keep it alive
        registry.addProvider(start_qgis.provider)
    return app


def write_models(folder):
    """Build every model and save it in ``folder``; returns the paths written."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for name, build in BUILDERS.items():
        model = build()
        ok, issues = model.validate()
        if not ok:
            raise RuntimeError(f"{name} does not validate: {issues}")
        path = os.path.join(folder, name)
        if not model.toFile(path):
            raise RuntimeError(f"{path} could not be written")
        paths.append(path)
    return paths


def canonical(path):
    """The model file's XML in canonical form (attributes sorted), for comparisons."""
    return ET.canonicalize(from_file=path, strip_text=True)


def stale_models():
    """Shipped model files that differ from what this script builds now (or are missing)."""
    with tempfile.TemporaryDirectory() as tmp:
        return [os.path.join(MODELS, os.path.basename(p)) for p in write_models(tmp)
                if not os.path.exists(os.path.join(MODELS, os.path.basename(p)))
                or canonical(p) != canonical(os.path.join(MODELS, os.path.basename(p)))]


def main(check=False):
    os.environ.setdefault("QT_HASH_SEED", "0")  # stable attribute order: small diffs in git
    app = start_qgis()  # noqa: F841 (kept alive while building)
    if check:
        stale = stale_models()
        for path in stale:
            print(f"{path} differs from what scripts/build_models.py builds")
        return 1 if stale else 0
    for path in write_models(MODELS):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main("--check" in sys.argv))
