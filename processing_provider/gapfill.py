"""Fill the gaps of a fused velocity stack with the auxiliary (Sentinel-1) stack."""

import os

from qgis.core import (QgsProcessingParameterEnum, QgsProcessingParameterNumber,
                       QgsProcessingParameterRasterDestination, QgsProcessingParameterRasterLayer)

from ..compat import NUMBER_DOUBLE, NUMBER_INTEGER
from ..core.fusion.gapfill import (AUX_SPREAD, CLIP, COEFFICIENTS, ESTIMATORS, MIN_AUX,
                                    MIN_MONTHS, gapfill_stack)
from ..core.errors import InputError
from ..core.io.products import read_stack_info
from .base import GlacierAlgorithm


def check_auxiliary(fused, aux, feedback):
    """Refuse an AUXILIARY that is the fused stack itself or a UAV stack (SENSOR metadata): in the
    dialog a required raster takes the project's first raster by default, e.g. the UAV stack,
    which would fill nothing but its own footprint without a word; warn when it is a satellite
    stack other than Sentinel-1 (allowed, but not the method)."""
    if os.path.realpath(fused) == os.path.realpath(aux):
        raise InputError(f"AUXILIARY: '{aux}' is the fused stack itself: give the Sentinel-1 "
                         "velocity stack.")
    sensor = read_stack_info(aux).sensor.strip().lower()
    if sensor == "uav":
        raise InputError(f"AUXILIARY: '{aux}' is a UAV stack (SENSOR=uav): the gaps are filled "
                         "from the Sentinel-1 velocity stack, which covers the whole grid.")
    if sensor in ("landsat", "sentinel2"):
        feedback.pushWarning(f"AUXILIARY is a {sensor} stack (SENSOR={sensor}), not "
                             "Sentinel-1: its values fill the gaps, scaled as Sentinel-1's "
                             "would be.")


class GapfillAlgorithm(GlacierAlgorithm):
    ALG_ID = "gapfill"
    DISPLAY_NAME = "Gap-fill a fused stack with Sentinel-1"
    GROUP = "fusion"
    HELP = (
        "Fills the gaps of a fused velocity stack (m/yr) with the auxiliary (Sentinel-1) stack "
        "scaled to the fused values around them.\n\n"
        "For every pixel, over a WINDOW × WINDOW neighbourhood, a local coefficient a relates the "
        "fused values F to the Sentinel-1 values S where both are valid; the coefficient field is "
        "smoothed by a Gaussian of SIGMA pixels that ignores missing values, and a missing fused "
        "pixel becomes a · S where both exist. Gaps with no coefficient nearby stay empty.\n\n"
        "Estimators: ratio of local means a = ΣF / ΣS (default) or the paper's least squares a = "
        "ΣF·S / ΣS². Noise in S1 attenuates the least-squares coefficient (errors in variables: "
        "about v² / (v² + σ²) for speed v and S1 noise σ), so its fills of moving ice come out "
        "too low; the ratio is not attenuated by zero-mean noise, and on the sample scene its "
        "fills of ice faster than 50 m/yr were less biased (−0.7 against −3.2 m/yr), while least "
        "squares gave a slightly lower RMSE (18.2 against 18.8 m/yr) by shrinking S1's noise "
        "along with the speeds. Guards: a window needs a fifth of its pixels valid in both stacks "
        "and a mean S (ratio; its magnitude, since vx/vy stacks are signed) or root-mean-square S "
        f"(least squares) of at least {MIN_AUX:g} m/yr (S1 near zero on stable ground would make "
        f"the coefficient explode); coefficients are clipped to {CLIP[0]:g}–{CLIP[1]:g}.\n\n"
        "COEFFICIENT: the window coefficient alone is the paper's method (spatial). Combined "
        "(default) adds the pixel's own temporal coefficient, ΣF / ΣS over the months when the "
        f"pixel had both a fused and a Sentinel-1 value (at least {MIN_MONTHS}; one robust pass "
        "drops months whose residual exceeds three standard deviations), and combines the two by "
        "inverse variance, the window coefficient's variance increased by how much the temporal "
        "coefficients vary inside its window. A coefficient learnt on a glacier's slow margins in "
        "a cloudy month is then not applied to its fast centre, and pixels under a cloud band "
        "wider than the window are filled too. On the tiny sample scene the fills of ice faster "
        "than 50 m/yr were biased by −5.0 m/yr with the window coefficient and +1.1 m/yr combined.\n\n"
        "Per-pixel uncertainty: OUTPUT_ERROR receives the 1 σ (m/yr) of every value: for a fill "
        "a·S, sqrt(S² var(a) + noise), the noise of a·S estimated from the residual variance of F "
        "− a·S (less the fused error when FUSED_ERROR is given); kept fused values keep "
        "FUSED_ERROR (NaN without it).\n\n"
        "Neighbouring months (with FUSED_ERROR): a gap whose month lies between two months where "
        "the pixel was fused also gets their mean N, with the neighbours' error plus the change "
        "of speed over the months (learnt from the pixels fused three months in a row); the fill "
        "is the inverse-variance mean of a·S and N, or N alone where no a·S exists. On the valley "
        "sample scene's stacks this brings the glacier fills from 15.2 to 11.2 m/yr RMSE (raw "
        "Sentinel-1 there 17.3) and the glacier coverage from 97.4 to 98.7 %.\n\n"
        "Bands are paired with the Sentinel-1 band of the same interval; a band without one is "
        "copied. Each band's share of pixels filled and left empty is reported and written to "
        "band metadata (FILLED_SHARE, EMPTY_SHARE)."
    )
    PARAM_HELP = {
        "FUSED": "fused velocity stack (output of Fuse velocity stacks).",
        "AUXILIARY": "Sentinel-1 velocity stack (resampled with nearest neighbour when on another "
                     "grid).",
        "WINDOW": "side of the square neighbourhood of the local coefficient, pixels (default 10).",
        "SIGMA": "standard deviation of the Gaussian smoothing of the coefficient, pixels "
                 "(default 2; 0 = none).",
        "ESTIMATOR": "ratio of local means ΣF/ΣS (default) or least squares ΣF·S/ΣS² (the window "
                     "coefficient's estimator).",
        "COEFFICIENT": "combined: window and per-pixel temporal coefficients by inverse variance "
                       "(default); spatial: the window coefficient alone (the paper's).",
        "FUSED_ERROR": "optional 1 σ stack of the fused values (the fusion's OUTPUT_ERROR); with "
                       "it the neighbouring months join the fills.",
        "AUX_SPREAD": "the auxiliary stack's own holes (Sentinel-1 layover and shadow removed, "
                      "image borders out of its windows' reach) are first filled with the "
                      "Gaussian-weighted mean of its valid neighbours, this sigma in pixels "
                      f"(reach 4 sigma; default {AUX_SPREAD:g}, 0 = off); each pixel's temporal "
                      "coefficient then learns its relation to that value. On the valley scene "
                      "it raises the gap-filled glacier coverage from 92 to 99 %; fills on ice "
                      "faster than 100 m/yr keep a -2.1 % bias.",
        "OUTPUT_ERROR": "optional stack of the gap-filled values' 1 σ (m/yr, one band per month; "
                        "e.g. gapfilled_error.tif).",
        "OUTPUT": "gap-filled velocity stack (m/yr, float32, NaN NoData).",
    }
    ESTIMATOR_LABELS = ["Ratio of local means ΣF/ΣS (default)", "Least squares ΣF·S/ΣS² (paper)"]
    COEFFICIENT_LABELS = ["Window and temporal, combined by their variances (default)",
                          "Window only (paper)"]

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterRasterLayer("FUSED", "Fused velocity stack"))
        self.addParameter(QgsProcessingParameterRasterLayer(
            "AUXILIARY", "Sentinel-1 velocity stack"))
        self.addParameter(QgsProcessingParameterNumber(
            "WINDOW", "Window (pixels)", NUMBER_INTEGER, 10, minValue=2, maxValue=501))
        self.addParameter(QgsProcessingParameterNumber(
            "SIGMA", "Smoothing sigma (pixels)", NUMBER_DOUBLE, 2.0, minValue=0.0, maxValue=100.0))
        self.addParameter(QgsProcessingParameterEnum(
            "ESTIMATOR", "Estimator", options=self.ESTIMATOR_LABELS, defaultValue=0))
        self.addParameter(QgsProcessingParameterEnum(
            "COEFFICIENT", "Coefficient", options=self.COEFFICIENT_LABELS, defaultValue=0))
        self.addParameter(QgsProcessingParameterRasterLayer(
            "FUSED_ERROR", "Fused error stack (1 sigma)", optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            "AUX_SPREAD", "Fill the auxiliary's holes from neighbours, sigma (pixels)",
            NUMBER_DOUBLE, AUX_SPREAD, minValue=0.0, maxValue=100.0))
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", "Gap-filled stack"))
        self.addParameter(QgsProcessingParameterRasterDestination(
            "OUTPUT_ERROR", "Gap-filled error (1 sigma)", optional=True, createByDefault=False))

    def process(self, parameters, context, feedback):
        fused = self.raster_path(parameters, "FUSED", context)
        aux = self.raster_path(parameters, "AUXILIARY", context)
        check_auxiliary(fused, aux, feedback)
        output = self.parameterAsOutputLayer(parameters, "OUTPUT", context)
        error_output = self.parameterAsOutputLayer(parameters, "OUTPUT_ERROR", context) or None
        summary = gapfill_stack(fused, aux, output,
                                self.parameterAsInt(parameters, "WINDOW", context),
                                self.parameterAsDouble(parameters, "SIGMA", context),
                                ESTIMATORS[self.parameterAsEnum(parameters, "ESTIMATOR", context)],
                                self.progress(feedback),
                                COEFFICIENTS[self.parameterAsEnum(parameters, "COEFFICIENT",
                                                                  context)],
                                self.raster_path(parameters, "FUSED_ERROR", context,
                                                 required=False),
                                error_output, aux_spread=self.parameterAsDouble(
                                    parameters, "AUX_SPREAD", context))
        for s in summary:
            feedback.pushInfo(f"{s['interval']}: filled {100 * s['filled_share']:.2f} % of pixels, "
                              f"left empty {100 * s['empty_share']:.2f} %")
        filled = sum(s["filled"] for s in summary)
        empty = sum(s["empty"] for s in summary)
        feedback.pushInfo(f"Filled {filled} pixel-months; {empty} remain empty "
                          f"({100 * filled / max(filled + empty, 1):.1f} % of the gaps filled).")
        return {"OUTPUT": output, **({"OUTPUT_ERROR": error_output} if error_output else {})}
