"""The seasonal cycle: mean velocity per calendar month and the anomalies from it."""

from qgis.core import (QgsProcessingParameterFeatureSource, QgsProcessingParameterRasterDestination,
                       QgsProcessingParameterRasterLayer)

from ..compat import TYPE_VECTOR_POLYGON
from ..core.trends.glaciers import SEASONAL_COLUMNS, seasonal_cycle_table
from ..core.trends.seasonal import seasonal_cycle_rasters
from ._trend_common import COMMON_HELP, RASTERS_ON_CLUSTER_HELP, add_glaciers
from .base import SCHEDULER_HELP, GlacierAlgorithm
from .styles import ANOMALY


class SeasonalCycleAlgorithm(GlacierAlgorithm):
    ALG_ID = "seasonalcycle"
    DISPLAY_NAME = "Seasonal cycle"
    OUTPUT_KINDS = {"OUTPUT_ANOMALIES": ANOMALY}  # OUTPUT_MEAN: a velocity, by default
    GROUP = "trends"
    HELP = (
        "The intra-annual velocity cycle of a monthly stack: the mean velocity of each calendar "
        "month over the years (m/yr), its interannual spread, and the anomalies (value minus the "
        "mean of its calendar month). A table for the mean speed of a masked area and/or of each "
        "glacier (the whole raster when no polygons are given); per pixel, optionally, a 12-band "
        "raster of monthly means (band 1 = January) and an anomaly stack with the input's bands "
        "and date intervals. Bands are assigned to the calendar month of their middle date; "
        "several bands in one month are averaged first. The monthly means are simple means over "
        "the years with data (a month observed only in early years of a trending glacier carries "
        "that period's level).\n\n"
    ) + RASTERS_ON_CLUSTER_HELP
    PARAM_HELP = dict(
        COMMON_HELP,
        DASK_SCHEDULER=SCHEDULER_HELP,
        GLACIERS="glacier polygons: one set of rows per glacier (optional).",
        MASK="polygons treated as one area (optional).",
        MIN_AREA="glaciers smaller than this area (km²) are left out (0 keeps all).",
        OUTPUT_TABLE="rows per region and month: id, name, month, month_name, n_years, v_mean "
                     "and v_std (m/yr, mean and interannual standard deviation), anomaly (m/yr, "
                     "month mean minus the mean of the twelve) and anomaly_pct.",
        OUTPUT_MEAN="12-band raster of per-pixel monthly means, m/yr (optional).",
        OUTPUT_ANOMALIES="stack of per-pixel anomalies, m/yr, same bands as INPUT (optional).",
    )

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", "Velocity stack"))
        add_glaciers(self, optional=True, min_area=0.0)
        self.addParameter(QgsProcessingParameterFeatureSource(
            "MASK", "Mask polygons (one area)", [TYPE_VECTOR_POLYGON], optional=True))
        self.add_table("OUTPUT_TABLE", "Seasonal cycle")
        self.addParameter(QgsProcessingParameterRasterDestination(
            "OUTPUT_MEAN", "Monthly means (12 bands)", optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterRasterDestination(
            "OUTPUT_ANOMALIES", "Anomaly stack", optional=True, createByDefault=False))
        self.add_scheduler()

    def process(self, parameters, context, feedback):
        stack = self.raster_path(parameters, "INPUT", context)
        glaciers = self.vector_path(parameters, "GLACIERS", context, feedback, required=False)
        mask = self.vector_path(parameters, "MASK", context, feedback, required=False)
        outputs = {name: path for name in ("OUTPUT_MEAN", "OUTPUT_ANOMALIES")
                   if (path := self.optional_output(parameters, name, context))}
        progress = self.progress(feedback)
        split = 0.3 if outputs else 1.0
        rows, _, _ = seasonal_cycle_table(
            stack, glaciers, mask, self.parameterAsDouble(parameters, "MIN_AREA", context),
            progress.sub(0.0, split))
        results = {"OUTPUT_TABLE": self.write_table(parameters, "OUTPUT_TABLE", context, rows,
                                                    SEASONAL_COLUMNS)}
        if outputs:
            seasonal_cycle_rasters(stack, outputs.get("OUTPUT_MEAN"),
                                   outputs.get("OUTPUT_ANOMALIES"), progress.sub(split, 1.0),
                                   scheduler=self.parameterAsString(parameters, "DASK_SCHEDULER",
                                                                    context))
            results.update(outputs)
        return results
