"""Fuse velocity stacks of several sensors with calibrated weights."""

import os

from qgis.core import (QgsProcessingException, QgsProcessingParameterBoolean,
                       QgsProcessingParameterFeatureSource,
                       QgsProcessingParameterMultipleLayers, QgsProcessingParameterRasterDestination,
                       QgsProcessingParameterRasterLayer, QgsProcessingParameterString)

from ..compat import TYPE_RASTER, TYPE_VECTOR_TABLE
from ..core.errors import InputError
from ..core.fusion.weighted import (fuse_stacks, overall_shares, parse_class_weights,
                                    parse_subset_weights, parse_weights)
from ..core.io.pixel_series import error_stack_path, parse_calibration
from ..core.io.products import read_stack_info
from .base import GlacierAlgorithm


class FuseAlgorithm(GlacierAlgorithm):
    ALG_ID = "fuse"
    DISPLAY_NAME = "Fuse velocity stacks"
    GROUP = "fusion"
    HELP = (
        "Fuses the velocity stacks of several sensors into one stack (m/yr) with weights, e.g. "
        "those of \"Calibrate fusion weights on UAV velocities\".\n\n"
        "Per pixel and time step the fused value is the weighted mean of the stacks valid there, "
        "the weights renormalised over them; a stack of weight 0 never contributes. With "
        "SUBSET_WEIGHTS (the calibration's), a pixel where exactly a listed set of stacks is "
        "valid takes that set's own calibrated weights instead. A pixel gets a "
        "fused value only where at least one primary stack (SOURCES) is valid: the auxiliary stack "
        "(Sentinel-1) adds its weighted value there, and elsewhere only serves the gap filling "
        "(\"Gap-fill a fused stack\").\n\n"
        "Time steps are the union of the stacks' band intervals; a stack contributes to a time "
        "step through its band with exactly that interval (monthly stacks share calendar months). "
        "The output is on the grid of the first source; other stacks are resampled onto it with "
        "nearest neighbour. Band metadata STACKS, VALID_SHARE, MEAN_SOURCES and VALUE_SHARES (each "
        "stack's share of the fused values, its renormalised weight averaged over the fused "
        "pixels) summarise each time step; the log gives the shares over the whole stack. Memory "
        "holds one band per stack.\n\n"
        "Per-pixel uncertainty: with ERRORS (one 1 σ in m/yr per stack, e.g. the calibration's "
        "ERRORS, each sensor's RMSE against the UAV), OUTPUT_ERROR receives the 1 σ of every fused "
        "value, sqrt(Σ w² σ²) / Σ w over the stacks that contributed there (independent errors "
        "through the renormalised weighted mean), one band per time step (m/yr). Gap-fill a fused "
        "stack takes it as FUSED_ERROR.\n\n"
        "Per-pixel errors (PIXEL_ERRORS, default on, with ERRORS): a stack that has an error stack "
        "(named by its ERROR_STACK metadata or <name>_error.tif beside it, as Monthly stacks and "
        "the Temporal robust filter write) has at each pixel the σ sqrt(σ_k² + e²), its ERRORS "
        "value σ_k (what the sensors share, e.g. window smoothing) in quadrature with the pixel's "
        "monthly error e. With INVERSE_VARIANCE (default on) the weights are scaled per pixel by "
        "σ_k² / (σ_k² + e²), so a sensor's noisy months count less. On the valley sample scene "
        "from images the gap-filled product's truth lies within ±1.96 σ for 95.6 % of glacier "
        "pixel-months with both (89.5 % with ERRORS alone)."
    )
    PARAM_HELP = {
        "SOURCES": "primary velocity stacks (bands named START/END), in the order of WEIGHTS.",
        "AUXILIARY": "optional auxiliary stack (Sentinel-1), weighted last.",
        "WEIGHTS": "comma-separated weights, one per source in SOURCES order then the auxiliary "
                   "(e.g. the WEIGHTS output of the calibration); normalised to sum 1. Not needed "
                   "with WEIGHTS_TABLE.",
        "WEIGHTS_TABLE": "the calibration table of \"Calibrate fusion weights on UAV velocities\" "
                         "(its weight column, rows in SOURCES order then the auxiliary); used "
                         "instead of WEIGHTS when given.",
        "CLASSES": "optional categorical raster for per-class weights.",
        "CLASS_WEIGHTS": "optional per-class weights 'class:w1,w2,...;class:...' (the calibration's "
                         "CLASS_WEIGHTS); pixels of other classes use WEIGHTS.",
        "OUTPUT": "fused velocity stack (m/yr, float32, NaN NoData).",
        "OUTPUT_COUNT": "optional stack with the number of stacks that contributed to each pixel "
                        "and time step (0 where there is no fused value).",
        "SUBSET_WEIGHTS": "optional weights per set of valid stacks, 'mask:w1,w2,...;...' (the "
                          "calibration's SUBSET_WEIGHTS; mask 0/1 per stack in WEIGHTS order): a "
                          "pixel where exactly the stacks of a mask are valid takes its weights.",
        "ERRORS": "optional comma-separated 1 σ errors (m/yr), one per stack in WEIGHTS order "
                  "(e.g. the ERRORS output of the calibration); needed by OUTPUT_ERROR.",
        "OUTPUT_ERROR": "optional stack of the fused values' 1 σ (m/yr, one band per time step; "
                        "e.g. fused_error.tif beside fused.tif).",
        "PIXEL_ERRORS": "use each stack's error stack (ERROR_STACK metadata or <name>_error.tif), "
                        "in quadrature with its ERRORS value (default on; needs ERRORS).",
        "INVERSE_VARIANCE": "with PIXEL_ERRORS, scale each weight per pixel by σ_k² / (σ_k² + e²) "
                            "(default on).",
    }

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterMultipleLayers(
            "SOURCES", "Primary velocity stacks (in weight order)", TYPE_RASTER))
        self.addParameter(QgsProcessingParameterRasterLayer(
            "AUXILIARY", "Auxiliary velocity stack (Sentinel-1)", optional=True))
        self.addParameter(QgsProcessingParameterString("WEIGHTS", "Weights (comma-separated)",
                                                       optional=True))
        self.addParameter(QgsProcessingParameterFeatureSource(
            "WEIGHTS_TABLE", "Calibration table (instead of the weights)", [TYPE_VECTOR_TABLE],
            optional=True))
        self.addParameter(QgsProcessingParameterRasterLayer(
            "CLASSES", "Classes for per-class weights", optional=True))
        self.addParameter(QgsProcessingParameterString(
            "CLASS_WEIGHTS", "Per-class weights", optional=True))
        self.addParameter(QgsProcessingParameterString(
            "SUBSET_WEIGHTS", "Weights per set of valid stacks", optional=True))
        self.addParameter(QgsProcessingParameterString(
            "ERRORS", "Errors per stack, 1 sigma m/yr (comma-separated)", optional=True))
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", "Fused velocity stack"))
        self.addParameter(QgsProcessingParameterRasterDestination(
            "OUTPUT_COUNT", "Contributing stacks", optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterRasterDestination(
            "OUTPUT_ERROR", "Fused error (1 sigma)", optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterBoolean(
            "PIXEL_ERRORS", "Use the stacks' per-pixel error stacks", defaultValue=True))
        self.addParameter(QgsProcessingParameterBoolean(
            "INVERSE_VARIANCE", "Per-pixel inverse-variance weights", defaultValue=True))

    def process(self, parameters, context, feedback):
        sources = self.raster_paths(parameters, "SOURCES", context)
        auxiliary = self.raster_path(parameters, "AUXILIARY", context, required=False)
        count = len(sources) + (1 if auxiliary else 0)
        weights = self.weights(parameters, context, count, feedback)
        classes = self.raster_path(parameters, "CLASSES", context, required=False)
        class_weights = parse_class_weights(
            self.parameterAsString(parameters, "CLASS_WEIGHTS", context), count)
        if classes and not class_weights:
            feedback.pushWarning("CLASSES is given without CLASS_WEIGHTS: every pixel uses WEIGHTS.")
        output = self.parameterAsOutputLayer(parameters, "OUTPUT", context)
        count_output = self.parameterAsOutputLayer(parameters, "OUTPUT_COUNT", context) or None
        errors = self.parameterAsString(parameters, "ERRORS", context).strip() or None
        error_output = self.parameterAsOutputLayer(parameters, "OUTPUT_ERROR", context) or None
        if error_output and not errors:
            raise InputError("OUTPUT_ERROR needs ERRORS: one 1 sigma error (m/yr) per stack, e.g. "
                             "the ERRORS output of Calibrate fusion weights.")
        subsets = parse_subset_weights(
            self.parameterAsString(parameters, "SUBSET_WEIGHTS", context), count)
        error_stacks = None
        if errors and self.parameterAsBool(parameters, "PIXEL_ERRORS", context):
            error_stacks = [error_stack_path(p, read_stack_info(p)) for p in
                            sources + ([auxiliary] if auxiliary else [])]
            feedback.pushInfo("Per-pixel error stacks: " + ", ".join(
                os.path.basename(e) if e else "none" for e in error_stacks))
        summary = fuse_stacks(sources, output, weights, auxiliary, count_output, classes,
                              class_weights, self.progress(feedback), errors, error_output,
                              subsets, error_stacks,
                              self.parameterAsBool(parameters, "INVERSE_VARIANCE", context))
        for s in summary:
            feedback.pushInfo(f"{s['interval']}: {s['stacks']} stack(s), fused on "
                              f"{100 * s['valid_share']:.1f} % of pixels, {s['mean_sources']:.2f} "
                              "contributing on average")
        names = [os.path.basename(p) for p in sources + ([auxiliary] if auxiliary else [])]
        shares = overall_shares(summary)
        if shares:
            feedback.pushInfo("Share of the fused values: " + ", ".join(
                f"{n} {100 * v:.1f} %" for n, v in zip(names, shares)))
        results = {"OUTPUT": output}
        if count_output:
            results["OUTPUT_COUNT"] = count_output
        if error_output:
            results["OUTPUT_ERROR"] = error_output
        return results

    def weights(self, parameters, context, count, feedback):
        """The normalised weights: from WEIGHTS_TABLE when given, else from WEIGHTS."""
        table = self.parameterAsSource(parameters, "WEIGHTS_TABLE", context)
        if table is None:
            text = self.parameterAsString(parameters, "WEIGHTS", context)
            if not text.strip():
                raise QgsProcessingException("WEIGHTS: give the weights, or the calibration "
                                             "table as WEIGHTS_TABLE.")
            return parse_weights(text, count)
        names = table.fields().names()
        rows = [dict(zip(names, f.attributes())) for f in table.getFeatures()]
        calibration = parse_calibration(rows, "WEIGHTS_TABLE")
        text = ",".join(repr(fit.weight) for fit in calibration.sources)
        feedback.pushInfo("Weights from WEIGHTS_TABLE (" + ", ".join(
            f"{fit.source} {fit.weight:.4f}" for fit in calibration.sources) + ").")
        return parse_weights(text, count, "WEIGHTS_TABLE")
