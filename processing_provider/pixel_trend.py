"""Pixel-wise decadal trends of a velocity stack with an honest significance mask."""

from qgis.core import (QgsProcessingOutputNumber, QgsProcessingParameterRasterDestination,
                       QgsProcessingParameterRasterLayer)

from ..core.trends.pixel import pixel_trends
from ._trend_common import (COMMON_HELP, ERROR_HELP, SIGNIFICANCE_HELP, add_error_input,
                            add_method_parameters, error_input, method_options)
from .base import SCHEDULER_HELP, GlacierAlgorithm
from .styles import COUNT, ERROR, PVALUE, SIGNIFICANCE, TREND

# output parameter -> key of core.trends.pixel.pixel_trends, description, created by default
OUTPUTS = (
    ("OUTPUT_TREND", "trend", "Trend (m/yr per decade)", True),
    ("OUTPUT_P", "p", "p-value", True),
    ("OUTPUT_SIGNIFICANT", "significant", "Significant after FDR (1/0)", True),
    ("OUTPUT_CI_LOW", "ci_low", "Trend confidence interval, lower bound", False),
    ("OUTPUT_CI_HIGH", "ci_high", "Trend confidence interval, upper bound", False),
    ("OUTPUT_TREND_OLS", "ols", "OLS trend of the annual means", False),
    ("OUTPUT_TREND_SEN", "sen", "Theil-Sen trend of the annual means", False),
    ("OUTPUT_N_YEARS", "n_years", "Number of valid years", False),
    ("OUTPUT_SIGMA", "sigma", "Trend error, 1 sigma (m/yr per decade)", False),
)


class PixelTrendAlgorithm(GlacierAlgorithm):
    ALG_ID = "pixeltrend"
    DISPLAY_NAME = "Pixel trends"
    OUTPUT_KINDS = {
        "OUTPUT_TREND": TREND, "OUTPUT_P": PVALUE, "OUTPUT_SIGNIFICANT": SIGNIFICANCE,
        "OUTPUT_CI_LOW": TREND, "OUTPUT_CI_HIGH": TREND, "OUTPUT_TREND_OLS": TREND,
        "OUTPUT_TREND_SEN": TREND, "OUTPUT_N_YEARS": COUNT, "OUTPUT_SIGMA": ERROR
    }
    GROUP = "trends"
    HELP = (
        "Decadal velocity trend of every pixel of a monthly velocity stack (m/yr per decade), its "
        "confidence interval and p-value, and a significance mask that controls the false "
        "discovery rate over the whole raster (Benjamini-Hochberg: among the pixels marked "
        "significant, at most a share ALPHA are expected to be false). The mask is 1 where "
        "significant, 0 where not, NoData where the pixel has fewer than MIN_YEARS valid years.\n\n"
    ) + SIGNIFICANCE_HELP + (
        "\n\nThe trend raster holds the chosen method's slope (OLS for ols_annual, Theil-Sen for "
        "sen_annual, seasonal Kendall slope for seasonal_mk); the OLS and Theil-Sen slopes of the "
        "annual means are optional outputs whatever the method. The stack is processed tile by "
        "tile (bounded memory).\n\n" + ERROR_HELP + " OUTPUT_SIGMA receives the trend's 1 "
        "sigma.\n\nWith DASK_SCHEDULER the tiles are computed on a Dask cluster, "
        "one tile per task, with the same results: the stack must then be on storage every "
        "worker sees under the same path; the outputs are written by this computer. Progress "
        "follows the finished tiles, and Cancel cancels the tiles not yet done."
    )
    PARAM_HELP = dict(
        COMMON_HELP,
        OUTPUT_TREND="trend of the chosen method, m/yr per decade.",
        OUTPUT_P="two-sided p-value of the chosen test (null: no trend).",
        OUTPUT_SIGNIFICANT="1 where significant after Benjamini-Hochberg FDR control at ALPHA, "
                           "0 where not, NoData where not computable.",
        OUTPUT_CI_LOW="lower bound of the 1 - ALPHA confidence interval of the trend (optional).",
        OUTPUT_CI_HIGH="upper bound of the 1 - ALPHA confidence interval of the trend (optional).",
        OUTPUT_TREND_OLS="OLS slope of the annual means, m/yr per decade (optional).",
        OUTPUT_TREND_SEN="Theil-Sen slope of the annual means, m/yr per decade (optional).",
        OUTPUT_N_YEARS="number of counting years per pixel (optional).",
        OUTPUT_SIGMA="the trend's 1 sigma, m/yr per decade, propagated from the error stack "
                     "(optional; needs an error stack).",
        DASK_SCHEDULER=SCHEDULER_HELP,
        N_COMPUTABLE="number of pixels with a trend.",
        N_SIGNIFICANT="number of pixels significant after FDR control.",
    )

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", "Velocity stack"))
        add_error_input(self)
        add_method_parameters(self)
        self.add_scheduler()
        for name, _, description, default in OUTPUTS:
            self.addParameter(QgsProcessingParameterRasterDestination(
                name, description, optional=not default, createByDefault=default))
        self.addOutput(QgsProcessingOutputNumber("N_COMPUTABLE", "Pixels with a trend"))
        self.addOutput(QgsProcessingOutputNumber("N_SIGNIFICANT", "Significant pixels"))

    def process(self, parameters, context, feedback):
        stack = self.raster_path(parameters, "INPUT", context)
        options = method_options(self, parameters, context)
        paths = {}
        for name, _, _, default in OUTPUTS:
            path = (self.parameterAsOutputLayer(parameters, name, context) if default
                    else self.optional_output(parameters, name, context))
            if path:
                paths[name] = path
        summary = pixel_trends(stack, {key: paths[name] for name, key, _, _ in OUTPUTS
                                       if name in paths}, progress=self.progress(feedback),
                               scheduler=self.parameterAsString(parameters, "DASK_SCHEDULER",
                                                                context),
                               error=error_input(self, parameters, context, stack, feedback),
                               **options)
        feedback.pushInfo(
            f"{summary['computable']} pixels with a trend, {summary['significant']} significant "
            f"after FDR control ({100 * summary['share_significant']:.1f} %; p <= "
            f"{summary['bh_p_threshold']:.2g}); method {summary['method']}"
            + (", weighted by 1/sigma²." if summary["weighted"] else "."))
        return dict(paths, N_COMPUTABLE=summary["computable"],
                    N_SIGNIFICANT=summary["significant"])
