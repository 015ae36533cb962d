"""Remove stripe artefacts from a velocity pair using stable ground."""

from qgis.core import QgsProcessingParameterNumber

from ..compat import NUMBER_DOUBLE, NUMBER_INTEGER
from ..core.filters.destripe import DEFAULT_MIN_COVERAGE, DEFAULT_MIN_PIXELS, destripe_file
from ._pair_common import PAIR_HELP, STABLE_HELP, PairAlgorithm, add_stable, stable_on


class DestripeAlgorithm(PairAlgorithm):
    ALG_ID = "destripe"
    DISPLAY_NAME = "Destripe (stable ground)"
    GROUP = "filters"
    HELP = (
        "Removes stripes (detector, along-track or cross-track jitter artefacts) from vx and vy. "
        "Stripes run along ANGLE (degrees clockwise from north: 90 = along rows, 0 = along "
        "columns, or a satellite's ground-track heading). Pixels are grouped in one-pixel-wide "
        "bands across the stripes; the median of vx and of vy over the stable pixels of each band "
        "is that band's stripe value and is subtracted from the whole band. Bands with fewer than "
        "MIN_PIXELS stable pixels get the value interpolated from their neighbours; if fewer than "
        f"{100 * DEFAULT_MIN_COVERAGE:.0f} % of the bands can be measured, the algorithm stops and "
        "says there is too little stable ground. Remove ramps first (Remove ramp), so that the "
        "stripe profile holds only the stripes."
    )
    PARAM_HELP = dict(PAIR_HELP, **STABLE_HELP,
                      ANGLE="direction the stripes run along, degrees clockwise from north "
                            "(default 90: along rows).",
                      MIN_PIXELS=f"stable pixels needed to measure a band (default "
                                 f"{DEFAULT_MIN_PIXELS}).",
                      OUTPUT="destriped pair product (m/yr).")

    OUTPUT_LABEL = "Destriped pair"

    def init_options(self):
        add_stable(self)
        self.addParameter(QgsProcessingParameterNumber(
            "ANGLE", "Stripe direction (degrees from north)", NUMBER_DOUBLE, 90.0, minValue=0,
            maxValue=360))
        self.addParameter(QgsProcessingParameterNumber(
            "MIN_PIXELS", "Stable pixels per band", NUMBER_INTEGER, DEFAULT_MIN_PIXELS, minValue=1))

    def process_pair(self, source, output, parameters, context, feedback):
        stable = stable_on(self, parameters, context, feedback, source.grid)
        px, py = destripe_file(source, output, stable,
                               self.parameterAsDouble(parameters, "ANGLE", context),
                               self.parameterAsInt(parameters, "MIN_PIXELS", context),
                               progress=self.progress(feedback))
        feedback.pushInfo(f"vx: {px.describe()}")
        feedback.pushInfo(f"vy: {py.describe()}")
        return {}
