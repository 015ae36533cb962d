"""Parameters and help shared by the trend algorithms (not an algorithm: skipped by discovery)."""

from qgis.core import (QgsProcessingParameterEnum, QgsProcessingParameterFeatureSource,
                       QgsProcessingParameterNumber, QgsProcessingParameterRasterLayer)

from ..compat import NUMBER_DOUBLE, NUMBER_INTEGER, TYPE_VECTOR_POLYGON
from ..core.io.pixel_series import error_stack_path
from ..core.io.products import read_stack_info
from ..core.trends.pixel import (DEFAULT_METHOD, DEFAULT_MIN_MONTHS, DEFAULT_MIN_YEARS, METHODS,
                           USER_METHODS)

SIGNIFICANCE_HELP = (
    "Why this significance test: monthly velocities carry a seasonal cycle and autocorrelated "
    "noise, but least squares on the monthly values treats a decade as 120 independent values, so "
    "its p-values are wrong both ways (it misses real trends when the seasonal cycle dominates, "
    "and flags trend-free series far too often when the autocorrelated noise dominates; see the "
    "benchmark). The default, OLS on annual means with a Student t test, first averages each "
    "year's valid months after removing the pixel's mean seasonal cycle: this removes the cycle "
    "and nearly all of the month-to-month correlation, and on 20,000 simulated trend-free series "
    "(AR(1) noise, phi = 0.6, 30 % seasonal cycle) it declares 6.7 % significant at alpha = 0.05. "
    "Theil-Sen with the Mann-Kendall test on the annual means is robust to a year spoiled by "
    "outliers (6.0 %), the correlated seasonal Mann-Kendall test (Hirsch & Slack 1984) compares "
    "each calendar month across the years and accounts for the correlation between months (5.3 %, "
    "slower, needs about ten years). Rank tests on ten years cannot reach p-values below ~1e-4, "
    "which limits what survives the false-discovery control over many pixels. A year counts when "
    "it has at least MIN_MONTHS valid calendar months; a trend needs MIN_YEARS counting years. "
    "Trends are m/yr per decade; the confidence interval is at level 1 - ALPHA."
)

ERROR_HELP = (
    "Per-pixel errors: when the stack has an error stack (the 1 sigma of every band, m/yr; given "
    "as INPUT_ERROR, or named by the stack's ERROR_STACK metadata or found beside it as "
    "<name>_error.tif, as the monthly stacks, the inversion, the fusion and the gap filling "
    "write them), the fits are weighted by 1/sigma²: each year's annual mean (and the seasonal "
    "cycle removed first) weighs its months by their errors, and the trend is a weighted least "
    "squares fit of the annual means. Its significance stays honest: the t test scales the "
    "slope's error by the weighted residuals, and the variability the stated errors miss "
    "(changes from year to year that the pairs do not see) is estimated per pixel and added to "
    "the annual means' errors, so understated errors cannot make a trend significant "
    "(simulated trend-free series: 4.9-5.6 % significant at alpha = 0.05 with complete errors, "
    "5.5-6.3 % when they miss 8 m/yr of yearly variability). The trend's own 1 sigma (m/yr per "
    "decade) is propagated from the errors; on simulated series with errors of 2-60 m/yr the "
    "weighted trend's error was 74 % below the unweighted one's and the truth lay within 1.96 "
    "sigma of it for 95.4 % of the series. The rank methods (sen_annual, seasonal_mk) use the "
    "weighted annual means but no weights in their tests."
)

METHOD_HELP = ("significance test and slope estimator: " + "; ".join(
    f"{k} = {METHODS[k]}" for k in USER_METHODS) + f" (default {DEFAULT_METHOD}).")

COMMON_HELP = {
    "INPUT": "monthly velocity stack (one band per time step, band descriptions START/END, m/yr).",
    "METHOD": METHOD_HELP,
    "ALPHA": "significance level (default 0.05); the confidence intervals are at 1 - ALPHA.",
    "MIN_YEARS": "minimum number of counting years for a trend (at least 3).",
    "MIN_MONTHS": "a year counts when it has at least this many valid calendar months "
                  "(default 4: the seasonal cycle is removed first, so partial years are not "
                  "biased, only noisier).",
    "GLACIERS": "glacier outline polygons (any CRS; an id/RGIId and a name field are used when "
                "present).",
    "MIN_AREA": "glaciers smaller than this area (km²) are left out.",
    "INPUT_ERROR": "error stack of INPUT (1 sigma per band, m/yr, same grid and bands; "
                   "optional): weights 1/sigma² and the trend's sigma. By default the stack's "
                   "ERROR_STACK metadata or <name>_error.tif beside it, when present.",
}


def method_labels(methods, descriptions=METHODS):
    """Readable choices for the METHOD enum, e.g. 'OLS on annual means, Student t test
    (ols_annual)': the enum's values (indices in ``methods``) stay what scripts pass."""
    return [f"{descriptions[k][:1].upper()}{descriptions[k][1:]} ({k})" for k in methods]


def add_method_parameters(alg, methods=USER_METHODS, default=DEFAULT_METHOD, min_months=True,
                          descriptions=METHODS):
    """METHOD, ALPHA, MIN_YEARS (and MIN_MONTHS) parameters."""
    alg.addParameter(QgsProcessingParameterEnum(
        "METHOD", "Trend method", options=method_labels(methods, descriptions),
        defaultValue=list(methods).index(default)))
    alg.addParameter(QgsProcessingParameterNumber(
        "ALPHA", "Significance level", NUMBER_DOUBLE, 0.05, minValue=0.001, maxValue=0.49))
    alg.addParameter(QgsProcessingParameterNumber(
        "MIN_YEARS", "Minimum number of valid years", NUMBER_INTEGER, DEFAULT_MIN_YEARS,
        minValue=3))
    if min_months:
        alg.addParameter(QgsProcessingParameterNumber(
            "MIN_MONTHS", "Minimum valid months for a year to count", NUMBER_INTEGER,
            DEFAULT_MIN_MONTHS, minValue=1, maxValue=12))


def method_options(alg, parameters, context, methods=USER_METHODS, min_months=True):
    """``dict(method, alpha, min_years[, min_months])`` from the parameters."""
    out = {"method": list(methods)[alg.parameterAsEnum(parameters, "METHOD", context)],
           "alpha": alg.parameterAsDouble(parameters, "ALPHA", context),
           "min_years": alg.parameterAsInt(parameters, "MIN_YEARS", context)}
    if min_months:
        out["min_months"] = alg.parameterAsInt(parameters, "MIN_MONTHS", context)
    return out


def add_glaciers(alg, optional=False, min_area=1.0):
    """GLACIERS polygons and MIN_AREA (km²)."""
    alg.addParameter(QgsProcessingParameterFeatureSource(
        "GLACIERS", "Glacier polygons", [TYPE_VECTOR_POLYGON], optional=optional))
    alg.addParameter(QgsProcessingParameterNumber(
        "MIN_AREA", "Minimum glacier area (km²)", NUMBER_DOUBLE, min_area, minValue=0.0))



def add_error_input(alg):
    """INPUT_ERROR: the stack's error stack (optional)."""
    alg.addParameter(QgsProcessingParameterRasterLayer(
        "INPUT_ERROR", "Error stack (1 sigma per band)", optional=True))


def error_input(alg, parameters, context, stack, feedback):
    """The error stack of ``stack``: INPUT_ERROR, else the one found by name beside it (logged),
    else None."""
    given = alg.raster_path(parameters, "INPUT_ERROR", context, required=False)
    if given:
        return given
    found = error_stack_path(stack, read_stack_info(stack))
    if found:
        feedback.pushInfo(f"Error stack found beside the stack: {found} (weights 1/sigma²).")
    return found
