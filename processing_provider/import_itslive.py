"""Import ITS_LIVE image-pair granules or a datacube (NetCDF/Zarr) as pair products."""

from qgis.core import (QgsProcessingOutputMultipleLayers, QgsProcessingParameterEnum,
                       QgsProcessingParameterExtent, QgsProcessingParameterFile,
                       QgsProcessingParameterFolderDestination, QgsProcessingParameterNumber,
                       QgsProcessingParameterString)

from ..compat import FILE_BEHAVIOR_FILE, NUMBER_DOUBLE
from ..core.io.itslive import SENSOR_FILTERS, import_itslive
from .base import GlacierAlgorithm


class ImportItsLiveAlgorithm(GlacierAlgorithm):
    ALG_ID = "importitslive"
    DISPLAY_NAME = "Import ITS_LIVE granules or cube"
    GROUP = "io"
    HELP = (
        'Brings ITS_LIVE velocities (the NASA MEaSUREs reference product) into the plugin: each image '
        'pair becomes one of our pair products, ready for the filters, monthly stacks, fusion and trends.\n\n'
        'INPUT is an ITS_LIVE image-pair granule (.nc), a folder of granules, or an ITS_LIVE datacube (a '
        '.nc file, or a .zarr folder: type its path, or pick its .zmetadata / .zgroup file). Granules '
        'give vx, vy, v and v_error (int16, fill value -32767 read as NoData, in meter/year), the grid '
        'from their mapping variable (crs_wkt or spatial_epsg, GeoTransform) or x/y coordinates, the '
        'dates from img_pair_info (acquisition_date_img1/2, date_dt) and the sensor from mission_img1 and'
        ' satellite_img1 (S2A/S2B: sentinel2, L8/L9: landsat, S1A/S1B: sentinel1). A cube gives the same '
        'per layer, from its 1-D variables along mid_date; only the requested window and dates are read, '
        'in blocks, so a cube of many GB is imported with bounded memory.\n\n'
        'EXTENT (any CRS) keeps the pixels inside it; START_DATE and END_DATE keep pairs whose two dates '
        'both lie within them; MIN_DAYS and MAX_DAYS bound the time separation (date_dt); SENSORS keeps '
        'the chosen sensors. Granules outside the request, and in a folder a granule that cannot be '
        'read (damaged, truncated, not ITS_LIVE), are skipped and listed in the log, which ends '
        'with the number written and skipped; nothing matching at all is an error naming the '
        'file.\n\n'
        'OUTPUT receives one GeoTIFF per pair, named sensor_YYYYMMDD_YYYYMMDD.tif (a suffix _2, _3 for '
        "repeated dates): bands vx, vy, v (ITS_LIVE's own speed) and snr (unknown in ITS_LIVE, left "
        'NoData: the SNR filter keeps such pixels and monthly weighting counts them as 1), plus a fifth '
        "band v_error when the source has it; metadata VX_ERROR and VY_ERROR hold ITS_LIVE's 1-sigma "
        'errors of the pair (m/yr) and V_ERROR their root mean square, the per-component error that '
        'the temporal inversion (invertseries) reads; DATE_DT holds the time separation. The import is '
        'all or none: the files are written into a hidden folder inside OUTPUT and moved into place '
        'when every one is complete, so a failed or cancelled import leaves OUTPUT as it was. Needs '
        'the Python packages xarray and netCDF4 (and zarr for .zarr cubes).')
    PARAM_HELP = {
        "INPUT": "ITS_LIVE granule (.nc), folder of granules, or datacube (.nc or .zarr folder).",
        "EXTENT": "area to import, in any CRS (optional: the whole grid).",
        "START_DATE": "keep pairs whose first date is on or after this date (YYYY-MM-DD, "
                      "optional).",
        "END_DATE": "keep pairs whose second date is on or before this date (YYYY-MM-DD, "
                    "optional).",
        "MIN_DAYS": "shortest time separation kept, days (default 0).",
        "MAX_DAYS": "longest time separation kept, days (0 = no limit, the default).",
        "SENSORS": "sensors to keep (none ticked = all).",
        "OUTPUT": "folder receiving one pair product per granule or cube layer.",
        "OUTPUT_PAIRS": "the pair products written (list of files).",
    }

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterFile(
            "INPUT", "ITS_LIVE granule, folder or cube", behavior=FILE_BEHAVIOR_FILE,
            fileFilter="NetCDF (*.nc *.nc4);;Zarr cube metadata (.zmetadata .zgroup);;"
                       "All files (*)"))
        self.addParameter(QgsProcessingParameterExtent("EXTENT", "Extent", optional=True))
        self.addParameter(QgsProcessingParameterString("START_DATE", "Start date (YYYY-MM-DD)",
                                                       optional=True))
        self.addParameter(QgsProcessingParameterString("END_DATE", "End date (YYYY-MM-DD)",
                                                       optional=True))
        self.addParameter(QgsProcessingParameterNumber("MIN_DAYS", "Shortest separation (days)",
                                                       NUMBER_DOUBLE, 0.0, minValue=0))
        self.addParameter(QgsProcessingParameterNumber(
            "MAX_DAYS", "Longest separation (days, 0 = no limit)", NUMBER_DOUBLE, 0.0, minValue=0))
        self.addParameter(QgsProcessingParameterEnum("SENSORS", "Sensors", options=SENSOR_FILTERS,
                                                     allowMultiple=True, optional=True))
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT", "Pair products"))
        self.addOutput(QgsProcessingOutputMultipleLayers("OUTPUT_PAIRS", "Pair products written"))

    def process(self, parameters, context, feedback):
        source = self.parameterAsFile(parameters, "INPUT", context)
        extent = None
        if parameters.get("EXTENT"):
            rect = self.parameterAsExtent(parameters, "EXTENT", context)
            crs = self.parameterAsExtentCrs(parameters, "EXTENT", context)
            if not rect.isNull() and not rect.isEmpty():
                extent = (rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum(),
                          crs.toWkt() if crs.isValid() else "")
        max_days = self.parameterAsDouble(parameters, "MAX_DAYS", context)
        # unset, QGIS 3.22 answers [0] (the first option), not "none ticked"
        sensors = ([SENSOR_FILTERS[i] for i in self.parameterAsEnums(parameters, "SENSORS", context)]
                   if parameters.get("SENSORS") not in (None, "", []) else [])
        folder = self.parameterAsString(parameters, "OUTPUT", context)
        written = import_itslive(
            source, folder, extent,
            self.parameterAsString(parameters, "START_DATE", context).strip() or None,
            self.parameterAsString(parameters, "END_DATE", context).strip() or None,
            self.parameterAsDouble(parameters, "MIN_DAYS", context) or None,
            max_days or None, sensors, progress=self.progress(feedback), log=feedback.pushInfo)
        feedback.pushInfo(f"{len(written)} pair product(s) written to {folder}.")
        return {"OUTPUT": folder, "OUTPUT_PAIRS": written}
