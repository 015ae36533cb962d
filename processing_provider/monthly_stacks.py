"""Monthly velocity stacks (v, vx, vy) from many pair products of one sensor."""

import tempfile

from qgis.core import (QgsProcessingParameterBoolean, QgsProcessingParameterEnum,
                       QgsProcessingParameterFile,
                       QgsProcessingParameterFolderDestination,
                       QgsProcessingParameterMultipleLayers, QgsProcessingParameterNumber,
                       QgsProcessingParameterRasterDestination, QgsProcessingParameterString,
                       QgsProcessingUtils)

from ..compat import FILE_BEHAVIOR_FOLDER, NUMBER_DOUBLE, TYPE_RASTER
from ..core.filters.clean import clean_pairs
from ..core.timeseries.harmonise import DEFAULT_PIXEL, target_grid
from ..core.io.pixel_series import default_error_path
from ..core.timeseries.monthly import COMBINE, ERROR_OUTPUTS, monthly_stacks
from ..core.io.pairsource import PairSource
from ._pair_common import (STABLE_HELP, TERRAIN_HELP, add_output_grid, add_stable, add_terrain,
                           pair_products, reference_grid, report_terrain_coverage,
                           terrain_mask)
from .base import GlacierAlgorithm


class MonthlyStacksAlgorithm(GlacierAlgorithm):
    ALG_ID = "monthlystacks"
    DISPLAY_NAME = "Monthly stacks from pair products"
    GROUP = "timeseries"
    HELP = (
        "Builds monthly velocity stacks (speed v, and vx and vy) on one grid from many pair "
        "products of one sensor. Each band is a calendar month (description START/END), from the "
        "first to the last month that received a pair; months without pairs are empty (NaN).\n\n"
        "A pair goes to the calendar month that holds most of its days, if that is at least "
        "MIN_FRACTION of them (default half); pairs spanning months more evenly are left out and "
        "listed in the log. Several pairs in one month are combined per pixel by the median of vx "
        "and of vy (robust to one bad pair), or by a weighted mean with weights baseline² × SNR "
        "(a velocity's error falls with the baseline). The speed is the magnitude of the combined "
        "vx and vy: averaging speeds would be biased upwards by noise. Pairs are resampled onto "
        f"the grid by nearest neighbour: the REFERENCE raster's grid, or a {DEFAULT_PIXEL:g} m "
        "grid (PIXEL_SIZE) covering the first pair. Each band's metadata PAIRS lists the pair "
        "files that went into it; OUTPUT_TABLE lists them per month.\n\n"
        "Pair products come from SOURCES and/or every raster in FOLDER (e.g. the output folder of "
        "\"Correlate image pairs (batch)\", which makes this step chainable in the modeler); a "
        "file that is not a usable pair product (damaged, truncated, an image) is skipped and named "
        "in the log. With "
        "CLEAN, each pair first goes through the default chain of \"Clean a velocity pair\" "
        "(quality filters, and ramp removal on the STABLE polygons when given); the cleaned pairs "
        "are kept in OUTPUT_PAIRS when it is set, else in a temporary folder.\n\n"
        "Errors: when the pairs carry per-vector errors (bands vx_error and vy_error, as the "
        "correlation writes them and the cleaning keeps them), every stack gets an error stack "
        "beside it, the 1 sigma (m/yr) of each monthly value, one band per month: OUTPUT_ERROR "
        "for the speed (by default <OUTPUT>_error.tif beside OUTPUT), <name>_error.tif "
        "beside OUTPUT_VX and OUTPUT_VY. The weighted mean then weighs each component by "
        "1/sigma² (where every pair of the pixel has its error), and the error is propagated: "
        "1/sqrt(sum of 1/sigma²) for the weighted mean, sqrt(pi n/2) / sum(1/sigma) for the "
        "median of n pairs (n of 3 or more), the speed's error along the flow. The velocity "
        "stack names its error stack in the metadata item ERROR_STACK, so the velocity dock "
        "draws error bars and the uncertainty and trend algorithms find it. Without error bands "
        "no error stack is written (the log says so).\n\n"
        "SAR layover and shadow: with a DEM, each pair's vectors whose correlation window "
        "(WINDOW × PIXEL_M from the pair's metadata) covers more than LAYOVER_SHARE of layover or "
        "shadow are removed before stacking. Layover is where the terrain rises towards the radar "
        "more steeply than the incidence angle, shadow where it falls away more steeply than 90° "
        "minus it; the radar is at LOOK_BEARING from the ground. Speckle keeps a high SNR there "
        "(median 0.90 on the valley scene), so no SNR threshold removes these vectors: "
        "on the valley scene they biased Sentinel-1 glacier values by +18 m/yr where a fifth to "
        "three tenths of the window lay in layover or shadow, and by +27 m/yr above that. Give "
        "the DEM for Sentinel-1 pairs only."
    )
    PARAM_HELP = {
        "SOURCES": "pair products of one sensor (bands vx, vy, v, snr; START_DATE/END_DATE); "
                   "optional when FOLDER is given.",
        "FOLDER": "folder whose raster files (pair products of one sensor) are added to SOURCES.",
        "CLEAN": "clean each pair with the default chain (Clean a velocity pair) before stacking "
                 "(default off).",
        "STABLE": STABLE_HELP["STABLE"] + " Used by CLEAN to remove ramps; optional.",
        "OUTPUT_PAIRS": "folder that keeps the cleaned pair products (with CLEAN; optional).",
        "REFERENCE": "raster whose grid the stacks take (optional).",
        "PIXEL_SIZE": f"pixel size without a reference, m (default {DEFAULT_PIXEL:g}).",
        "COMBINE": "how pairs of one month are combined: median (default) or weighted mean "
                   "(1/sigma² where the pairs carry errors, else baseline² × SNR).",
        "MIN_FRACTION": "share of a pair's days that must fall in its month (default 0.5).",
        "SENSOR": "sensor name of the stacks (default: the pairs' SENSOR; needed when they differ).",
        **TERRAIN_HELP,
        "OUTPUT": "monthly speed stack v (m/yr).",
        "OUTPUT_VX": "monthly stack of vx (m/yr, east), optional.",
        "OUTPUT_VY": "monthly stack of vy (m/yr, north), optional.",
        "OUTPUT_ERROR": "1 sigma of the monthly speed (m/yr, one band per month) when the pairs "
                        "carry error bands; default <OUTPUT>_error.tif beside OUTPUT.",
        "OUTPUT_TABLE": "per month: interval, number of pairs, how many of them carry errors and "
                        "their file names (optional).",
    }
    COMBINE_LABELS = ["Median (default)", "Weighted mean (1/sigma², else baseline² × SNR)"]

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterMultipleLayers("SOURCES", "Pair products",
                                                               TYPE_RASTER, optional=True))
        self.addParameter(QgsProcessingParameterFile("FOLDER", "Folder of pair products",
                                                     behavior=FILE_BEHAVIOR_FOLDER, optional=True))
        add_output_grid(self)
        self.addParameter(QgsProcessingParameterEnum("COMBINE", "Combine pairs of a month by",
                                                     options=self.COMBINE_LABELS, defaultValue=0))
        self.addParameter(QgsProcessingParameterNumber(
            "MIN_FRACTION", "Share of a pair's days in its month", NUMBER_DOUBLE, 0.5, minValue=0,
            maxValue=1))
        self.addParameter(QgsProcessingParameterString("SENSOR", "Sensor name", optional=True))
        self.addParameter(QgsProcessingParameterBoolean(
            "CLEAN", "Clean each pair first (default chain)", defaultValue=False))
        add_stable(self, mask=False)
        add_terrain(self)
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", "Monthly speed stack"))
        self.addParameter(QgsProcessingParameterRasterDestination(
            "OUTPUT_VX", "Monthly vx stack", optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterRasterDestination(
            "OUTPUT_VY", "Monthly vy stack", optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterRasterDestination(
            "OUTPUT_ERROR", "Monthly speed error stack (1 sigma)", optional=True,
            createByDefault=False))
        self.add_table("OUTPUT_TABLE", "Pairs per month", optional=True)
        self.addParameter(QgsProcessingParameterFolderDestination(
            "OUTPUT_PAIRS", "Cleaned pair products", optional=True, createByDefault=False))

    def process(self, parameters, context, feedback):
        paths = pair_products(self, parameters, context, feedback)
        stable = self.vector_path(parameters, "STABLE", context, feedback, required=False)
        if not self.parameterAsBoolean(parameters, "CLEAN", context):
            if stable:
                feedback.pushWarning("STABLE is used only when CLEAN is on: pairs stacked as "
                                     "they are.")
            return self.stack(paths, parameters, context, feedback)
        kept = (self.parameterAsFileOutput(parameters, "OUTPUT_PAIRS", context)
                if parameters.get("OUTPUT_PAIRS") else None)
        with tempfile.TemporaryDirectory(dir=QgsProcessingUtils.tempFolder()) as tmp:
            cleaned = clean_pairs(paths, kept or tmp, stable,
                                  progress=self.progress(feedback).sub(0.0, 0.5))
            for path, report, ramps in cleaned:
                feedback.pushInfo(f"Cleaned {path}: {report.valid_before} -> "
                                  f"{report.valid_after} valid vectors"
                                  + (f"; ramps vx {ramps[0].describe()}, vy {ramps[1].describe()}"
                                     if ramps else ""))
            results = self.stack([c[0] for c in cleaned], parameters, context, feedback, 0.5)
        if kept:
            results["OUTPUT_PAIRS"] = kept
        return results

    def stack(self, paths, parameters, context, feedback, start=0.0):
        """Build the stacks from ``paths``; progress from ``start`` to 1."""
        grid = reference_grid(self, parameters, context) or target_grid(
            PairSource(paths[0]).grid, self.parameterAsDouble(parameters, "PIXEL_SIZE", context))
        outputs = {"v": self.parameterAsOutputLayer(parameters, "OUTPUT", context)}
        for q, name in (("vx", "OUTPUT_VX"), ("vy", "OUTPUT_VY")):
            if parameters.get(name):
                outputs[q] = self.parameterAsOutputLayer(parameters, name, context)
        for q, e in ERROR_OUTPUTS.items():
            if q in outputs:
                outputs[e] = default_error_path(outputs[q])
        if parameters.get("OUTPUT_ERROR"):
            outputs["error"] = self.parameterAsOutputLayer(parameters, "OUTPUT_ERROR", context)
        terrain = terrain_mask(self, parameters, context)
        if terrain:
            feedback.pushInfo(f"SAR layover/shadow mask from {terrain.path} (look bearing "
                              f"{terrain.look_bearing:g}°, incidence {terrain.incidence:g}°, "
                              f"window share above {terrain.share:g} removed)")
        rows, left_out = monthly_stacks(
            paths, grid, outputs, COMBINE[self.parameterAsEnum(parameters, "COMBINE", context)],
            self.parameterAsDouble(parameters, "MIN_FRACTION", context),
            self.parameterAsString(parameters, "SENSOR", context).strip() or None,
            progress=self.progress(feedback).sub(
                start, 1.0, f"Stacking {len(paths)} pair products by calendar month"),
            log=feedback.pushInfo, mask=terrain.for_pair if terrain else None)
        for r in rows:
            feedback.pushInfo(f"{r['month']}: {r['n_pairs']} pair(s) {r['pairs']}")
        report_terrain_coverage(terrain, feedback)
        if left_out:
            feedback.reportError(f"{len(left_out)} pair(s) fit no month and were left out: "
                                 f"{', '.join(left_out)}", False)
        results = {"OUTPUT": outputs["v"]}
        results.update({name: outputs[q] for q, name in (("vx", "OUTPUT_VX"), ("vy", "OUTPUT_VY"))
                        if q in outputs})
        if any(r["n_with_errors"] for r in rows):
            results["OUTPUT_ERROR"] = outputs["error"]
            feedback.pushInfo(f"Error stack (1 sigma, m/yr): {outputs['error']}")
        if parameters.get("OUTPUT_TABLE"):
            results["OUTPUT_TABLE"] = self.write_table(
                parameters, "OUTPUT_TABLE", context, rows,
                ["month", "interval", "n_pairs", "n_with_errors", "pairs"])
        return results
