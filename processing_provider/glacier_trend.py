"""Per-glacier decadal trends with significance classes and their summary shares."""

from qgis.core import QgsProcessingParameterNumber, QgsProcessingParameterRasterLayer

from ..compat import NUMBER_DOUBLE
from ..core.trends.glaciers import (DEFAULT_MIN_COVERAGE, SUMMARY_COLUMNS, TREND_COLUMNS,
                                  glacier_trends)
from ._trend_common import (COMMON_HELP, ERROR_HELP, SIGNIFICANCE_HELP, add_error_input,
                            add_glaciers, add_method_parameters, error_input, method_options)
from .base import GlacierAlgorithm


class GlacierTrendAlgorithm(GlacierAlgorithm):
    ALG_ID = "glaciertrend"
    DISPLAY_NAME = "Glacier trends"
    GROUP = "trends"
    HELP = (
        "Decadal trend of each glacier's mean velocity (m/yr per decade) with its confidence "
        "interval, p-value and class at ALPHA: 'significantly accelerating', 'significantly "
        "decelerating' or 'no significant trend'; plus the shares of the classes over all glaciers "
        "and by aspect sector (N 315-45°, E 45-135°, S 135-225°, W 225-315°).\n\n"
        "A glacier's series is the mean speed over its pixels in each band. Gaps hide different "
        "parts of a glacier in different months and its centre is faster than its margins, so the "
        "visible pixels are scaled to the whole glacier by their usual share of its flow (ratio "
        "estimator); a band that shows less than MIN_COVERAGE of the glacier is left out. The mean "
        "aspect is the circular mean of the DEM's aspect (downhill bearing) over the glacier, or "
        "the polygons' 'aspect' field when no DEM is given. The table also gives q_fdr, the "
        "p-value adjusted for testing many glaciers (Benjamini-Hochberg); the classes use p as the "
        "paper does.\n\n"
    ) + SIGNIFICANCE_HELP + "\n\n" + ERROR_HELP + (
        " A glacier's series then has the error of its ratio estimate (the pixels' errors taken "
        "as independent), and trend_sigma is the trend's 1 sigma.")
    PARAM_HELP = dict(
        COMMON_HELP,
        DEM="elevation model for the mean aspect (optional; any grid and CRS, resampled).",
        MIN_COVERAGE="share of a glacier's pixels a band must show to enter its series (0-1).",
        OUTPUT_TABLE="one row per glacier: id, name, area_km2, n_pixels, aspect_deg, "
                     "aspect_sector, v_mean (m/yr), v_first/v_last (annual means of the first/"
                     "last valid year), year_first, year_last, n_years, coverage, trend, ci_low, "
                     "ci_high (m/yr per decade), p, q_fdr, trend_pct (% of v_mean per decade), "
                     "trend_ols, trend_sen, class, trend_sigma (m/yr per decade, with an error "
                     "stack).",
        OUTPUT_SUMMARY="rows 'all', 'N', 'E', 'S', 'W': number of glaciers per class and shares "
                       "in %.",
    )

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", "Velocity stack"))
        add_error_input(self)
        add_glaciers(self)
        self.addParameter(QgsProcessingParameterRasterLayer("DEM", "DEM", optional=True))
        add_method_parameters(self)
        self.addParameter(QgsProcessingParameterNumber(
            "MIN_COVERAGE", "Minimum glacier coverage of a band", NUMBER_DOUBLE,
            DEFAULT_MIN_COVERAGE, minValue=0.0, maxValue=1.0))
        self.add_table("OUTPUT_TABLE", "Glacier trends")
        self.add_table("OUTPUT_SUMMARY", "Trend class shares")

    def process(self, parameters, context, feedback):
        stack = self.raster_path(parameters, "INPUT", context)
        glaciers = self.vector_path(parameters, "GLACIERS", context, feedback)
        dem = self.raster_path(parameters, "DEM", context, required=False)
        rows, summary, _ = glacier_trends(
            stack, glaciers, dem, self.parameterAsDouble(parameters, "MIN_AREA", context),
            min_coverage=self.parameterAsDouble(parameters, "MIN_COVERAGE", context),
            progress=self.progress(feedback),
            error=error_input(self, parameters, context, stack, feedback),
            **method_options(self, parameters, context))
        all_row = summary[0]
        feedback.pushInfo(
            f"{len(rows)} glaciers: {all_row['n_accelerating']} significantly accelerating, "
            f"{all_row['n_decelerating']} significantly decelerating, {all_row['n_no_trend']} "
            "without significant trend.")
        return {"OUTPUT_TABLE": self.write_table(parameters, "OUTPUT_TABLE", context, rows,
                                                 TREND_COLUMNS),
                "OUTPUT_SUMMARY": self.write_table(parameters, "OUTPUT_SUMMARY", context, summary,
                                                   SUMMARY_COLUMNS)}
