"""Remove a plane (or quadratic surface) fitted robustly on stable ground from vx and vy."""

from qgis.core import QgsProcessingParameterEnum

from ..core.filters.ramp import remove_ramp_file
from ._pair_common import PAIR_HELP, STABLE_HELP, PairAlgorithm, add_stable, stable_on


class RemoveRampAlgorithm(PairAlgorithm):
    ALG_ID = "removeramp"
    DISPLAY_NAME = "Remove ramp (stable ground)"
    GROUP = "filters"
    HELP = (
        "Fits a plane (or a quadratic surface) to vx and to vy on stable ground, where the true "
        "velocity is zero, and subtracts it everywhere: this removes co-registration offsets and "
        "the tilts that orbit or attitude errors leave in a velocity pair.\n\n"
        "The fit is robust: iteratively reweighted least squares with Huber, then Tukey biweight "
        "weights (scale from the NMAD of the residuals), so mismatches on stable ground get no "
        "weight and cannot tilt the surface. The fitted offsets and gradients are logged and "
        "written into the output's metadata (RAMP_VX, RAMP_VY). Large rasters are read tile by "
        "tile; with more than 250,000 stable pixels an evenly spread subsample is fitted."
    )
    PARAM_HELP = dict(PAIR_HELP, **STABLE_HELP,
                      ORDER="plane (first order, default) or quadratic surface.",
                      OUTPUT="pair product without the ramp (m/yr).")
    ORDERS = ["Plane (first order)", "Quadratic surface"]
    OUTPUT_LABEL = "Pair without ramp"

    def init_options(self):
        add_stable(self)
        self.addParameter(QgsProcessingParameterEnum("ORDER", "Surface", options=self.ORDERS,
                                                     defaultValue=0))

    def process_pair(self, source, output, parameters, context, feedback):
        stable = stable_on(self, parameters, context, feedback, source.grid)
        order = self.parameterAsEnum(parameters, "ORDER", context) + 1
        rx, ry = remove_ramp_file(source, output, stable, order, progress=self.progress(feedback))
        feedback.pushInfo(f"Ramp of vx: {rx.describe()}")
        feedback.pushInfo(f"Ramp of vy: {ry.describe()}")
        return {}
