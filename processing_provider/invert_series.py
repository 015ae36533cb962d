"""Regular velocity series (calendar months or every N days) by temporal inversion of
overlapping pair products of any sensors and baselines."""

from qgis.core import (QgsProcessingOutputNumber, QgsProcessingParameterEnum,
                       QgsProcessingParameterFeatureSink,
                       QgsProcessingParameterFeatureSource, QgsProcessingParameterFile,
                       QgsProcessingParameterMultipleLayers, QgsProcessingParameterNumber,
                       QgsProcessingParameterRasterDestination, QgsProcessingParameterString)

from ..compat import (FILE_BEHAVIOR_FOLDER, NUMBER_DOUBLE, TYPE_FILE, TYPE_RASTER,
                      TYPE_VECTOR_TABLE)
from ..core.errors import InputError
from ..core.io.pairsource import PairSource
from ..core.timeseries.harmonise import DEFAULT_PIXEL
from ..core.timeseries.inversion import ROBUST
from ..core.io.pixel_series import default_error_path
from ..core.timeseries.invert_series import DEFAULT_NOISE_PX, inversion_grid, invert_series
from ._pair_common import add_output_grid, pair_products, reference_grid
from .base import SCHEDULER_HELP, GlacierAlgorithm

TABLE_COLUMNS = ["band", "interval", "n_pairs", "pairs_per_pixel", "residual_rms", "coverage"]


class InvertSeriesAlgorithm(GlacierAlgorithm):
    ALG_ID = "invertseries"
    DISPLAY_NAME = "Invert overlapping pairs into a time series"
    GROUP = "timeseries"
    HELP = (
        "Turns pair products of any sensors and baselines (e.g. Landsat, Sentinel-2 and Sentinel-1 "
        "pairs together) into regular velocity series on one grid: calendar months by default, or "
        "steps of SPACING_DAYS days. A pair measures the mean velocity over its interval, so "
        "overlapping pairs of many baselines together constrain the velocity of every shorter "
        "interval: this temporal inversion (as TICOI, Charrier et al. 2025) recovers short events, "
        "such as a spring speed-up, that calendar-month composites blur, and it fuses the sensors by "
        "their errors in one step.\n\n"
        "Per pixel and per component (vx and vy, never the speed), the unknowns are the mean "
        "velocities of the output intervals; each pair is the time-weighted mean of the intervals it "
        "spans. Consecutive intervals are tied by a first-difference regularisation whose coefficient "
        "is chosen by generalised cross-validation on a sample of pixels spread over the grid, unless "
        "REGULARISATION gives it (dimensionless: a change of one typical pair error between "
        "consecutive intervals costs as much as REGULARISATION² pairs off by their error; 0 = none). "
        "Robust reweighting (Tukey's biweight by default, or Huber's) removes outlier pairs pixel by "
        "pixel; a pixel that loses more than half its pairs, e.g. one whose pairs are all mismatches, "
        "stays empty rather than taking a wild value.\n\n"
        "Each pair is weighted by its error (1 sigma per component, m/yr). Pairs with per-vector "
        "errors (bands vx_error and vy_error, as the correlation writes them and the cleaning "
        "keeps them) weigh every pixel by its own error (1/sigma², sigma the RMS of the two "
        "bands). Elsewhere one error per pair: from WEIGHTS_TABLE, else "
        f"the pair's own metadata (V_ERROR, ERROR or UNCERTAINTY, m/yr), else {DEFAULT_NOISE_PX:g} "
        "pixel of the pair's grid of displacement over its baseline. WEIGHTS_TABLE may be the table "
        "of \"Stable-ground uncertainty\" run on the pair products (one row per product: columns "
        "product, quantity and nmad, std or e in m/yr; the vx and vy rows count), or a table of "
        "columns sensor and displacement_error (m, one row per sensor).\n\n"
        "OUTPUT_ERROR is the 1 sigma of the speed per band, from the inverse of the normal matrix "
        "scaled by the pixel's weighted residuals. An interval that no kept pair overlaps stays empty "
        "(NaN): values are never extrapolated into gaps without pairs. The speed stack's metadata "
        "item ERROR_STACK names its error stack; without OUTPUT_ERROR, the error stack is written "
        "beside OUTPUT as <name>_error.tif, so the velocity dock finds it.\n\n"
        "Pair products come from SOURCES and/or every raster in FOLDER and FOLDERS (e.g. the "
        "output folders of \"Correlate image pairs (batch)\"); a file that is not a usable pair "
        "product (damaged, truncated, an image) is skipped and named in the log. They go onto the "
        "REFERENCE "
        "raster's grid, or a "
        f"{DEFAULT_PIXEL:g} m grid (PIXEL_SIZE) over the first pair when all pairs share one CRS; "
        "pairs are read directly when they are on that grid, else resampled by nearest neighbour. "
        "START_DATE and END_DATE limit the series; pairs outside are left out. The work goes tile by "
        "tile with bounded memory; OUTPUT_TABLE gives per band the pairs contributing and the "
        "residual RMS.\n\n"
        "With DASK_SCHEDULER the tiles are inverted on a Dask cluster, one tile per task, with the "
        "same results: the pair products must then be on storage every worker sees under the "
        "same path; the stacks are written by this computer (under a temporary name, moved into "
        "place when complete). Progress follows the finished tiles, and Cancel cancels the tiles "
        "not yet done.")
    PARAM_HELP = {
        "SOURCES": "pair products of any sensors (bands vx, vy, v, snr; START_DATE/END_DATE); "
                   "optional when FOLDER is given.",
        "FOLDER": "folder whose raster files (pair products) are added to SOURCES.",
        "FOLDERS": "more folders of pair products, e.g. one per sensor from Correlate image "
                   "pairs (batch) in a model.",
        "REFERENCE": "raster whose grid the stacks take (needed when the pairs are in several "
                     "CRS).",
        "PIXEL_SIZE": f"pixel size without a reference, m (default {DEFAULT_PIXEL:g}).",
        "SPACING_DAYS": "length of the output intervals in days; 0 (default) = calendar months.",
        "START_DATE": "first day of the series (YYYY-MM-DD; default: the first pair's start).",
        "END_DATE": "last day of the series (YYYY-MM-DD; default: the last pair's end).",
        "REGULARISATION": "coefficient of the first-difference regularisation (dimensionless, "
                          "see above); empty = chosen by generalised cross-validation.",
        "ROBUST": "robust reweighting against outlier pairs: Tukey (default), Huber or none.",
        "WEIGHTS_TABLE": "pair errors: a table with columns product and nmad/std/e (m/yr; e.g. "
                         "the Stable-ground uncertainty table of the pairs), or sensor and "
                         "displacement_error (m). Optional.",
        "OUTPUT": "speed stack (m/yr): magnitude of the inverted vx and vy, one band per "
                  "interval.",
        "OUTPUT_VX": "stack of vx (m/yr, east), optional.",
        "OUTPUT_VY": "stack of vy (m/yr, north), optional.",
        "OUTPUT_ERROR": "1 sigma of the speed per band (m/yr); default <OUTPUT>_error.tif "
                        "beside OUTPUT.",
        "OUTPUT_TABLE": "per band: interval, pairs overlapping it, kept pairs per pixel, residual "
                        "RMS of those pairs (m/yr) and the share of pixels with a value "
                        "(optional).",
        "DASK_SCHEDULER": SCHEDULER_HELP,
        "REGULARISATION_USED": "the regularisation coefficient used (given or chosen).",
    }
    ROBUST_LABELS = ["Tukey biweight (default)", "Huber", "None"]

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterMultipleLayers("SOURCES", "Pair products",
                                                               TYPE_RASTER, optional=True))
        self.addParameter(QgsProcessingParameterFile("FOLDER", "Folder of pair products",
                                                     behavior=FILE_BEHAVIOR_FOLDER, optional=True))
        self.addParameter(QgsProcessingParameterMultipleLayers("FOLDERS", "More folders of pair "
                                                               "products", TYPE_FILE,
                                                               optional=True))
        add_output_grid(self)
        self.addParameter(QgsProcessingParameterNumber(
            "SPACING_DAYS", "Interval length in days (0 = calendar months)", NUMBER_DOUBLE, 0,
            minValue=0))
        self.addParameter(QgsProcessingParameterString("START_DATE", "Start of the series "
                                                       "(YYYY-MM-DD)", optional=True))
        self.addParameter(QgsProcessingParameterString("END_DATE", "End of the series "
                                                       "(YYYY-MM-DD)", optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            "REGULARISATION", "Regularisation coefficient (empty = automatic)", NUMBER_DOUBLE,
            None, optional=True, minValue=0))
        self.addParameter(QgsProcessingParameterEnum("ROBUST", "Robust reweighting",
                                                     options=self.ROBUST_LABELS, defaultValue=0))
        self.addParameter(QgsProcessingParameterFeatureSource(
            "WEIGHTS_TABLE", "Pair errors table", [TYPE_VECTOR_TABLE], optional=True))
        self.add_scheduler()
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", "Speed stack"))
        self.addParameter(QgsProcessingParameterRasterDestination(
            "OUTPUT_VX", "vx stack", optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterRasterDestination(
            "OUTPUT_VY", "vy stack", optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterRasterDestination(
            "OUTPUT_ERROR", "Speed error stack (1 sigma)", optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterFeatureSink(
            "OUTPUT_TABLE", "Pairs and residuals per band", TYPE_VECTOR_TABLE, optional=True,
            createByDefault=False))
        self.addOutput(QgsProcessingOutputNumber("REGULARISATION_USED",
                                                 "Regularisation coefficient used"))

    def process(self, parameters, context, feedback):
        paths = pair_products(self, parameters, context, feedback, minimum=2)
        grid = reference_grid(self, parameters, context) or inversion_grid(
            [PairSource(p) for p in paths], None,
            self.parameterAsDouble(parameters, "PIXEL_SIZE", context))
        outputs = {"v": self.parameterAsOutputLayer(parameters, "OUTPUT", context)}
        for q, name in (("vx", "OUTPUT_VX"), ("vy", "OUTPUT_VY"), ("error", "OUTPUT_ERROR")):
            if parameters.get(name):
                outputs[q] = self.parameterAsOutputLayer(parameters, name, context)
        outputs.setdefault("error", default_error_path(outputs["v"]))
        rows = None
        if parameters.get("WEIGHTS_TABLE"):
            source = self.parameterAsSource(parameters, "WEIGHTS_TABLE", context)
            if source is None:
                raise InputError("WEIGHTS_TABLE: the table cannot be read.")
            names = source.fields().names()
            rows = [dict(zip(names, f.attributes())) for f in source.getFeatures()]
        spacing = self.parameterAsDouble(parameters, "SPACING_DAYS", context) or None
        table, summary = invert_series(
            paths, grid, outputs, spacing_days=spacing,
            start=self.parameterAsString(parameters, "START_DATE", context).strip() or None,
            end=self.parameterAsString(parameters, "END_DATE", context).strip() or None,
            regularisation=self.optional_number(parameters, "REGULARISATION", context),
            robust=ROBUST[self.parameterAsEnum(parameters, "ROBUST", context)],
            error_rows=rows, progress=self.progress(feedback), log=feedback.pushInfo,
            scheduler=self.parameterAsString(parameters, "DASK_SCHEDULER", context))
        empty = [r["interval"] for r in table if not r["coverage"]]
        if empty:
            feedback.pushWarning(f"{len(empty)} band(s) without any pair stay empty: "
                                 f"{', '.join(empty)}")
        results = {"OUTPUT": outputs["v"], "OUTPUT_ERROR": outputs["error"],
                   "REGULARISATION_USED": summary["regularisation"]}
        results.update({name: outputs[q] for q, name in (("vx", "OUTPUT_VX"), ("vy", "OUTPUT_VY"))
                        if q in outputs})
        if parameters.get("OUTPUT_TABLE"):
            results["OUTPUT_TABLE"] = self.write_table(parameters, "OUTPUT_TABLE", context, table,
                                                       TABLE_COLUMNS)
        return results
