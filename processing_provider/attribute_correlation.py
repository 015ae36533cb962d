"""Glacier attributes (area, slope, aspect, velocity) and their correlations."""

from qgis.core import (QgsProcessingOutputNumber, QgsProcessingParameterRasterLayer,
                       QgsProcessingParameterString)

from ..core.trends.attributes import (ATTRIBUTE_COLUMNS, CORRELATION_COLUMNS, attribute_correlations,
                               glacier_attributes, within_glacier)
from ._trend_common import COMMON_HELP, add_glaciers
from .base import GlacierAlgorithm


class AttributeCorrelationAlgorithm(GlacierAlgorithm):
    ALG_ID = "attributecorrelation"
    DISPLAY_NAME = "Attribute correlations"
    GROUP = "trends"
    HELP = (
        "Per glacier: area (km²), mean elevation, mean slope and mean aspect from the DEM (aspect "
        "= downhill bearing, degrees clockwise from north, circular mean; northness = cos(aspect), "
        "eastness = sin(aspect)), and the mean and maximum velocity (m/yr) of a velocity raster (a "
        "stack is averaged per pixel over its bands first, e.g. the multi-year mean).\n\n"
        "The correlation table gives, for the mean and maximum velocity against log10 area, slope, "
        "northness and eastness, Pearson's r with its two-sided p-value (null: no correlation) and "
        "Spearman's rank correlation as a companion robust to outliers; then the partial "
        "correlation of velocity with northness and with eastness controlling for log10 area and "
        "slope (the residuals of both after a least-squares fit on the controls; p with n - 4 "
        "degrees of freedom, so at least 5 glaciers are needed). Aspect is circular and enters "
        "through northness and eastness. The last row is the within-glacier relation of velocity "
        "and slope over the pixels of one glacier; neighbouring pixels are not independent, so "
        "that p-value is optimistic. The DEM is resampled (bilinear) onto the velocity grid."
    )
    PARAM_HELP = dict(
        COMMON_HELP,
        INPUT="velocity raster (m/yr): one band, or a stack averaged per pixel over its bands.",
        DEM="elevation model (any grid and CRS, resampled onto the velocity grid).",
        GLACIER_ID="id or name of the glacier for the within-glacier velocity-slope relation "
                   "(default: the largest glacier).",
        OUTPUT_TABLE="one row per glacier: id, name, area_km2, log10_area, n_pixels, "
                     "elevation_mean, slope_mean, aspect_deg, aspect_sector, northness, eastness, "
                     "v_mean, v_max.",
        OUTPUT_CORRELATION="scope, y, x, controls, n, pearson_r, pearson_p, spearman_rho, "
                           "spearman_p, note.",
        V_PER_DEGREE="within-glacier least-squares slope of velocity on surface slope, m/yr "
                     "per degree.",
    )

    def initAlgorithm(self, config=None):
        add_glaciers(self)
        self.addParameter(QgsProcessingParameterRasterLayer("DEM", "DEM"))
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", "Velocity raster"))
        self.addParameter(QgsProcessingParameterString(
            "GLACIER_ID", "Glacier for the within-glacier relation (id or name)", optional=True))
        self.add_table("OUTPUT_TABLE", "Glacier attributes")
        self.add_table("OUTPUT_CORRELATION", "Correlations")
        self.addOutput(QgsProcessingOutputNumber("V_PER_DEGREE", "Velocity per degree of slope"))

    def process(self, parameters, context, feedback):
        velocity = self.raster_path(parameters, "INPUT", context)
        dem = self.raster_path(parameters, "DEM", context)
        glaciers = self.vector_path(parameters, "GLACIERS", context, feedback)
        rows, pixels = glacier_attributes(
            velocity, dem, glaciers, self.parameterAsDouble(parameters, "MIN_AREA", context),
            self.progress(feedback))
        chosen = self.parameterAsString(parameters, "GLACIER_ID", context).strip()
        if chosen:
            matches = [k for k, r in enumerate(rows) if chosen in (str(r["id"]), r["name"])]
            if not matches:
                raise ValueError(f"GLACIER_ID: no glacier has the id or name '{chosen}'.")
            k = matches[0]
        else:
            k = max(range(len(rows)), key=lambda i: rows[i]["area_km2"])
        table = attribute_correlations(rows)
        row, v_per_degree = within_glacier(pixels, k + 1, rows[k]["name"] or str(rows[k]["id"]))
        table.append(row)
        for r in table:
            if r["x"] == "northness" and r["y"] == "v_mean" and r["controls"]:
                feedback.pushInfo(f"Partial correlation of mean velocity with northness given "
                                  f"area and slope: r = {r['pearson_r']:.2f} "
                                  f"(p = {r['pearson_p']:.3g}, n = {r['n']}).")
        return {"OUTPUT_TABLE": self.write_table(parameters, "OUTPUT_TABLE", context, rows,
                                                 ATTRIBUTE_COLUMNS),
                "OUTPUT_CORRELATION": self.write_table(parameters, "OUTPUT_CORRELATION", context,
                                                       table, CORRELATION_COLUMNS),
                "V_PER_DEGREE": v_per_degree}
