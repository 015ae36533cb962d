"""One-click clean of a pair: the default quality filters, then ramp removal on stable ground."""

from ..core.filters.clean import FilterSettings, clean_pair
from ..core.filters.quality import DEFAULT_MAX_SPEED, DEFAULT_SNR
from ._pair_common import (PAIR_HELP, STABLE_HELP, TERRAIN_HELP, THRESHOLD_HELP, PairAlgorithm,
                           add_stable, add_terrain, add_thresholds, report_terrain_coverage,
                           stable_on, terrain_mask, thresholds)


class CleanPairAlgorithm(PairAlgorithm):
    ALG_ID = "cleanpair"
    DISPLAY_NAME = "Clean a velocity pair (default chain)"
    GROUP = "filters"
    HELP = (
        "Applies the default post-processing chain to one velocity pair and writes a pair product "
        f"in m/yr: SNR below SNR_MIN (default {DEFAULT_SNR:g}) removed; speeds above MAX_SPEED "
        f"(default {DEFAULT_MAX_SPEED:g} m/yr = 3 m/day) removed; normalised median test (3×3, "
        "threshold 2); small coherent islands of mismatches removed (speckle filter, up to 100 "
        "pixels); vectors more than 20° off the direction of the locally smoothed field removed "
        "where the flow is clearly faster than the noise; NaN-aware 3×3 median smoothing (see "
        "Quality filters for each step and its automatic thresholds).\n\n"
        "When stable ground is given, a plane is fitted robustly to vx and to vy there (Huber "
        "then Tukey biweight weights, so mismatches cannot tilt it) and subtracted from the "
        "vectors before the neighbourhood and directional filters, which thus compare corrected "
        "vectors with the flow. The fitted planes are logged and kept in the output's metadata "
        "(RAMP_VX, RAMP_VY, and RAMP_VX_SURFACE/RAMP_VY_SURFACE in machine-readable form).\n\n"
        "The input is a pair product, or an external map as two single-band rasters (vx with "
        "INPUT_VY) in m/yr or m/day; its dates come from the file name (two dates, e.g. "
        "20180304-20180405_vx.tif), its metadata, or START_DATE/END_DATE. Each filter's removals "
        "are logged. Every step is also an algorithm of its own (Quality filters, Remove ramp, "
        "Destripe) to reorder or tune in the modeler.\n\n"
        "SAR pairs: with a DEM, vectors whose correlation window (WINDOW × PIXEL_M from the "
        "pair's metadata) covers more than LAYOVER_SHARE of layover or shadow are removed first "
        "(layover: terrain rising towards the radar, at LOOK_BEARING, more steeply than the "
        "incidence angle; shadow: falling away more steeply than 90° minus it). Speckle keeps a "
        "high SNR there, so the SNR threshold does not remove them."
    )
    PARAM_HELP = dict(PAIR_HELP, **THRESHOLD_HELP, **TERRAIN_HELP,
                      STABLE=STABLE_HELP["STABLE"] + " Optional: without it no ramp is removed.",
                      OUTPUT="cleaned pair product (vx, vy, v, snr; m/yr, NaN where removed).",
                      VALID_BEFORE="number of valid vectors in the input.",
                      VALID_AFTER="number of valid vectors in the output.")

    OUTPUT_LABEL = "Cleaned pair product"
    NUMBER_OUTPUTS = {"VALID_BEFORE": "Valid vectors before", "VALID_AFTER": "Valid vectors after"}

    def init_options(self):
        add_thresholds(self)
        add_stable(self, mask=False)
        add_terrain(self)

    def process_pair(self, source, output, parameters, context, feedback):
        stable = stable_on(self, parameters, context, feedback, source.grid, required=False)
        settings = FilterSettings(**thresholds(self, parameters, context))
        terrain = terrain_mask(self, parameters, context)
        report, ramps = clean_pair(source, output, settings, stable=stable,
                                   progress=self.progress(feedback),
                                   drop=terrain.for_pair(source, source.grid) if terrain else None)
        for line in report.lines():
            feedback.pushInfo(line)
        report_terrain_coverage(terrain, feedback)
        if ramps:
            feedback.pushInfo(f"Ramp of vx: {ramps[0].describe()}")
            feedback.pushInfo(f"Ramp of vy: {ramps[1].describe()}")
        else:
            feedback.pushInfo("No stable ground given: no ramp removed.")
        return {"VALID_BEFORE": report.valid_before, "VALID_AFTER": report.valid_after}

