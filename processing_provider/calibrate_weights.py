"""Calibrate the multi-sensor fusion weights on a UAV velocity stack."""

from qgis.core import (QgsProcessingOutputString, QgsProcessingParameterEnum,
                       QgsProcessingParameterMultipleLayers,
                       QgsProcessingParameterRasterLayer)

from ..compat import TYPE_RASTER
from ..core.fusion.calibration import METHODS, calibrate
from .base import GlacierAlgorithm


class CalibrateWeightsAlgorithm(GlacierAlgorithm):
    ALG_ID = "calibrateweights"
    DISPLAY_NAME = "Calibrate fusion weights on UAV velocities"
    GROUP = "fusion"
    HELP = (
        "Finds the weights of a multi-sensor fusion (Fuse velocity stacks) by comparing each "
        "sensor's velocity stack with UAV velocities, taken as the reference.\n\n"
        "Band matching: each UAV band (a survey interval) is paired, in every stack, with the band "
        "that shares the most days with it, if the shared days are at least half of the UAV "
        "interval (ties: the band whose middle is nearest). UAV bands without such a partner in "
        "every stack are left out. Every stack is resampled onto the UAV grid with nearest "
        "neighbour (values are not smoothed).\n\n"
        "Least squares (default): the weights w minimise Σ (V_uav − Σ_k w_k V_k)² over the pixels "
        "and dates where the UAV and every stack are valid, subject to w_k ≥ 0 and Σ w_k = 1, "
        "solved exactly (an active-set method on the constrained problem). Inverse variance: w_k ∝ "
        "1 / mean((V_k − V_uav)²).\n\n"
        "The table holds one row per stack (SOURCES in order, then AUXILIARY) and a row 'combined' "
        "(the weighted combination): weight, n (matched samples), bias = mean(V − V_uav), RMSE, R² "
        "(squared correlation) and the slope of the line V = a + slope·V_uav, all in m/yr. With "
        "CLASSES, weights are also solved per class (rows with their class in column 'class'; "
        "classes with fewer than 10 samples per weight keep the global weights). SUBSET_WEIGHTS "
        "holds the weights for every set of valid stacks that includes a primary one, each "
        "solved on those stacks alone: where a stack is missing (Sentinel-2 under clouds), the "
        "fusion then uses the combination of the others that fits the UAV best, instead of the "
        "global weights renormalised, which never use a stack the global fit gave no weight. "
        "Velocities in m/yr."
    )
    PARAM_HELP = {
        "REFERENCE": "UAV velocity stack (bands named START/END), the reference the weights are "
                     "fitted to; its grid is the common grid of the comparison.",
        "SOURCES": "primary velocity stacks, one per sensor (e.g. Landsat, Sentinel-2); the "
                   "weights follow this order.",
        "AUXILIARY": "optional auxiliary stack (Sentinel-1), weighted last; in the fusion it adds "
                     "to pixels where a primary stack is valid and otherwise serves gap filling.",
        "METHOD": "least squares on the simplex (w ≥ 0, Σw = 1; default) or inverse variance of "
                  "each stack's residuals against the UAV.",
        "CLASSES": "optional categorical raster (e.g. slope or aspect classes): weights per class "
                   "as well; pass CLASS_WEIGHTS on to the fusion.",
        "OUTPUT": "table: source, sensor, role (primary/auxiliary/combined), weight, n, bias, rmse, "
                  "r2, slope (m/yr).",
        "OUTPUT_SAMPLES": "optional table of the matched samples for plots: interval, row, col, uav, "
                          "v_<source> per stack, v_combined (a seeded random 20,000 when more).",
        "WEIGHTS": "the weights as text, comma-separated, SOURCES order then AUXILIARY, for the "
                   "fusion's WEIGHTS parameter.",
        "CLASS_WEIGHTS": "per-class weights 'class:w1,w2,...;class:...' (empty without CLASSES), "
                         "for the fusion's CLASS_WEIGHTS parameter.",
        "ERRORS": "each stack's RMSE against the UAV (m/yr, bias included), comma-separated in "
                  "WEIGHTS order: the 1 σ per stack for the fusion's ERRORS parameter.",
        "SUBSET_WEIGHTS": "the weights of every set of valid stacks, 'mask:w1,w2,...;...' (mask: "
                          "0/1 per stack in WEIGHTS order, 1 = valid), for the fusion's "
                          "SUBSET_WEIGHTS parameter.",
    }
    METHOD_LABELS = ["Least squares, w ≥ 0 and Σw = 1 (default)", "Inverse variance"]

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterRasterLayer("REFERENCE", "UAV velocity stack"))
        self.addParameter(QgsProcessingParameterMultipleLayers(
            "SOURCES", "Primary velocity stacks (in weight order)", TYPE_RASTER))
        self.addParameter(QgsProcessingParameterRasterLayer(
            "AUXILIARY", "Auxiliary velocity stack (Sentinel-1)", optional=True))
        self.addParameter(QgsProcessingParameterEnum("METHOD", "Method", options=self.METHOD_LABELS,
                                                     defaultValue=0))
        self.addParameter(QgsProcessingParameterRasterLayer(
            "CLASSES", "Classes for per-class weights", optional=True))
        self.add_table("OUTPUT", "Calibration table")
        self.add_table("OUTPUT_SAMPLES", "Matched samples", optional=True)
        self.addOutput(QgsProcessingOutputString("WEIGHTS", "Weights"))
        self.addOutput(QgsProcessingOutputString("CLASS_WEIGHTS", "Per-class weights"))
        self.addOutput(QgsProcessingOutputString("ERRORS", "Errors (RMSE against the UAV)"))
        self.addOutput(QgsProcessingOutputString("SUBSET_WEIGHTS", "Weights per set of valid "
                                                                   "stacks"))

    def process(self, parameters, context, feedback):
        reference = self.raster_path(parameters, "REFERENCE", context)
        sources = self.raster_paths(parameters, "SOURCES", context)
        auxiliary = self.raster_path(parameters, "AUXILIARY", context, required=False)
        classes = self.raster_path(parameters, "CLASSES", context, required=False)
        method = METHODS[self.parameterAsEnum(parameters, "METHOD", context)]
        cal = calibrate(reference, sources, auxiliary, method, classes, self.progress(feedback))
        for uav_iv, matched in cal.matches:
            feedback.pushInfo(f"UAV {uav_iv} matched with " + ", ".join(
                f"{n} {iv}" for n, iv in zip(cal.names, matched)))
        feedback.pushInfo(f"{cal.samples.uav.size} samples valid in the UAV and every stack.")
        rows = cal.table_rows()
        for r in rows:
            feedback.pushInfo(f"{r.get('class', '')} {r['source']}: weight {r['weight']:.4f}, "
                              f"bias {r['bias']:+.2f}, RMSE {r['rmse']:.2f} m/yr, R² {r['r2']:.3f}, "
                              f"slope {r['slope']:.3f}".strip())
        for value, n in cal.class_counts.items():
            if value not in cal.class_weights:
                feedback.pushWarning(f"Class {value:g} has only {n} samples: it keeps the global "
                                     "weights.")
        results = {"OUTPUT": self.write_table(parameters, "OUTPUT", context, rows,
                                              cal.table_columns()),
                   "WEIGHTS": cal.weight_string, "CLASS_WEIGHTS": cal.class_weight_string(),
                   "ERRORS": cal.error_string, "SUBSET_WEIGHTS": cal.subset_weight_string()}
        if self.parameterAsOutputLayer(parameters, "OUTPUT_SAMPLES", context):
            results["OUTPUT_SAMPLES"] = self.write_table(
                parameters, "OUTPUT_SAMPLES", context, cal.sample_rows(), cal.sample_columns())
        feedback.pushInfo(f"Weights ({', '.join(cal.names)}): {cal.weight_string}")
        return results
