"""Parameters shared by the correlation algorithms (single pair and batch)."""

from qgis.core import (QgsProcessingParameterBoolean, QgsProcessingParameterEnum,
                       QgsProcessingParameterNumber, QgsProcessingParameterRasterLayer)

from ..compat import NUMBER_DOUBLE, NUMBER_INTEGER
from ..core.correlation import preprocess
from ..core.correlation.prior import PriorField
from ..core.io.products import DEFAULT_MAX_SPEED
from .base import advanced

PREPROCESS_KEYS = [preprocess.AUTO] + list(preprocess.METHODS)

METHOD_HELP = (
    "Method: each window (WINDOW pixels, every STEP pixels) is tapered by a raised cosine and "
    "matched in the frequency domain; the secondary window is first moved by whole pixels to the "
    "phase-correlation peak, then a weighted phase-plane fit of the cross-power spectrum (adaptive "
    "frequency mask) gives the sub-pixel shift, iterated with the secondary taper moved to the "
    "estimate, which makes it free of windowing bias and pixel-locking (0.0012 px RMSE on "
    "synthetic texture with 1 % noise). The search range follows the baseline: displacements up "
    "to MAX_SPEED (m/yr) x baseline are looked for (a first pass with larger windows finds those "
    "beyond a quarter of the window), centred on a prior velocity field (PRIOR) when one is "
    "given, so that each window starts at its expected offset (prior velocity x baseline); "
    "SEARCH (px) overrides it. Where the displacement varies across a window by more than 0.4 % "
    "of its size (glacier margins, tributary junctions), the window is deformed: the secondary "
    "window is resampled by the local displacement gradient from the neighbouring vectors and "
    "fitted again, until the update is below 0.001 px (1-2 % shear: 0.0015 px instead of "
    "0.006-0.012 px); DEFORM turns it off. The SNR band (0-1) is the coherence of the cross-power "
    "with the fitted phase plane: near 1 for good matches, below about 0.4 for unrelated windows "
    "(clouds, fresh snow), 0 where a window has no texture (flat, or contrast in a few specks "
    "only). For SAR intensity (Sentinel-1), log-amplitude with a light despeckling low-pass is "
    "used and larger windows (64) are recommended. Work goes in strips of window rows on all CPU "
    "cores, so memory depends on the image width only; progress is reported and Cancel stops "
    "within a second or so.\n\n"
    "Output: a pair product (bands vx, vy, v in m/yr, east and north positive, and snr, then "
    "bands 5-6 vx_error and vy_error: each vector's estimated standard error in m/yr, from the "
    "residual phases of the fit, calibrated on synthetic pairs so that about 95 % of true errors "
    "lie within 1.96 x it), one pixel per window centre with a pixel size of STEP x the image "
    "pixel size; velocity = displacement / baseline (days) x 365.25. Images must be in the same "
    "projected CRS in metres and overlap; a secondary image on another grid is resampled onto the "
    "reference grid (Lanczos) first."
)

OPTION_HELP = {
    "WINDOW": "correlation window side in pixels (even, >= 8); 32 suits most optical images, "
              "64 for weak texture or SAR.",
    "STEP": "pixels between window centres; the output pixel is STEP x the image pixel.",
    "PREPROCESS": "image pre-processing: automatic (log-amplitude for Sentinel-1, orientation "
                  "images for UAV, high-pass otherwise: on real Sentinel-2 triplets it closed "
                  "best, 0.066 px against 0.077 px for orientation images), none, high-pass "
                  "(image minus a Gaussian blur of "
                  "FILTER_SIZE), Wallis (local contrast equalisation over FILTER_SIZE), orientation "
                  "images (gradient directions, robust to illumination change and thin clouds) or "
                  "log-amplitude (SAR intensity, with a 1-px Gaussian despeckling).",
    "FILTER_SIZE": "Gaussian sigma (px) of the high-pass and Wallis filters.",
    "WINDOW_ROWS": "window height in pixels for non-square windows (0 = same as WINDOW).",
    "SEARCH": "largest displacement in pixels looked for beyond the prior; 0 (default) = "
              "MAX_SPEED x baseline / pixel, at least a quarter of the window and at most two "
              "windows. Beyond a quarter of the window a first pass with larger windows runs.",
    "MAX_SPEED": f"largest speed looked for, m/yr (default {DEFAULT_MAX_SPEED:g} = 3 m/day), or "
                 "with a PRIOR the largest departure from it: the search range is MAX_SPEED x "
                 "baseline / pixel, so one value serves every baseline and pixel size.",
    "PRIOR": "prior velocity field (m/yr, or m/day when its UNITS metadata says so; any CRS and "
             "grid): a pair product, or a vx raster or vx velocity stack with PRIOR_VY (e.g. an "
             "ITS_LIVE mosaic's vx/vy). Each window starts at its expected offset (velocity x "
             "baseline); where the prior has no value the constant prior is used.",
    "PRIOR_VY": "vy raster or stack of the prior, when PRIOR is a vx raster or stack.",
    "PRIOR_BAND": "band of PRIOR / PRIOR_VY to use when they are stacks (1 = first).",
    "DEFORM": "window deformation where the strain across a window exceeds 0.4 % (on by "
              "default; off keeps moved, undeformed windows everywhere).",
    "RESOLUTION": "target pixel size in metres: both images are down-sampled (anti-aliased) to it "
                  "before matching, e.g. for centimetre UAV orthomosaics (0 = keep the pixels).",
    "BAND": "image band to correlate (1 = first).",
    "MIN_SNR": "vectors with a lower SNR are written as NoData (their SNR is kept); 0 keeps all.",
}


def add_options(alg):
    """WINDOW, STEP, PREPROCESS, then the advanced options shared by both algorithms."""
    alg.addParameter(QgsProcessingParameterNumber("WINDOW", "Window size (px)", NUMBER_INTEGER, 32,
                                                  minValue=8, maxValue=1024))
    alg.addParameter(QgsProcessingParameterNumber("STEP", "Step between windows (px)",
                                                  NUMBER_INTEGER, 2, minValue=1, maxValue=1024))
    alg.addParameter(QgsProcessingParameterEnum(
        "PREPROCESS", "Pre-processing", options=[preprocess.LABELS[k] for k in PREPROCESS_KEYS],
        defaultValue=0))
    alg.addParameter(advanced(QgsProcessingParameterNumber(
        "FILTER_SIZE", "High-pass / Wallis filter size (px)", NUMBER_DOUBLE,
        preprocess.DEFAULT_SIZE, minValue=0.5)))
    alg.addParameter(advanced(QgsProcessingParameterNumber(
        "WINDOW_ROWS", "Window height (px, 0 = square)", NUMBER_INTEGER, 0, minValue=0,
        maxValue=1024)))
    alg.addParameter(advanced(QgsProcessingParameterNumber(
        "SEARCH", "Search range (px, 0 = from MAX_SPEED and the baseline)", NUMBER_DOUBLE, 0.0,
        minValue=0.0)))
    alg.addParameter(advanced(QgsProcessingParameterNumber(
        "MAX_SPEED", "Maximum speed looked for (m/yr)", NUMBER_DOUBLE, DEFAULT_MAX_SPEED,
        minValue=0.0)))
    alg.addParameter(advanced(QgsProcessingParameterRasterLayer(
        "PRIOR", "Prior velocity field (pair product or vx)", optional=True)))
    alg.addParameter(advanced(QgsProcessingParameterRasterLayer(
        "PRIOR_VY", "Prior vy (with a vx prior)", optional=True)))
    alg.addParameter(advanced(QgsProcessingParameterNumber("PRIOR_BAND", "Prior band",
                                                            NUMBER_INTEGER, 1, minValue=1)))
    alg.addParameter(advanced(QgsProcessingParameterBoolean("DEFORM", "Window deformation",
                                                             defaultValue=True)))
    alg.addParameter(advanced(QgsProcessingParameterNumber(
        "RESOLUTION", "Target resolution (m, 0 = native)", NUMBER_DOUBLE, 0.0, minValue=0.0)))
    alg.addParameter(advanced(QgsProcessingParameterNumber("BAND", "Band", NUMBER_INTEGER, 1,
                                                            minValue=1)))
    alg.addParameter(advanced(QgsProcessingParameterNumber(
        "MIN_SNR", "Minimum SNR kept", NUMBER_DOUBLE, 0.0, minValue=0.0, maxValue=1.0)))


def read_options(alg, parameters, context):
    """Keyword arguments of ``core.correlation.images.correlate_images`` from the options."""
    window = alg.parameterAsInt(parameters, "WINDOW", context)
    rows = alg.parameterAsInt(parameters, "WINDOW_ROWS", context) or window
    search = alg.parameterAsDouble(parameters, "SEARCH", context)
    prior = alg.raster_path(parameters, "PRIOR", context, required=False)
    prior_vy = alg.raster_path(parameters, "PRIOR_VY", context, required=False)
    return {
        "window": (rows, window),
        "step": alg.parameterAsInt(parameters, "STEP", context),
        "preprocess": PREPROCESS_KEYS[alg.parameterAsEnum(parameters, "PREPROCESS", context)],
        "filter_size": alg.parameterAsDouble(parameters, "FILTER_SIZE", context),
        "search": search if search > 0 else None,
        "resolution": alg.parameterAsDouble(parameters, "RESOLUTION", context) or None,
        "band": alg.parameterAsInt(parameters, "BAND", context),
        "min_snr": alg.parameterAsDouble(parameters, "MIN_SNR", context),
        "max_speed": alg.parameterAsDouble(parameters, "MAX_SPEED", context),
        "deform": alg.parameterAsBool(parameters, "DEFORM", context),
        "prior_field": PriorField(prior, prior_vy, alg.parameterAsInt(parameters, "PRIOR_BAND",
                                                                      context)) if prior else None,
    }
