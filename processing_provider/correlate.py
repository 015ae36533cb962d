"""Correlate one image pair into a pair product (velocity in m/yr)."""

from qgis.core import (QgsProcessingOutputNumber, QgsProcessingParameterNumber,
                       QgsProcessingParameterRasterDestination, QgsProcessingParameterRasterLayer)

from ..compat import NUMBER_DOUBLE
from ..core.correlation.images import correlate_images
from ._correlation_common import METHOD_HELP, OPTION_HELP, add_options, read_options
from .base import GlacierAlgorithm, advanced


class CorrelateAlgorithm(GlacierAlgorithm):
    ALG_ID = "correlate"
    DISPLAY_NAME = "Correlate an image pair"
    GROUP = "correlation"
    HELP = (
        "Measures the surface displacement between two images of the same area (optical or SAR "
        "intensity) by sub-pixel frequency correlation and writes it as a velocity pair product. "
        "Acquisition dates come from START_DATE/END_DATE, else from the file names (Landsat, "
        "Sentinel-2, Sentinel-1 product names, YYYYMMDD or YYYY-MM-DD) or the images' metadata.\n\n"
    ) + METHOD_HELP
    PARAM_HELP = dict(
        OPTION_HELP,
        REFERENCE="the earlier image (its grid is the working grid).",
        SECONDARY="the later image (resampled onto the reference grid when its grid differs).",
        START_DATE="acquisition date of the reference (YYYY-MM-DD); empty = from its name or "
                   "metadata.",
        END_DATE="acquisition date of the secondary (YYYY-MM-DD); empty = from its name or "
                 "metadata.",
        SENSOR="sensor written in the product (landsat, sentinel2, sentinel1, uav or free text); "
               "empty = from the reference's product name or SENSOR metadata.",
        PRIOR_EAST="expected displacement to the east over the pair (m), e.g. a known "
                   "mis-registration or the typical glacier motion; the search is centred on it.",
        PRIOR_NORTH="expected displacement to the north over the pair (m).",
        OUTPUT="pair product: vx, vy, v (m/yr), snr (0-1), vx_error and vy_error (m/yr).",
        VALID_SHARE="share of windows (0-1) that received a vector.",
        MEDIAN_SNR="median SNR of the windows.",
    )

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterRasterLayer("REFERENCE", "Reference image"))
        self.addParameter(QgsProcessingParameterRasterLayer("SECONDARY", "Secondary image"))
        add_options(self)
        self.add_string("START_DATE", "Reference date (YYYY-MM-DD)")
        self.add_string("END_DATE", "Secondary date (YYYY-MM-DD)")
        self.add_string("SENSOR", "Sensor")
        for name, label in (("PRIOR_EAST", "Prior displacement east (m)"),
                            ("PRIOR_NORTH", "Prior displacement north (m)")):
            self.addParameter(advanced(QgsProcessingParameterNumber(name, label, NUMBER_DOUBLE,
                                                                     0.0)))
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", "Pair product"))
        self.addOutput(QgsProcessingOutputNumber("VALID_SHARE", "Share of windows with a vector"))
        self.addOutput(QgsProcessingOutputNumber("MEDIAN_SNR", "Median SNR"))

    def process(self, parameters, context, feedback):
        reference = self.raster_path(parameters, "REFERENCE", context)
        secondary = self.raster_path(parameters, "SECONDARY", context)
        output = self.parameterAsOutputLayer(parameters, "OUTPUT", context)
        prior = (self.parameterAsDouble(parameters, "PRIOR_EAST", context),
                 self.parameterAsDouble(parameters, "PRIOR_NORTH", context))
        res = correlate_images(
            reference, secondary, output,
            start=self.parameterAsString(parameters, "START_DATE", context) or None,
            end=self.parameterAsString(parameters, "END_DATE", context) or None,
            sensor=self.parameterAsString(parameters, "SENSOR", context) or None,
            prior=prior, progress=self.progress(feedback),
            **read_options(self, parameters, context))
        feedback.pushInfo(f"{res['start']} -> {res['end']} ({res['days']} days, sensor "
                          f"'{res['sensor']}', pre-processing {res['method']}): "
                          f"{res['windows']} windows, "
                          f"{100 * res['valid_share']:.1f} % with a vector, median SNR "
                          f"{res['median_snr']:.2f}; output pixel {res['grid'].dx:g} m.")
        return {"OUTPUT": output, "VALID_SHARE": res["valid_share"],
                "MEDIAN_SNR": res["median_snr"]}
