"""Fuse velocity stacks of several sensors with calibrated weights."""

from qgis.core import (QgsProcessingParameterMultipleLayers, QgsProcessingParameterRasterDestination,
                       QgsProcessingParameterRasterLayer, QgsProcessingParameterString)

from ..compat import TYPE_RASTER
from ..core.fusion.weighted import fuse_stacks, parse_class_weights, parse_weights
from .base import GlacierAlgorithm


class FuseAlgorithm(GlacierAlgorithm):
    ALG_ID = "fuse"
    DISPLAY_NAME = "Fuse velocity stacks"
    GROUP = "fusion"
    HELP = """Fuses the velocity stacks of several sensors into one stack (m/yr) with weights, e.g.
those of "Calibrate fusion weights on UAV velocities".

Per pixel and time step the fused value is the weighted mean of the stacks valid there, the
weights renormalised over them; a stack of weight 0 never contributes. A pixel gets a fused value
only where at least one primary stack (SOURCES) is valid: the auxiliary stack (Sentinel-1) adds its
weighted value there, and elsewhere only serves the gap filling ("Gap-fill a fused stack").

Time steps are the union of the stacks' band intervals; a stack contributes to a time step through
its band with exactly that interval (monthly stacks share calendar months). The output is on the
grid of the first source; other stacks are resampled onto it with nearest neighbour. Band metadata
STACKS, VALID_SHARE and MEAN_SOURCES summarise each time step. Memory holds one band per stack."""
    PARAM_HELP = {
        "SOURCES": "primary velocity stacks (bands named START/END), in the order of WEIGHTS.",
        "AUXILIARY": "optional auxiliary stack (Sentinel-1), weighted last.",
        "WEIGHTS": "comma-separated weights, one per source in SOURCES order then the auxiliary "
                   "(e.g. the WEIGHTS output of the calibration); normalised to sum 1.",
        "CLASSES": "optional categorical raster for per-class weights.",
        "CLASS_WEIGHTS": "optional per-class weights 'class:w1,w2,...;class:...' (the calibration's "
                         "CLASS_WEIGHTS); pixels of other classes use WEIGHTS.",
        "OUTPUT": "fused velocity stack (m/yr, float32, NaN NoData).",
        "OUTPUT_COUNT": "optional stack with the number of stacks that contributed to each pixel "
                        "and time step (0 where there is no fused value).",
    }

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterMultipleLayers(
            "SOURCES", "Primary velocity stacks (in weight order)", TYPE_RASTER))
        self.addParameter(QgsProcessingParameterRasterLayer(
            "AUXILIARY", "Auxiliary velocity stack (Sentinel-1)", optional=True))
        self.addParameter(QgsProcessingParameterString("WEIGHTS", "Weights (comma-separated)"))
        self.addParameter(QgsProcessingParameterRasterLayer(
            "CLASSES", "Classes for per-class weights", optional=True))
        self.addParameter(QgsProcessingParameterString(
            "CLASS_WEIGHTS", "Per-class weights", optional=True))
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", "Fused velocity stack"))
        self.addParameter(QgsProcessingParameterRasterDestination(
            "OUTPUT_COUNT", "Contributing stacks", optional=True, createByDefault=False))

    def process(self, parameters, context, feedback):
        sources = self.raster_paths(parameters, "SOURCES", context)
        auxiliary = self.raster_path(parameters, "AUXILIARY", context, required=False)
        count = len(sources) + (1 if auxiliary else 0)
        weights = parse_weights(self.parameterAsString(parameters, "WEIGHTS", context), count)
        classes = self.raster_path(parameters, "CLASSES", context, required=False)
        class_weights = parse_class_weights(
            self.parameterAsString(parameters, "CLASS_WEIGHTS", context), count)
        if classes and not class_weights:
            feedback.pushWarning("CLASSES is given without CLASS_WEIGHTS: every pixel uses WEIGHTS.")
        output = self.parameterAsOutputLayer(parameters, "OUTPUT", context)
        count_output = self.parameterAsOutputLayer(parameters, "OUTPUT_COUNT", context) or None
        summary = fuse_stacks(sources, output, weights, auxiliary, count_output, classes,
                              class_weights, self.progress(feedback))
        for s in summary:
            feedback.pushInfo(f"{s['interval']}: {s['stacks']} stack(s), fused on "
                              f"{100 * s['valid_share']:.1f} % of pixels, {s['mean_sources']:.2f} "
                              "contributing on average")
        results = {"OUTPUT": output}
        if count_output:
            results["OUTPUT_COUNT"] = count_output
        return results
