"""Month-resolved trends: the trend of each calendar month's series over the years."""

from qgis.core import (QgsProcessingParameterFeatureSource, QgsProcessingParameterRasterDestination,
                       QgsProcessingParameterRasterLayer)

from ..compat import TYPE_VECTOR_POLYGON
from ..core.trends.glaciers import MONTHLY_COLUMNS, monthly_trend_table
from ..core.trends.seasonal import MONTHLY_METHODS, monthly_trend_raster
from ._trend_common import (COMMON_HELP, RASTERS_ON_CLUSTER_HELP, add_glaciers,
                            add_method_parameters, method_options)
from .base import SCHEDULER_HELP, GlacierAlgorithm
from .styles import PVALUE, TREND


class MonthlyTrendAlgorithm(GlacierAlgorithm):
    ALG_ID = "monthlytrend"
    DISPLAY_NAME = "Month-resolved trends"
    OUTPUT_KINDS = {"OUTPUT_RASTER": TREND, "OUTPUT_P_RASTER": PVALUE}
    GROUP = "trends"
    HELP = (
        "Trend of each calendar month's velocity over the years (every January, every February, "
        "...), m/yr per decade with confidence interval and p-value: does the summer speed-up "
        "change differently from the winter flow? A table for the mean speed of a masked area "
        "and/or of each glacier (the whole raster when no polygons are given), and optionally "
        "12-band rasters of the per-pixel trend and p-value (band 1 = January).\n\n"
        "Why this test: values of the same calendar month a year apart are nearly independent "
        "(monthly AR(1) noise with phi = 0.6 correlates by 0.6^12 = 0.002 after a year) and carry "
        "no seasonal cycle, so OLS with a Student t test, or Theil-Sen with the Mann-Kendall test, "
        "hold their level on each month's series without further correction. Each month's series "
        "has only one value per year, so trends need MIN_YEARS years with that month observed; "
        "with ten years they are noisier than the annual trend of the Pixel trends and Glacier "
        "trends algorithms.\n\n"
    ) + RASTERS_ON_CLUSTER_HELP
    METHODS = tuple(MONTHLY_METHODS)
    PARAM_HELP = dict(
        COMMON_HELP,
        DASK_SCHEDULER=SCHEDULER_HELP,
        METHOD="ols = " + MONTHLY_METHODS["ols"] + "; sen = " + MONTHLY_METHODS["sen"] + ".",
        MIN_YEARS="minimum number of years with the calendar month observed for its trend "
                  "(at least 3).",
        GLACIERS="glacier polygons: one set of rows per glacier (optional).",
        MASK="polygons treated as one area (e.g. all glaciers of a region); optional.",
        MIN_AREA="glaciers smaller than this area (km²) are left out (0 keeps all).",
        OUTPUT_TABLE="rows per region and month: id, name, month, month_name, n_years, v_mean "
                     "(m/yr), trend, ci_low, ci_high (m/yr per decade), p, trend_pct.",
        OUTPUT_RASTER="12-band raster of per-pixel trends, m/yr per decade (optional).",
        OUTPUT_P_RASTER="12-band raster of per-pixel p-values (optional).",
    )

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", "Velocity stack"))
        add_glaciers(self, optional=True, min_area=0.0)
        self.addParameter(QgsProcessingParameterFeatureSource(
            "MASK", "Mask polygons (one area)", [TYPE_VECTOR_POLYGON], optional=True))
        add_method_parameters(self, self.METHODS, "ols", min_months=False,
                              descriptions=MONTHLY_METHODS)
        self.add_table("OUTPUT_TABLE", "Month-resolved trends")
        self.addParameter(QgsProcessingParameterRasterDestination(
            "OUTPUT_RASTER", "Per-pixel month trends (12 bands)", optional=True,
            createByDefault=False))
        self.addParameter(QgsProcessingParameterRasterDestination(
            "OUTPUT_P_RASTER", "Per-pixel month p-values (12 bands)", optional=True,
            createByDefault=False))
        self.add_scheduler()

    def process(self, parameters, context, feedback):
        stack = self.raster_path(parameters, "INPUT", context)
        glaciers = self.vector_path(parameters, "GLACIERS", context, feedback, required=False)
        mask = self.vector_path(parameters, "MASK", context, feedback, required=False)
        options = method_options(self, parameters, context, self.METHODS, min_months=False)
        progress = self.progress(feedback)
        raster = self.optional_output(parameters, "OUTPUT_RASTER", context)
        p_raster = self.optional_output(parameters, "OUTPUT_P_RASTER", context)
        if p_raster and not raster:  # checked before the (long) table pass
            raise ValueError("OUTPUT_P_RASTER needs OUTPUT_RASTER as well.")
        split = 0.5 if raster else 1.0
        rows = monthly_trend_table(stack, glaciers, mask,
                                   min_area=self.parameterAsDouble(parameters, "MIN_AREA", context),
                                   progress=progress.sub(0.0, split), **options)
        results = {"OUTPUT_TABLE": self.write_table(parameters, "OUTPUT_TABLE", context, rows,
                                                    MONTHLY_COLUMNS)}
        if raster:
            monthly_trend_raster(stack, raster, p_output=p_raster,
                                 progress=progress.sub(split, 1.0),
                                 scheduler=self.parameterAsString(parameters, "DASK_SCHEDULER",
                                                                  context), **options)
            results["OUTPUT_RASTER"] = raster
            if p_raster:
                results["OUTPUT_P_RASTER"] = p_raster
        return results
