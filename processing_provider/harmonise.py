"""Resample a pair product or a velocity stack onto a reference grid (nearest neighbour)."""

from qgis.core import (QgsProcessingParameterCrs, QgsProcessingParameterEnum,
                       QgsProcessingParameterRasterDestination, QgsProcessingParameterRasterLayer)

from ..core.io.grid import crs_name
from ..core.timeseries.harmonise import DEFAULT_PIXEL, harmonise
from ._pair_common import UNIT_KEYS, add_output_grid, reference_grid
from .base import GlacierAlgorithm


class HarmoniseAlgorithm(GlacierAlgorithm):
    ALG_ID = "harmonise"
    DISPLAY_NAME = "Harmonise onto a reference grid"
    GROUP = "timeseries"
    HELP = (
        "Resamples a pair product or a velocity stack onto one grid, so products of different "
        "sensors and resolutions can be compared and combined pixel by pixel. The grid is the "
        "REFERENCE raster's (extent, pixel size, CRS), or, without a reference, a grid of "
        f"PIXEL_SIZE metres (default {DEFAULT_PIXEL:g} m) covering the input, in TARGET_CRS "
        "(default: the input's CRS).\n\n"
        "Nearest-neighbour resampling keeps every value an observed one (no smoothing across "
        "glacier margins or gaps); the CRS is reprojected when needed. A pair product keeps its "
        "dates, sensor and SNR, and its speed is recomputed from the resampled vx and vy; a stack "
        "keeps its band dates and band metadata. Velocities are written in m/yr (INPUT_UNITS "
        "declares the input's units when its metadata does not).\n\n"
        "When the CRS changes, vx and vy are turned by the local grid convergence (about 3° "
        "between neighbouring UTM zones at 30° N), so the flow keeps its true direction. A vx or "
        "vy stack can only be turned with its other component: the stack named like it with _vy "
        "or _vx beside it (for example flow_vx.tif and flow_vy.tif) is used, or give it as "
        "INPUT_COMPANION; without one the stack is refused. A speed stack needs none."
    )
    PARAM_HELP = {
        "INPUT": "pair product or velocity stack.",
        "REFERENCE": "raster whose grid the output takes (optional).",
        "PIXEL_SIZE": f"pixel size of the output grid without a reference, m (default "
                      f"{DEFAULT_PIXEL:g}).",
        "TARGET_CRS": "CRS of the output grid without a reference (default: the input's; must be "
                      "projected in metres).",
        "INPUT_COMPANION": "the other component of a vx or vy stack (vy for vx, vx for vy), on its "
                           "grid with the same bands; needed only to reproject a component stack "
                           "into another CRS when no file named like it with _vy/_vx lies beside "
                           "it (optional).",
        "INPUT_UNITS": "velocity units of the input when its metadata does not say: m/yr "
                       "(default) or m/day.",
        "OUTPUT": "resampled pair product or stack (m/yr).",
    }

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", "Pair product or stack"))
        add_output_grid(self)
        self.addParameter(QgsProcessingParameterCrs("TARGET_CRS", "CRS without reference",
                                                    optional=True))
        self.addParameter(QgsProcessingParameterRasterLayer(
            "INPUT_COMPANION", "Other component of a vx/vy stack", optional=True))
        self.addParameter(QgsProcessingParameterEnum("INPUT_UNITS", "Input velocity units",
                                                     options=UNIT_KEYS, defaultValue=0))
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", "Harmonised output"))

    def process(self, parameters, context, feedback):
        path = self.raster_path(parameters, "INPUT", context)
        crs = self.parameterAsCrs(parameters, "TARGET_CRS", context)
        output = self.parameterAsOutputLayer(parameters, "OUTPUT", context)
        kind, grid = harmonise(
            path, output, grid=reference_grid(self, parameters, context),
            pixel=self.parameterAsDouble(parameters, "PIXEL_SIZE", context),
            crs=crs.toWkt() if crs.isValid() else None,
            units=UNIT_KEYS[self.parameterAsEnum(parameters, "INPUT_UNITS", context)],
            companion=self.raster_path(parameters, "INPUT_COMPANION", context, required=False),
            progress=self.progress(feedback))
        feedback.pushInfo(f"{kind} resampled onto {grid.rows} x {grid.cols} pixels of "
                          f"{grid.dx:g} m ({crs_name(grid.crs_wkt)}).")
        return {"OUTPUT": output}
