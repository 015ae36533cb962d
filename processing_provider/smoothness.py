"""Spatial smoothness of velocity stacks inside glacier polygons."""

from qgis.core import (QgsProcessingParameterEnum, QgsProcessingParameterFeatureSource,
                       QgsProcessingParameterMultipleLayers)

from ..compat import TYPE_RASTER, TYPE_VECTOR_POLYGON
from ..core.uncertainty.quality_metrics import SMOOTHNESS_COLUMNS, smoothness
from ..core.uncertainty.stable_ground import open_sources
from .base import GlacierAlgorithm

WINDOWS = [3, 5]


class SmoothnessAlgorithm(GlacierAlgorithm):
    ALG_ID = "smoothness"
    DISPLAY_NAME = "Smoothness"
    GROUP = "uncertainty"
    HELP = (
        "How noisy is each band? Inside the glacier polygons (the whole grid without them), per "
        "band: the spatial variance of the velocities (m²/yr², the paper's smoothness measure; it "
        "includes the real velocity gradient along and across the glacier) and a noise measure far "
        "less sensitive to that gradient: the variance of the difference between each pixel and "
        "the median of its 3×3 (or 5×5) neighbourhood (NaN-aware; only pixels inside the polygons "
        "enter the median, so the glacier margin is not counted as noise). noise_std = "
        "√(residual_var / c) is the standard deviation of white noise that would give this "
        "residual (c = 0.943 for 3×3, 0.980 for 5×5), and noise_nmad its robust counterpart, NMAD "
        "of the residuals / c' (c' = 0.863, 0.954): outliers inflate noise_std but hardly "
        "noise_nmad; spatially correlated noise reads lower in both. A row with band 0 gives the "
        "mean over bands. Several stacks give one comparison table; each is assessed on its own "
        "grid."
    )
    PARAM_HELP = {
        "INPUT": "velocity stacks (or pair products / velocity rasters) to compare.",
        "GLACIERS": "glacier polygons: the area assessed (whole grid when empty).",
        "WINDOW": "neighbourhood of the local median: 3×3 or 5×5 pixels.",
        "OUTPUT_TABLE": "table: product, band (0 = mean over bands), interval, n, mean (m/yr), "
                        "spatial_var and residual_var (m²/yr²), noise_std and noise_nmad (m/yr).",
    }

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterMultipleLayers(
            "INPUT", "Velocity stacks", TYPE_RASTER))
        self.addParameter(QgsProcessingParameterFeatureSource(
            "GLACIERS", "Glacier polygons", [TYPE_VECTOR_POLYGON], optional=True))
        self.addParameter(QgsProcessingParameterEnum(
            "WINDOW", "Local median window", options=["3×3", "5×5"], defaultValue=0))
        self.add_table("OUTPUT_TABLE", "Smoothness per band")

    def process(self, parameters, context, feedback):
        sources = open_sources(self.raster_paths(parameters, "INPUT", context))
        glaciers = self.vector_path(parameters, "GLACIERS", context, feedback, required=False)
        window = WINDOWS[self.parameterAsEnum(parameters, "WINDOW", context)]
        rows = smoothness(sources, glaciers, window, self.progress(feedback))
        for r in rows:
            if r["band"] == 0:
                feedback.pushInfo(f"{r['product']}: spatial variance {r['spatial_var']:.1f} "
                                  f"m²/yr², residual variance {r['residual_var']:.1f} m²/yr², "
                                  f"noise {r['noise_std']:.2f} (robust {r['noise_nmad']:.2f}) m/yr "
                                  "(mean over bands)")
        return {"OUTPUT_TABLE": self.write_table(parameters, "OUTPUT_TABLE", context, rows,
                                                 SMOOTHNESS_COLUMNS)}
