"""Correlate many images: pairs formed by sensor and baseline, one pair product each."""

from qgis.core import (QgsProcessingOutputNumber, QgsProcessingParameterFile,
                       QgsProcessingParameterFolderDestination,
                       QgsProcessingParameterMultipleLayers, QgsProcessingParameterNumber)

from ..compat import FILE_BEHAVIOR_FOLDER, NUMBER_INTEGER, TYPE_RASTER
from ..core.errors import InputError
from ..core.correlation.images import correlate_batch
from ..core.correlation.pairing import form_pairs, list_images
from ._correlation_common import METHOD_HELP, OPTION_HELP, add_options, read_options
from .base import GlacierAlgorithm

COLUMNS = ["pair", "sensor", "start", "end", "baseline_days", "valid_share", "median_snr",
           "reference", "secondary", "path", "status"]


class CorrelateBatchAlgorithm(GlacierAlgorithm):
    ALG_ID = "correlatebatch"
    DISPLAY_NAME = "Correlate image pairs (batch)"
    GROUP = "correlation"
    HELP = (
        "Correlates a series of images into one pair product per pair, with the same method and "
        "options as \"Correlate an image pair\". Images come from SOURCES and/or every raster in "
        "FOLDER. Pairing rule: images are grouped by sensor (from the product name, e.g. LC08_..., "
        "S2A_MSIL1C_..., S1A_IW_..., else the SENSOR metadata, or SENSOR for all) and sorted by "
        "acquisition date (from the names or metadata); every two images of a group between "
        "MIN_DAYS and MAX_DAYS apart form a pair, the earlier one as reference. Products are named "
        "<sensor>_<start>_<end>.tif in OUTPUT. A pair that cannot be correlated (its images do not "
        "overlap, one of them is damaged or truncated, it would need more memory than there is) "
        "is skipped and its reason is written in the index table's status column; the log ends "
        "with the number of pairs written and skipped. The run fails only when no pair could be "
        "correlated.\n\n"
    ) + METHOD_HELP
    PARAM_HELP = dict(
        OPTION_HELP,
        SOURCES="images to pair (any number; optional when FOLDER is given).",
        FOLDER="folder whose raster files (tif, jp2, jpg, png, img, vrt) are added to SOURCES.",
        MIN_DAYS="shortest time baseline of a pair (days).",
        MAX_DAYS="longest time baseline of a pair (days); e.g. 5-40 for nominal monthly pairs.",
        SENSOR="sensor label forced on every image (all images form one group); empty = from "
               "names or metadata.",
        OUTPUT="folder receiving the pair products.",
        OUTPUT_TABLE="index: one row per pair with pair, sensor, start, end, baseline_days, "
                     "valid_share, median_snr, reference, secondary, path and status.",
        PAIRS="number of pair products written.",
    )

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterMultipleLayers("SOURCES", "Images", TYPE_RASTER,
                                                               optional=True))
        self.addParameter(QgsProcessingParameterFile("FOLDER", "Folder of images",
                                                     behavior=FILE_BEHAVIOR_FOLDER, optional=True))
        self.addParameter(QgsProcessingParameterNumber("MIN_DAYS", "Minimum baseline (days)",
                                                       NUMBER_INTEGER, 5, minValue=1))
        self.addParameter(QgsProcessingParameterNumber("MAX_DAYS", "Maximum baseline (days)",
                                                       NUMBER_INTEGER, 40, minValue=1))
        self.add_string("SENSOR", "Sensor (forced on all images)")
        add_options(self)
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT", "Output folder"))
        self.add_table("OUTPUT_TABLE", "Pair index")
        self.addOutput(QgsProcessingOutputNumber("PAIRS", "Pair products written"))

    def process(self, parameters, context, feedback):
        images = self.raster_paths(parameters, "SOURCES", context)
        folder = self.parameterAsFile(parameters, "FOLDER", context)
        if folder:
            images += list_images(folder)
        if not images:
            raise InputError("SOURCES / FOLDER: give images, or a folder that holds some.")
        pairs = form_pairs(images, self.parameterAsInt(parameters, "MIN_DAYS", context),
                           self.parameterAsInt(parameters, "MAX_DAYS", context),
                           self.parameterAsString(parameters, "SENSOR", context) or None)
        if not pairs:
            raise InputError(f"No pair of the {len(images)} images has the same sensor and a "
                             "baseline between MIN_DAYS and MAX_DAYS.")
        feedback.pushInfo(f"{len(pairs)} pairs from {len(images)} images.")
        out_folder = self.parameterAsString(parameters, "OUTPUT", context)
        rows = correlate_batch(pairs, out_folder, progress=self.progress(feedback),
                               **read_options(self, parameters, context))
        written = 0
        for row in rows:
            if row["status"] == "ok":
                written += 1
                feedback.pushInfo(f"{row['pair']}: {row['baseline_days']} days, "
                                  f"{100 * row['valid_share']:.1f} % valid, median SNR "
                                  f"{row['median_snr']:.2f}")
            else:
                feedback.reportError(f"{row['pair']}: {row['status']}")
        skipped = len(rows) - written
        if not written:  # nothing could be done: a failure, not an empty success
            reasons = "; ".join(f"{r['pair']}: {r['status']}" for r in rows[:3])
            raise InputError(f"None of the {len(rows)} pair(s) could be correlated: {reasons}")
        feedback.pushInfo(f"{len(rows)} pair(s): {written} written, {skipped} skipped"
                          + (" (reasons in the status column of OUTPUT_TABLE)." if skipped else "."))
        table = self.write_table(parameters, "OUTPUT_TABLE", context, rows, COLUMNS)
        return {"OUTPUT": out_folder, "OUTPUT_TABLE": table, "PAIRS": written}
