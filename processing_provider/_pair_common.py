"""Parameters, help and the family base shared by the pair post-processing algorithms (not an
algorithm: skipped by discovery): the pair input (a pair product, or vx and vy rasters with units
and dates), stable ground (polygons and/or a mask raster), the output grid (a reference raster or
a pixel size), and :class:`PairAlgorithm`, the shape of the algorithms that turn one pair into one
pair product."""

from qgis.core import (QgsProcessingOutputNumber, QgsProcessingParameterEnum,
                       QgsProcessingParameterFeatureSource, QgsProcessingParameterNumber,
                       QgsProcessingParameterRasterDestination, QgsProcessingParameterRasterLayer,
                       QgsProcessingParameterString)

import os

from ..compat import NUMBER_DOUBLE, TYPE_VECTOR_POLYGON
from ..core.correlation.pairing import list_images
from ..core.errors import InputError
from ..core.filters.quality import DEFAULT_MAX_SPEED, DEFAULT_SNR
from ..core.filters.terrain import (DEFAULT_INCIDENCE, DEFAULT_LOOK_BEARING, DEFAULT_SHARE,
                                    SarTerrainMask)
from ..core.timeseries.harmonise import DEFAULT_PIXEL
from ..core.io.pairsource import PairSource, readable_pairs
from ..core.io.raster import raster_grid
from ..core.io.stable import stable_mask
from .base import GlacierAlgorithm

UNIT_KEYS = ["m/yr", "m/day"]

PAIR_HELP = {
    "INPUT": "pair product (bands vx, vy, v, snr; m/yr), or a single-band raster of vx (east "
             "velocity) together with INPUT_VY.",
    "INPUT_VY": "single-band raster of vy (north velocity) on the grid of INPUT, when INPUT is a "
                "vx raster.",
    "INPUT_UNITS": "velocity units of the input: m/yr (default) or m/day. Outputs are always m/yr.",
    "START_DATE": "first acquisition date (YYYY-MM-DD) when the input does not say it: by default "
                  "from a pair product's metadata, or from two dates in the file name "
                  "(e.g. 20180304-20180405_vx.tif).",
    "END_DATE": "second acquisition date (YYYY-MM-DD), as START_DATE.",
}

THRESHOLD_HELP = {
    "SNR_MIN": f"minimum SNR (0-1, default {DEFAULT_SNR:g}; 0 = off). The default is the "
               "published one; images with weak or compressed texture (8-bit JPEG renderings, "
               "SAR) give correct matches of lower SNR: look at the SNR band and lower it.",
    "MAX_SPEED": f"maximum speed, m/yr (default {DEFAULT_MAX_SPEED:g} = 3 m/day; 0 = off); raise "
                 "it for glaciers that flow faster.",
}


def add_thresholds(alg):
    """The SNR and speed thresholds (SNR_MIN, MAX_SPEED)."""
    alg.addParameter(QgsProcessingParameterNumber("SNR_MIN", "Minimum SNR", NUMBER_DOUBLE,
                                                  DEFAULT_SNR, minValue=0, maxValue=1))
    alg.addParameter(QgsProcessingParameterNumber("MAX_SPEED", "Maximum speed (m/yr)",
                                                  NUMBER_DOUBLE, DEFAULT_MAX_SPEED, minValue=0))


def thresholds(alg, parameters, context):
    """``{'snr_min': .., 'max_speed': ..}`` for FilterSettings (None where switched off)."""
    return {"snr_min": alg.positive_or_none(parameters, "SNR_MIN", context),
            "max_speed": alg.positive_or_none(parameters, "MAX_SPEED", context)}


STABLE_HELP = {
    "STABLE": "stable-ground polygons (bedrock, no ice; any CRS): true velocity zero there.",
    "STABLE_MASK": "stable-ground mask raster (non-zero = stable; any CRS and grid, resampled by "
                   "nearest neighbour). With STABLE too, their union is used.",
}


def add_pair_inputs(alg):
    """Add INPUT, INPUT_VY, INPUT_UNITS, START_DATE and END_DATE to ``alg``."""
    alg.addParameter(QgsProcessingParameterRasterLayer("INPUT", "Pair product or vx raster"))
    alg.addParameter(QgsProcessingParameterRasterLayer("INPUT_VY", "vy raster (with a vx raster)",
                                                       optional=True))
    alg.addParameter(QgsProcessingParameterEnum("INPUT_UNITS", "Input velocity units",
                                                options=UNIT_KEYS, defaultValue=0))
    alg.addParameter(QgsProcessingParameterString("START_DATE", "Start date (YYYY-MM-DD)",
                                                  optional=True))
    alg.addParameter(QgsProcessingParameterString("END_DATE", "End date (YYYY-MM-DD)",
                                                  optional=True))


def pair_source(alg, parameters, context):
    """The :class:`PairSource` the pair-input parameters describe."""
    return PairSource(alg.raster_path(parameters, "INPUT", context),
                      alg.raster_path(parameters, "INPUT_VY", context, required=False),
                      UNIT_KEYS[alg.parameterAsEnum(parameters, "INPUT_UNITS", context)],
                      alg.parameterAsString(parameters, "START_DATE", context).strip() or None,
                      alg.parameterAsString(parameters, "END_DATE", context).strip() or None)


def add_stable(alg, mask=True):
    """Add STABLE (polygons, optional) and, with ``mask``, STABLE_MASK (raster, optional)."""
    alg.addParameter(QgsProcessingParameterFeatureSource(
        "STABLE", "Stable-ground polygons", [TYPE_VECTOR_POLYGON], optional=True))
    if mask:
        alg.addParameter(QgsProcessingParameterRasterLayer(
            "STABLE_MASK", "Stable-ground mask raster", optional=True))


def stable_on(alg, parameters, context, feedback, grid, required=True):
    """The stable-ground mask on ``grid`` from STABLE / STABLE_MASK, or None when neither is
    given and ``required`` is False."""
    polygons = alg.vector_path(parameters, "STABLE", context, feedback, required=False)
    mask = (alg.raster_path(parameters, "STABLE_MASK", context, required=False)
            if alg.parameterDefinition("STABLE_MASK") is not None else None)
    if not polygons and not mask and not required:
        return None
    return stable_mask(grid, polygons, mask)


TERRAIN_HELP = {
    "DEM": "elevation model (m, any grid and CRS) for the SAR layover/shadow mask (optional; "
           "give it for Sentinel-1 pairs): vectors whose correlation window covers more than "
           "LAYOVER_SHARE of layover or shadow are removed (their speckle keeps a high SNR, so "
           "no SNR threshold removes them).",
    "LOOK_BEARING": "horizontal bearing from the ground towards the radar, degrees clockwise "
                    "from north (with DEM): the satellite heading + 270 for a right-looking "
                    "sensor as Sentinel-1, about 257 on ascending and 103 on descending passes at "
                    f"mid latitudes; default {DEFAULT_LOOK_BEARING:g}, the sample scenes' "
                    "geometry (radar to the west: an ascending pass).",
    "INCIDENCE": "incidence angle from the vertical, degrees (with DEM): layover where the slope "
                 "towards the radar exceeds it, shadow where the slope away exceeds 90 minus it; "
                 f"Sentinel-1 IW 29-46, default {DEFAULT_INCIDENCE:g}.",
    "LAYOVER_SHARE": "share of a correlation window (its WINDOW x PIXEL_M footprint from the "
                     "pair's metadata) in layover or shadow above which its vector is removed "
                     f"(with DEM; default {DEFAULT_SHARE:g}, measured on the valley scene).",
}


def add_terrain(alg):
    """Add DEM (optional) and the SAR geometry LOOK_BEARING, INCIDENCE, LAYOVER_SHARE
    (advanced) of the layover/shadow mask."""
    from .base import advanced

    alg.addParameter(QgsProcessingParameterRasterLayer(
        "DEM", "DEM for the SAR layover/shadow mask", optional=True))
    for name, label, default, lo, hi in (
            ("LOOK_BEARING", "SAR look bearing, ground to sensor (degrees)",
             DEFAULT_LOOK_BEARING, 0.0, 359.999),
            ("INCIDENCE", "SAR incidence angle (degrees)", DEFAULT_INCIDENCE, 0.001, 89.999),
            ("LAYOVER_SHARE", "Window share in layover/shadow that removes a vector",
             DEFAULT_SHARE, 0.0, 0.999)):
        alg.addParameter(advanced(QgsProcessingParameterNumber(
            name, label, NUMBER_DOUBLE, default, minValue=lo, maxValue=hi)))


def terrain_mask(alg, parameters, context):
    """The :class:`SarTerrainMask` of DEM and the geometry, or None without DEM."""
    dem = alg.raster_path(parameters, "DEM", context, required=False)
    if not dem:
        return None
    return SarTerrainMask(dem, *(alg.parameterAsDouble(parameters, n, context)
                                 for n in ("LOOK_BEARING", "INCIDENCE", "LAYOVER_SHARE")))


def report_terrain_coverage(terrain, feedback):
    """Warn when the DEM of ``terrain`` (a :class:`SarTerrainMask` or None) missed part of a
    grid: vectors there were kept unmasked."""
    if terrain and terrain.uncovered > 0:
        feedback.reportError(f"DEM '{terrain.path}' does not cover {100 * terrain.uncovered:.1f} %"
                             " of the grid: no layover/shadow mask there, those vectors are kept.",
                             False)


def add_output_grid(alg):
    """Add REFERENCE (a raster whose grid the output takes, optional) and PIXEL_SIZE (m, the
    pixel of the grid made without a reference)."""
    alg.addParameter(QgsProcessingParameterRasterLayer("REFERENCE", "Reference grid",
                                                       optional=True))
    alg.addParameter(QgsProcessingParameterNumber(
        "PIXEL_SIZE", "Pixel size without reference (m)", NUMBER_DOUBLE, DEFAULT_PIXEL,
        minValue=0.01))


def reference_grid(alg, parameters, context):
    """The grid of the REFERENCE raster, or None when it is not given (see add_output_grid)."""
    ref = alg.raster_path(parameters, "REFERENCE", context, required=False)
    return raster_grid(ref, "reference raster") if ref else None


def pair_products(alg, parameters, context, feedback, minimum=1):
    """The paths of the pair products of SOURCES and of every raster in FOLDER (and FOLDERS when
    the algorithm has it). A file that is not a usable pair product (damaged, truncated, an
    image) is reported with its reason and skipped, so one bad file in a folder does not stop
    the run; :class:`InputError` when fewer than ``minimum`` are left."""
    paths = alg.raster_paths(parameters, "SOURCES", context)
    folders = [alg.parameterAsFile(parameters, "FOLDER", context)]
    if alg.parameterDefinition("FOLDERS") is not None:
        folders += alg.parameterAsFileList(parameters, "FOLDERS", context)
    for folder in filter(None, folders):
        if not os.path.isdir(folder):
            raise InputError(f"FOLDER: '{folder}' is not a folder.")
        paths += list_images(folder)
    if not paths:
        raise InputError("SOURCES / FOLDER: give pair products, or a folder that holds some.")
    sources, skipped = readable_pairs(paths)
    for path, why in skipped:
        feedback.reportError(f"Skipped {path}: {why}", False)
    if len(sources) < minimum:
        if not skipped:
            raise InputError(f"SOURCES / FOLDER: {len(sources)} pair product(s) given, at least "
                             f"{minimum} needed.")
        found = (f"only {len(sources)} of the {len(paths)} file(s) is" if sources
                 else f"none of the {len(paths)} file(s) is")
        raise InputError(f"SOURCES / FOLDER: {found} a usable pair product, at least {minimum} "
                         "needed: " + "; ".join(why for _, why in skipped[:3]))
    if skipped:
        feedback.pushInfo(f"{len(sources)} pair product(s) used, {len(skipped)} skipped.")
    return [s.path for s in sources]


class PairAlgorithm(GlacierAlgorithm):
    """Family base: one pair in (the parameters of :func:`add_pair_inputs`), one pair product
    ``OUTPUT`` out.

    A subclass sets ``OUTPUT_LABEL`` and ``NUMBER_OUTPUTS`` (``{name: description}`` of the
    numbers it returns), adds its own parameters in :meth:`init_options` (between the pair inputs
    and OUTPUT) and does its work in :meth:`process_pair`, which returns those numbers.
    """

    OUTPUT_LABEL = "Pair product"
    NUMBER_OUTPUTS = {}

    def initAlgorithm(self, config=None):
        add_pair_inputs(self)
        self.init_options()
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", self.OUTPUT_LABEL))
        for name, description in self.NUMBER_OUTPUTS.items():
            self.addOutput(QgsProcessingOutputNumber(name, description))

    def init_options(self):
        """Add the algorithm's own parameters."""

    def process(self, parameters, context, feedback):
        source = pair_source(self, parameters, context)
        output = self.parameterAsOutputLayer(parameters, "OUTPUT", context)
        return dict(self.process_pair(source, output, parameters, context, feedback),
                    OUTPUT=output)

    def process_pair(self, source, output, parameters, context, feedback):
        """Write the pair product of ``source`` (a :class:`PairSource`) to ``output``; return
        the ``NUMBER_OUTPUTS`` values."""
        raise NotImplementedError
