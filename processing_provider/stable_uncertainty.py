"""Stable-ground uncertainty of velocity products (pair products, stacks, external maps)."""

from qgis.core import (QgsProcessingParameterEnum, QgsProcessingParameterFeatureSource,
                       QgsProcessingParameterMultipleLayers,
                       QgsProcessingParameterNumber, QgsProcessingParameterRasterLayer)

from ..compat import NUMBER_DOUBLE, NUMBER_INTEGER, TYPE_RASTER, TYPE_VECTOR_POLYGON
from ..core.errors import InputError
from ..core.uncertainty.stable_ground import DEFAULT_SAMPLE, TABLE_COLUMNS, open_sources, stable_uncertainty
from .base import GlacierAlgorithm

UNIT_OPTIONS = [None, "m/yr", "m/day"]


class StableUncertaintyAlgorithm(GlacierAlgorithm):
    ALG_ID = "stableuncertainty"
    DISPLAY_NAME = "Stable-ground uncertainty"
    GROUP = "uncertainty"
    HELP = (
        "How good is a velocity product? On stable ground the true velocity is zero, so every "
        "value there is error. For each band of each product (pair products, velocity stacks or "
        "external velocity rasters; several at once for a comparison table), over the stable "
        "pixels or a seeded random sample of them, the table gives (m/yr): n, mean, standard "
        "deviation (ddof=1), SE = std/√n, E = √(SE² + mean²), median, NMAD = 1.4826·median(|x − "
        "median|) and the share of stable pixels whose speed exceeds SPEED_THRESHOLD (incorrect "
        "matches; they are left out of the other statistics).\n\n"
        "Rows are given for the speed v and, when present, the components vx and vy (pair products "
        "carry them; stacks can be completed with INPUT_VX / INPUT_VY). Speeds on stable ground "
        "are the magnitude of noisy components, so the stable mean of v is mostly the noise level, "
        "not a bias: the components tell bias and noise apart. A row with band 0 follows each "
        "multi-band product: the mean over its bands of each statistic (n summed).\n\n"
        "Per-pixel errors: when a product comes with its 1 sigma (a pair product's bands "
        "vx_error and vy_error; a stack's error stack, named by its ERROR_STACK metadata or "
        "found beside it as <name>_error.tif, or given in INPUT_ERROR), each row adds "
        "mean_sigma (the mean 1 sigma, m/yr) and within_196, the share of the stable pixels "
        "whose true velocity, zero, lies within ±1.96 sigma of the value: the calibration check "
        "of the error, 95 % for a calibrated error of a component (vx, vy). The speed on stable "
        "ground is the magnitude of noisy components, for which a calibrated error gives 85 %.\n\n"
        "Stable ground is given as polygons (STABLE) and/or a mask raster (STABLE_MASK, nonzero = "
        "stable, resampled onto each product's grid with nearest neighbour). Memory holds one "
        "band's stable values."
    )
    PARAM_HELP = {
        "INPUT": "velocity products: pair products (bands vx, vy, v, snr), velocity stacks (bands "
                 "named START/END) or velocity rasters (QUANTITY metadata or a file name ending "
                 "_v/_vx/_vy tells which quantity). One table for all of them.",
        "INPUT_VX": "optional east components completing the inputs that are not pair products: "
                    "one vx stack/raster per such input, in the same order.",
        "INPUT_VY": "optional north components, as INPUT_VX.",
        "INPUT_ERROR": "optional per-pixel error stacks (1 sigma, m/yr, one band per time step) "
                       "of the inputs that are not pair products: one per such input, in the "
                       "same order. By default each stack's error stack is found by its "
                       "ERROR_STACK metadata or beside it as <name>_error.tif.",
        "STABLE": "stable-ground polygons (true velocity zero).",
        "STABLE_MASK": "stable-ground mask raster instead of (or with) the polygons: nonzero = "
                       "stable, any grid (nearest-neighbour resampling).",
        "SAMPLE_SIZE": "random sample of this many valid stable pixels per band (the same SEED "
                       "gives the same points); 0 uses every stable pixel.",
        "SEED": "seed of the random sample.",
        "SPEED_THRESHOLD": "speed (m/yr) above which a stable pixel is an incorrect match: counted "
                           "in incorrect_share and left out of the statistics. 0: no threshold.",
        "INPUT_UNITS": "units of the input velocities: from each file's UNITS metadata (m/yr when "
                       "absent), or m/yr, or m/day (e.g. external maps); results are in m/yr.",
        "OUTPUT_TABLE": "table: product, quantity, band (0 = mean over bands), interval, n_valid "
                        "(valid stable pixels sampled), n (used), mean, std, se, e, median, nmad "
                        "(m/yr), incorrect_share (0-1), mean_sigma (m/yr) and within_196 (0-1; "
                        "empty without a per-pixel error).",
    }

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterMultipleLayers(
            "INPUT", "Velocity products (pair products, stacks, rasters)", TYPE_RASTER))
        self.addParameter(QgsProcessingParameterMultipleLayers(
            "INPUT_VX", "East components (vx) of stacks/rasters", TYPE_RASTER, optional=True))
        self.addParameter(QgsProcessingParameterMultipleLayers(
            "INPUT_VY", "North components (vy) of stacks/rasters", TYPE_RASTER, optional=True))
        self.addParameter(QgsProcessingParameterMultipleLayers(
            "INPUT_ERROR", "Error stacks (1 sigma) of stacks/rasters", TYPE_RASTER,
            optional=True))
        self.addParameter(QgsProcessingParameterFeatureSource(
            "STABLE", "Stable-ground polygons", [TYPE_VECTOR_POLYGON], optional=True))
        self.addParameter(QgsProcessingParameterRasterLayer(
            "STABLE_MASK", "Stable-ground mask raster (nonzero = stable)", optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            "SAMPLE_SIZE", "Random sample size (0 = every stable pixel)", NUMBER_INTEGER,
            DEFAULT_SAMPLE, minValue=0))
        self.addParameter(QgsProcessingParameterNumber(
            "SEED", "Random seed", NUMBER_INTEGER, 0, minValue=0))
        self.addParameter(QgsProcessingParameterNumber(
            "SPEED_THRESHOLD", "Incorrect-match speed threshold (m/yr, 0 = none)", NUMBER_DOUBLE,
            0.0, minValue=0.0))
        self.addParameter(QgsProcessingParameterEnum(
            "INPUT_UNITS", "Input velocity units",
            options=["from file metadata", "m/yr", "m/day"], defaultValue=0))
        self.add_table("OUTPUT_TABLE", "Stable-ground uncertainty")

    def process(self, parameters, context, feedback):
        polygons = self.vector_path(parameters, "STABLE", context, feedback, required=False)
        mask = self.raster_path(parameters, "STABLE_MASK", context, required=False)
        if not polygons and not mask:
            raise InputError("STABLE / STABLE_MASK: give stable-ground polygons or a mask raster.")
        units = UNIT_OPTIONS[self.parameterAsEnum(parameters, "INPUT_UNITS", context)]
        sources = open_sources(self.raster_paths(parameters, "INPUT", context),
                               self.raster_paths(parameters, "INPUT_VX", context),
                               self.raster_paths(parameters, "INPUT_VY", context), units,
                               self.raster_paths(parameters, "INPUT_ERROR", context))
        sample = self.parameterAsInt(parameters, "SAMPLE_SIZE", context) or None
        threshold = self.parameterAsDouble(parameters, "SPEED_THRESHOLD", context) or None
        rows = stable_uncertainty(sources, polygons, mask, threshold, sample,
                                  self.parameterAsInt(parameters, "SEED", context),
                                  progress=self.progress(feedback))
        last = {}  # per product and quantity: its mean row, or its only band
        for r in rows:
            last[(r["product"], r["quantity"])] = r
        for r in last.values():
            feedback.pushInfo(f"{r['product']} {r['quantity']} ({r['interval']}): mean "
                              f"{r['mean']:.3f}, NMAD {r['nmad']:.3f}, E {r['e']:.3f} m/yr"
                              + (f"; mean sigma {r['mean_sigma']:.3f} m/yr, "
                                 f"{100 * r['within_196']:.1f} % within 1.96 sigma"
                                 if r["within_196"] == r["within_196"] else ""))
        return {"OUTPUT_TABLE": self.write_table(parameters, "OUTPUT_TABLE", context, rows,
                                                 TABLE_COLUMNS)}
