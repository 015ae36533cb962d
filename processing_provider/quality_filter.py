"""Quality filters of a velocity pair, each with its own threshold, reporting what it removed."""

from qgis.core import (QgsProcessingParameterBoolean, QgsProcessingParameterEnum,
                       QgsProcessingParameterFeatureSource, QgsProcessingParameterNumber,
                       QgsProcessingParameterRasterLayer)

from ..compat import NUMBER_DOUBLE, NUMBER_INTEGER, TYPE_VECTOR_LINE
from ..core.filters.clean import FilterSettings, clean_pair
from ..core.errors import InputError
from ..core.filters.quality import (DEFAULT_MAX_ANGLE, DEFAULT_NMT_THRESHOLD,
                            DEFAULT_SPECKLE_SIZE)
from ..core.filters.flowdir import FlowlineDirection, RasterDirection
from ._pair_common import PAIR_HELP, THRESHOLD_HELP, PairAlgorithm, add_thresholds, thresholds

REMOVED = {"snr": "REMOVED_SNR", "speed": "REMOVED_SPEED", "median test": "REMOVED_MEDIAN_TEST",
           "speckle": "REMOVED_SPECKLE", "direction": "REMOVED_DIRECTION"}


class QualityFilterAlgorithm(PairAlgorithm):
    ALG_ID = "qualityfilter"
    DISPLAY_NAME = "Quality filters"
    GROUP = "filters"
    HELP = (
        "Removes wrong vectors from a velocity pair and writes a pair product (m/yr, NaN where "
        "removed). The filters run in this order, each on what the previous ones left; a threshold "
        "of 0 switches a filter off:\n\n"
        "1. SNR: vectors whose correlation quality is below SNR_MIN (pixels without SNR are kept).\n"
        "2. Speed: vectors faster than MAX_SPEED.\n"
        "3. Normalised median test (Westerweel & Scarano "
        "2005) on vx and vy over the 3×3 neighbours: |v − median| / (median residual of the "
        "neighbours + ε) above NMT_THRESHOLD; isolated vectors (fewer than 2 valid neighbours) go "
        "too.\n"
        "4. Speckle: islands of at most SPECKLE_SIZE pixels that agree among themselves but "
        "jump by more than SPECKLE_DIFF from a vector within 2 pixels of them (overlapping "
        "correlation windows mismatch together, which the 3×3 test cannot see); an island with no "
        "valid vector that near, such as a clear patch between clouds, is kept.\n"
        "5. Direction: "
        "vectors more than MAX_ANGLE degrees off the flow direction, taken from the smoothed field "
        "itself (9×9 mean, where it is faster than MIN_SPEED), from a direction raster (degrees "
        "clockwise from north), or from flowlines drawn downstream. Only vectors faster than "
        "MIN_SPEED are tested: a slower vector's direction is mostly noise.\n"
        "6. NaN-aware 3×3 "
        "median smoothing of vx and vy (gaps are not filled).\n\n"
        "Automatic values (left empty) scale with the pixel speed P = one grid pixel of "
        "displacement over the pair's baseline: ε = 0.1 P, MIN_SPEED = 0.2 P, SPECKLE_DIFF = "
        "max(0.1 P, 3 × the robust scale of neighbour differences). The number of vectors each "
        "filter removed is logged and returned."
    )
    PARAM_HELP = dict(
        PAIR_HELP,
        **THRESHOLD_HELP,
        NMT_THRESHOLD=f"normalised median test threshold (default {DEFAULT_NMT_THRESHOLD:g}; 0 = off).",
        NMT_EPSILON="noise level ε of the median test, m/yr (empty = 0.1 pixel speed).",
        SPECKLE_SIZE=f"largest island removed, pixels (default {DEFAULT_SPECKLE_SIZE}; 0 = off).",
        SPECKLE_DIFF="largest difference between neighbours of one island, m/yr (empty = automatic).",
        DIRECTION="source of the flow direction: smoothed field (default), direction raster, "
                  "flowlines, or none (no directional filter).",
        FLOW_DIRECTION="flow direction raster, degrees clockwise from north (NaN = no test), for "
                       "DIRECTION = direction raster.",
        FLOWLINES="flowlines drawn in the direction of flow, for DIRECTION = flowlines.",
        FLOWLINE_DISTANCE="pixels farther than this from a flowline are not tested, m (default 500).",
        MAX_ANGLE=f"largest angle between a vector and the flow, degrees (default {DEFAULT_MAX_ANGLE:g}).",
        MIN_SPEED="vectors slower than this are not tested for direction, m/yr (empty = 0.2 pixel "
                  "speed).",
        MEDIAN="apply the NaN-aware 3×3 median smoothing (default yes).",
        OUTPUT="filtered pair product (m/yr).",
        VALID_BEFORE="number of valid vectors in the input.",
        VALID_AFTER="number of valid vectors in the output.",
        REMOVED_SNR="vectors removed by the SNR threshold.",
        REMOVED_SPEED="vectors removed by the speed threshold.",
        REMOVED_MEDIAN_TEST="vectors removed by the normalised median test.",
        REMOVED_SPECKLE="vectors removed by the speckle filter.",
        REMOVED_DIRECTION="vectors removed by the directional filter.",
    )
    DIRECTIONS = ["Smoothed field (default)", "Direction raster", "Flowlines", "None"]
    OUTPUT_LABEL = "Filtered pair product"
    NUMBER_OUTPUTS = {key: key.replace("_", " ").capitalize()
                      for key in ("VALID_BEFORE", "VALID_AFTER") + tuple(REMOVED.values())}

    def init_options(self):
        number = QgsProcessingParameterNumber
        add_thresholds(self)
        self.addParameter(number("NMT_THRESHOLD", "Median test threshold", NUMBER_DOUBLE,
                                 DEFAULT_NMT_THRESHOLD, minValue=0))
        self.addParameter(number("NMT_EPSILON", "Median test noise level ε (m/yr)", NUMBER_DOUBLE,
                                 None, optional=True, minValue=0))
        self.addParameter(number("SPECKLE_SIZE", "Largest speckle island (pixels)", NUMBER_INTEGER,
                                 DEFAULT_SPECKLE_SIZE, minValue=0))
        self.addParameter(number("SPECKLE_DIFF", "Speckle neighbour difference (m/yr)",
                                 NUMBER_DOUBLE, None, optional=True, minValue=0))
        self.addParameter(QgsProcessingParameterEnum("DIRECTION", "Flow direction from",
                                                     options=self.DIRECTIONS, defaultValue=0))
        self.addParameter(QgsProcessingParameterRasterLayer(
            "FLOW_DIRECTION", "Flow direction raster (degrees from north)", optional=True))
        self.addParameter(QgsProcessingParameterFeatureSource(
            "FLOWLINES", "Flowlines", [TYPE_VECTOR_LINE], optional=True))
        self.addParameter(number("FLOWLINE_DISTANCE", "Flowline reach (m)", NUMBER_DOUBLE, 500.0,
                                 minValue=0))
        self.addParameter(number("MAX_ANGLE", "Maximum angle to the flow (degrees)", NUMBER_DOUBLE,
                                 DEFAULT_MAX_ANGLE, minValue=0, maxValue=180))
        self.addParameter(number("MIN_SPEED", "Minimum speed for the direction test (m/yr)",
                                 NUMBER_DOUBLE, None, optional=True, minValue=0))
        self.addParameter(QgsProcessingParameterBoolean("MEDIAN", "3×3 median smoothing", True))

    def process_pair(self, source, output, parameters, context, feedback):
        mode = self.parameterAsEnum(parameters, "DIRECTION", context)
        settings = FilterSettings(
            **thresholds(self, parameters, context),
            nmt_threshold=self.positive_or_none(parameters, "NMT_THRESHOLD", context),
            nmt_epsilon=self.optional_number(parameters, "NMT_EPSILON", context),
            speckle_size=self.parameterAsInt(parameters, "SPECKLE_SIZE", context),
            speckle_diff=self.optional_number(parameters, "SPECKLE_DIFF", context),
            direction=("smoothed", "given", "given", "none")[mode],
            max_angle=self.parameterAsDouble(parameters, "MAX_ANGLE", context),
            min_speed=self.optional_number(parameters, "MIN_SPEED", context),
            median=self.parameterAsBool(parameters, "MEDIAN", context))
        flow = None
        if mode == 1:
            path = self.raster_path(parameters, "FLOW_DIRECTION", context, required=False)
            if not path:
                raise InputError("FLOW_DIRECTION: give a flow direction raster, or choose another "
                                 "direction source.")
            flow = RasterDirection(path, source.grid)
        elif mode == 2:
            path = self.vector_path(parameters, "FLOWLINES", context, feedback, required=False)
            if not path:
                raise InputError("FLOWLINES: give flowlines, or choose another direction source.")
            flow = FlowlineDirection(path, source.grid,
                                     self.parameterAsDouble(parameters, "FLOWLINE_DISTANCE", context))
        report, _ = clean_pair(source, output, settings, flow, progress=self.progress(feedback))
        for line in report.lines():
            feedback.pushInfo(line)
        results = {"VALID_BEFORE": report.valid_before, "VALID_AFTER": report.valid_after}
        results.update({key: report.removed.get(name, 0) for name, key in REMOVED.items()})
        return results
