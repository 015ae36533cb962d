"""Temporal robust filter of a monthly speed stack (per pixel and calendar year)."""

from qgis.core import (QgsProcessingOutputNumber, QgsProcessingParameterNumber,
                       QgsProcessingParameterRasterDestination, QgsProcessingParameterRasterLayer)

from ..compat import NUMBER_DOUBLE
from ..core.errors import InputError
from ..core.io.pixel_series import default_error_path, error_stack_path
from ..core.io.products import read_stack_info
from ..core.timeseries.temporal import DEFAULT_ALPHA, DEFAULT_LOWER, DEFAULT_UPPER, temporal_filter_file
from .base import GlacierAlgorithm


class TemporalFilterAlgorithm(GlacierAlgorithm):
    ALG_ID = "temporalfilter"
    DISPLAY_NAME = "Temporal robust filter"
    GROUP = "timeseries"
    HELP = (
        "Removes outliers in time from a speed stack (v, m/yr). For every pixel and calendar year "
        "the reference is the α-trimmed mean of that year's values: the ⌊α·n⌋ lowest and ⌊α·n⌋ "
        f"highest of its n valid values are dropped and the rest averaged (α = {DEFAULT_ALPHA:g} "
        "keeps the middle third). Values above UPPER × reference or below LOWER × reference "
        f"(default {DEFAULT_UPPER:g} and {DEFAULT_LOWER:g}) become NaN. A band's year is that of "
        "its interval's middle.\n\n"
        "On stable ground the speed is noise around a small bias, so ratios to the reference are "
        "large by chance and the test removes many correct values there; MIN_REFERENCE (m/yr) "
        "leaves pixels whose yearly reference is slower untested (default 0: every pixel is "
        "tested). The vx and vy stacks of the same months (INPUT_VX, INPUT_VY) get the same "
        "removals when given.\n\n"
        "Per-pixel errors: when the input has an error stack (named by its ERROR_STACK metadata "
        "or <name>_error.tif beside it, as Monthly stacks write), the filtered stack gets its own, "
        "OUTPUT_ERROR or <output name>_error.tif beside it, linked by ERROR_STACK: a kept value "
        "keeps its 1 σ (m/yr), a removed one becomes NaN. Fuse velocity stacks reads it."
    )
    PARAM_HELP = {
        "INPUT": "monthly speed stack (QUANTITY v, m/yr).",
        "ALPHA": f"share trimmed from each end before averaging (0-0.5, default {DEFAULT_ALPHA:g}).",
        "LOWER": f"values below LOWER × reference are removed (default {DEFAULT_LOWER:g}).",
        "UPPER": f"values above UPPER × reference are removed (default {DEFAULT_UPPER:g}).",
        "MIN_REFERENCE": "pixel-years whose reference is slower are not tested, m/yr (default 0).",
        "INPUT_VX": "vx stack of the same grid and months (optional), filtered alike.",
        "INPUT_VY": "vy stack of the same grid and months (optional), filtered alike.",
        "OUTPUT": "filtered speed stack (m/yr).",
        "OUTPUT_VX": "filtered vx stack (with INPUT_VX).",
        "OUTPUT_VY": "filtered vy stack (with INPUT_VY).",
        "OUTPUT_ERROR": "1 σ stack of the filtered speeds (m/yr) when the input has one; default "
                        "<output name>_error.tif beside the output.",
        "REMOVED": "number of values removed.",
        "VALID_BEFORE": "number of valid values before filtering.",
    }

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", "Speed stack"))
        self.addParameter(QgsProcessingParameterNumber("ALPHA", "α (trimmed share per end)",
                                                       NUMBER_DOUBLE, DEFAULT_ALPHA, minValue=0,
                                                       maxValue=0.49))
        self.addParameter(QgsProcessingParameterNumber("LOWER", "Lower bound (× reference)",
                                                       NUMBER_DOUBLE, DEFAULT_LOWER, minValue=0,
                                                       maxValue=1))
        self.addParameter(QgsProcessingParameterNumber("UPPER", "Upper bound (× reference)",
                                                       NUMBER_DOUBLE, DEFAULT_UPPER, minValue=1))
        self.addParameter(QgsProcessingParameterNumber("MIN_REFERENCE",
                                                       "Minimum reference speed (m/yr)",
                                                       NUMBER_DOUBLE, 0.0, minValue=0))
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT_VX", "vx stack", optional=True))
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT_VY", "vy stack", optional=True))
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", "Filtered speed stack"))
        self.addParameter(QgsProcessingParameterRasterDestination(
            "OUTPUT_VX", "Filtered vx stack", optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterRasterDestination(
            "OUTPUT_VY", "Filtered vy stack", optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterRasterDestination(
            "OUTPUT_ERROR", "Filtered speed error stack (1 sigma)", optional=True,
            createByDefault=False))
        self.addOutput(QgsProcessingOutputNumber("REMOVED", "Values removed"))
        self.addOutput(QgsProcessingOutputNumber("VALID_BEFORE", "Valid values before"))

    def process(self, parameters, context, feedback):
        path = self.raster_path(parameters, "INPUT", context)
        output = self.parameterAsOutputLayer(parameters, "OUTPUT", context)
        companions, results = [], {"OUTPUT": output}
        for src, dst in (("INPUT_VX", "OUTPUT_VX"), ("INPUT_VY", "OUTPUT_VY")):
            cin = self.raster_path(parameters, src, context, required=False)
            if cin:
                if not parameters.get(dst):
                    raise InputError(f"{dst}: give an output for the filtered {src} stack.")
                cout = self.parameterAsOutputLayer(parameters, dst, context)
                companions.append((cin, cout))
                results[dst] = cout
        error_output = None
        if error_stack_path(path, read_stack_info(path)):
            error_output = (self.parameterAsOutputLayer(parameters, "OUTPUT_ERROR", context)
                            if parameters.get("OUTPUT_ERROR") else default_error_path(output))
            results["OUTPUT_ERROR"] = error_output
        elif parameters.get("OUTPUT_ERROR"):
            feedback.pushWarning(f"OUTPUT_ERROR: '{path}' has no error stack (ERROR_STACK metadata "
                                 "or <name>_error.tif beside it): none is written.")
        removed, valid = temporal_filter_file(
            path, output, self.parameterAsDouble(parameters, "ALPHA", context),
            self.parameterAsDouble(parameters, "LOWER", context),
            self.parameterAsDouble(parameters, "UPPER", context),
            self.parameterAsDouble(parameters, "MIN_REFERENCE", context), companions,
            progress=self.progress(feedback), error_output=error_output)
        feedback.pushInfo(f"Removed {removed} of {valid} valid values "
                          f"({100 * removed / max(valid, 1):.2f} %).")
        results.update(REMOVED=removed, VALID_BEFORE=valid)
        return results
