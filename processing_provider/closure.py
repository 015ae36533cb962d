"""Closure of a triplet of pair products: a truth-free check of correlation quality."""

from qgis.core import (QgsProcessingParameterFeatureSource, QgsProcessingParameterMultipleLayers,
                       QgsProcessingParameterNumber, QgsProcessingParameterRasterDestination)

from ..compat import NUMBER_DOUBLE, TYPE_RASTER, TYPE_VECTOR_POLYGON
from ..core.correlation.closure import arrange_triplet, triplet_closure
from ..core.errors import InputError
from ..core.io.vector import rasterize_mask
from .base import GlacierAlgorithm, advanced
from .styles import DISTANCE

COLUMNS = ["region", "windows", "valid", "valid_share", "median_closure_px", "median_closure_m",
           "mean_east_px", "mean_north_px", "nmad_east_px", "nmad_north_px", "rms_px", "p90_px",
           "median_along_flow_px"]


class ClosureAlgorithm(GlacierAlgorithm):
    ALG_ID = "closure"
    DISPLAY_NAME = "Closure of a pair triplet"
    GROUP = "correlation"
    OUTPUT_KINDS = {"OUTPUT": DISTANCE}  # metres, not a velocity
    HELP = (
        "How accurate is the correlation on your own images, without ground truth? For three "
        "acquisitions A, B and C correlated as A→B, B→C and A→C, the true displacements add up, so "
        "the closure d_AC - (d_AB + d_BC) is measurement error only (about the square root of 3 "
        "times the error of one pair if the three errors are independent). Give the three pair "
        "products in any order: they are arranged by their dates.\n\n"
        "Displacements are velocity x baseline (m); the three products are compared on the grid of "
        "A→C (the other two resampled by nearest neighbour), wherever all three have a vector. The "
        "table gives, for all pixels and, with GLACIERS, inside and outside the glaciers: the valid "
        "windows and their share, the median closure magnitude in image pixels and metres, the mean "
        "closure east and north (its systematic part), their NMAD, the RMS and 90th percentile, and "
        "the median closure along the A→C flow direction (positive when the long pair moves further "
        "than the two short ones: a correlator biased toward zero shift shows negative values). Use "
        "it to choose the pre-processing, window or filters for a sensor: the setting with the "
        "smallest closure at a good valid share wins."
    )
    PARAM_HELP = {
        "SOURCES": "three pair products A→B, B→C and A→C (any order; dates from their "
                   "metadata).",
        "GLACIERS": "glacier polygons (optional): statistics inside and outside them as well.",
        "PIXEL_SIZE": "image pixel size in metres for closures in pixels (0 = the PIXEL_M metadata "
                      "of the A→C product, written by the correlation).",
        "OUTPUT": "closure raster on the A→C grid: closure_east, closure_north and closure "
                  "(magnitude), metres; NoData where a pair has no vector.",
        "OUTPUT_TABLE": "closure statistics: " + ", ".join(COLUMNS) + ".",
    }

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterMultipleLayers("SOURCES", "Three pair products",
                                                               TYPE_RASTER))
        self.addParameter(QgsProcessingParameterFeatureSource(
            "GLACIERS", "Glacier polygons", [TYPE_VECTOR_POLYGON], optional=True))
        self.addParameter(advanced(QgsProcessingParameterNumber(
            "PIXEL_SIZE", "Image pixel size (m, 0 = from the products)", NUMBER_DOUBLE, 0.0,
            minValue=0.0)))
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", "Closure"))
        self.add_table("OUTPUT_TABLE", "Closure statistics")

    def process(self, parameters, context, feedback):
        paths = self.raster_paths(parameters, "SOURCES", context)
        glaciers = self.vector_path(parameters, "GLACIERS", context, feedback, required=False)
        output = self.parameterAsOutputLayer(parameters, "OUTPUT", context)
        try:  # before any work: three pair products whose dates chain
            triplet = arrange_triplet(paths)
        except InputError as exc:
            raise InputError(f"SOURCES: {exc}") from None
        region = rasterize_mask(glaciers, triplet[2].grid) if glaciers else None
        rows, info = triplet_closure(paths, output, region,
                                     self.positive_or_none(parameters, "PIXEL_SIZE", context),
                                     self.progress(feedback))
        feedback.pushInfo(f"A->B {info['ab']}, B->C {info['bc']}, A->C {info['ac']}")
        for r in rows:
            feedback.pushInfo(f"{r['region']}: {100 * r['valid_share']:.1f} % valid, median "
                              f"closure {r['median_closure_px']:.3f} px "
                              f"({r['median_closure_m']:.2f} m), along flow "
                              f"{r['median_along_flow_px']:+.3f} px")
        return {"OUTPUT": output,
                "OUTPUT_TABLE": self.write_table(parameters, "OUTPUT_TABLE", context, rows,
                                                 COLUMNS)}
