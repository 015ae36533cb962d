"""Coverage and continuity of velocity stacks inside glacier polygons."""

from qgis.core import (QgsProcessingParameterFeatureSource,
                       QgsProcessingParameterMultipleLayers, QgsProcessingParameterRasterDestination)

from ..compat import TYPE_RASTER, TYPE_VECTOR_POLYGON
from ..core.uncertainty.quality_metrics import COVERAGE_COLUMNS, coverage
from ..core.uncertainty.stable_ground import open_sources
from .base import GlacierAlgorithm
from .styles import COUNT


class CoverageAlgorithm(GlacierAlgorithm):
    ALG_ID = "coverage"
    DISPLAY_NAME = "Coverage and continuity"
    OUTPUT_KINDS = {"OUTPUT": COUNT}
    GROUP = "uncertainty"
    HELP = (
        "How much of the glaciers does each stack see? Inside the glacier polygons (the whole grid "
        "without them), the table gives per band the valid pixels, the mask pixels and their ratio "
        "(0-1), then a row with band 0 for the whole stack (valid pixel-bands over mask pixels × "
        "bands): run it on the sensor stacks and on the fused stack to compare coverage before and "
        "after fusion.\n\n"
        "The raster gives, per pixel inside the mask, the number of valid bands (months) of each "
        "stack, one band per input stack (NaN outside the mask). All stacks are assessed on the "
        "grid of the first; others are resampled onto it with nearest neighbour. Memory holds one "
        "strip of one band."
    )
    PARAM_HELP = {
        "INPUT": "velocity stacks (or pair products / velocity rasters) to compare.",
        "GLACIERS": "glacier polygons: the area assessed (whole grid when empty).",
        "OUTPUT_TABLE": "table: product, band (0 = whole stack), interval, valid_pixels, "
                        "mask_pixels, valid_ratio (0-1).",
        "OUTPUT": "raster of valid bands per pixel, one band per input stack (count; NaN outside "
                  "the glaciers).",
    }

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterMultipleLayers(
            "INPUT", "Velocity stacks", TYPE_RASTER))
        self.addParameter(QgsProcessingParameterFeatureSource(
            "GLACIERS", "Glacier polygons", [TYPE_VECTOR_POLYGON], optional=True))
        self.add_table("OUTPUT_TABLE", "Coverage per band")
        self.addParameter(QgsProcessingParameterRasterDestination(
            "OUTPUT", "Valid bands per pixel", optional=True, createByDefault=True))

    def process(self, parameters, context, feedback):
        sources = open_sources(self.raster_paths(parameters, "INPUT", context))
        glaciers = self.vector_path(parameters, "GLACIERS", context, feedback, required=False)
        output = self.parameterAsOutputLayer(parameters, "OUTPUT", context) or None
        rows = coverage(sources, glaciers, output, self.progress(feedback))
        for r in rows:
            if r["band"] == 0:
                feedback.pushInfo(f"{r['product']}: {100 * r['valid_ratio']:.1f} % of the "
                                  f"glacier pixel-bands valid ({r['interval']})")
        results = {"OUTPUT_TABLE": self.write_table(parameters, "OUTPUT_TABLE", context, rows,
                                                    COVERAGE_COLUMNS)}
        if output:
            results["OUTPUT"] = output
        return results
