"""Agreement of velocity products with a reference stack (e.g. UAV) in its footprint."""

from qgis.core import (QgsProcessingParameterMultipleLayers,
                       QgsProcessingParameterNumber, QgsProcessingParameterRasterLayer)

from ..compat import NUMBER_DOUBLE, TYPE_RASTER
from ..core.uncertainty.quality_metrics import AGREEMENT_COLUMNS, reference_agreement
from ..core.uncertainty.stable_ground import open_sources
from .base import GlacierAlgorithm


class ReferenceAgreementAlgorithm(GlacierAlgorithm):
    ALG_ID = "referenceagreement"
    DISPLAY_NAME = "Agreement with a reference"
    GROUP = "uncertainty"
    HELP = (
        "How close are the products to an independent reference (a UAV stack, or any stack)? Each "
        "reference band is matched with the product band that shares most days with it, provided "
        "the shared days are at least MIN_OVERLAP of the reference interval (ties: nearest middle "
        "date); e.g. a UAV survey of 2019-06-28/2019-07-30 matches the July 2019 band of a monthly "
        "stack. Each product is resampled onto the reference grid with nearest neighbour and "
        "compared on the reference's valid pixels. The table gives per product and reference band "
        "n, bias (mean of product − reference), RMSE, standard deviation, NMAD and E = √(SE² + "
        "bias²), all in m/yr; unmatched reference bands have n = 0, and a row with ref_band 0 "
        "pools every matched band of a product.\n\n"
        "Per-pixel errors: when a product comes with its 1 sigma (a stack's error stack, named by "
        "its ERROR_STACK metadata or found beside it as <name>_error.tif, or given in "
        "INPUT_ERROR; a pair product's error bands), the rows add mean_sigma (m/yr) and "
        "within_196, the share of the reference values within ±1.96 sigma of the product: the "
        "calibration check of the error (95 % for a calibrated error, when the reference's own "
        "error is small against it)."
    )
    PARAM_HELP = {
        "INPUT": "velocity stacks or pair products to assess (bands with date intervals).",
        "INPUT_ERROR": "optional per-pixel error stacks (1 sigma, m/yr) of the inputs that are "
                       "not pair products, one per such input in the same order; by default "
                       "found by ERROR_STACK metadata or beside each as <name>_error.tif.",
        "REFERENCE": "reference velocity stack (e.g. UAV), bands named START/END.",
        "MIN_OVERLAP": "least share (0-1) of a reference interval a product band must cover to be "
                       "matched with it.",
        "OUTPUT_TABLE": "table: product, ref_band (0 = all matched), ref_interval, band, interval, "
                        "overlap_days, n, bias, rmse, std, nmad, e (m/yr), mean_sigma (m/yr) and "
                        "within_196 (0-1; empty without a per-pixel error).",
    }

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterMultipleLayers(
            "INPUT", "Velocity products", TYPE_RASTER))
        self.addParameter(QgsProcessingParameterMultipleLayers(
            "INPUT_ERROR", "Error stacks (1 sigma) of the products", TYPE_RASTER, optional=True))
        self.addParameter(QgsProcessingParameterRasterLayer("REFERENCE", "Reference stack (UAV)"))
        self.addParameter(QgsProcessingParameterNumber(
            "MIN_OVERLAP", "Least overlap of a reference interval", NUMBER_DOUBLE, 0.5,
            minValue=0.01, maxValue=1.0))
        self.add_table("OUTPUT_TABLE", "Agreement with the reference")

    def process(self, parameters, context, feedback):
        sources = open_sources(self.raster_paths(parameters, "INPUT", context),
                               errors=self.raster_paths(parameters, "INPUT_ERROR", context))
        reference = self.raster_path(parameters, "REFERENCE", context)
        rows = reference_agreement(sources, reference,
                                   self.parameterAsDouble(parameters, "MIN_OVERLAP", context),
                                   self.progress(feedback))
        for r in rows:
            if r["ref_band"] == 0:
                feedback.pushInfo(f"{r['product']}: n {r['n']}, bias {r['bias']:.2f}, RMSE "
                                  f"{r['rmse']:.2f}, NMAD {r['nmad']:.2f} m/yr (all matched bands)"
                                  + (f"; {100 * r['within_196']:.1f} % of the reference within "
                                     "1.96 sigma" if r["within_196"] == r["within_196"] else ""))
        return {"OUTPUT_TABLE": self.write_table(parameters, "OUTPUT_TABLE", context, rows,
                                                 AGREEMENT_COLUMNS)}
