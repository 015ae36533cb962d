"""Export velocity stacks as one CF-1.8 NetCDF or Zarr cube with ITS_LIVE names."""

from qgis.core import QgsProcessingParameterFileDestination, QgsProcessingParameterRasterLayer

from ..core.io.itslive import export_stacks
from .base import GlacierAlgorithm


class ExportCubeAlgorithm(GlacierAlgorithm):
    ALG_ID = "exportcube"
    DISPLAY_NAME = "Export stacks as a NetCDF/Zarr cube"
    GROUP = "io"
    HELP = (
        'Writes velocity stacks (one band per time step, e.g. the monthly, fused or gap-filled stacks) as'
        ' one cube that xarray, TICOI and other ITS_LIVE tools read.\n\n'
        'OUTPUT is a CF-1.8 NetCDF file (.nc) or a Zarr folder (.zarr) with ITS_LIVE names: v from INPUT,'
        ' and vx, vy and v_error from INPUT_VX, INPUT_VY and INPUT_ERROR when given, in meter/year '
        '(NoData as NaN) with grid_mapping "mapping"; dimensions (mid_date, y, x) with x/y the pixel '
        "centres; mid_date the middle of each band's interval in days since 1970-01-01, "
        'acquisition_date_img1/2 its first and last day (and the same as date1/date2, the names of '
        "TICOI's generic loader), date_dt its length in days; the scalar mapping variable with crs_wkt, "
        'spatial_epsg, proj4text and GeoTransform, and the global attribute proj4. Data are compressed '
        "(deflate) in chunks of the whole series of 10 x 10 pixels, so one pixel's history is read at "
        'once, and the stacks are read tile by tile, so memory stays bounded. The file is written under a'
        ' temporary name and moved into place when complete.\n\n'
        "All stacks must share one grid and the same band intervals. A NetCDF cube also works "
        "where the plugin takes a stack (the time-series, fusion and trend algorithms, the dock): "
        "add its variable v (or vx, vy) as a raster layer (the Add Raster Layer dialog offers "
        "each variable; the layer source reads NETCDF:\"cube.nc\":v) and choose that layer. GDAL reads "
        "Zarr only layer by layer, so use NetCDF there, or import a Zarr cube with 'Import ITS_LIVE "
        "granules or cube'. Needs the Python packages xarray, netCDF4 and dask (and zarr for "
        ".zarr).")
    PARAM_HELP = {
        "INPUT": "velocity stack of the speed v (m/yr).",
        "INPUT_VX": "stack of vx (m/yr, east), same grid and dates (optional; TICOI needs vx and "
                    "vy).",
        "INPUT_VY": "stack of vy (m/yr, north), same grid and dates (optional).",
        "INPUT_ERROR": "stack of the speed error v_error (1 sigma, m/yr), same grid and dates "
                       "(optional).",
        "OUTPUT": "cube: a .nc file or a .zarr folder.",
    }

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", "Speed stack (v)"))
        for name, label in (("INPUT_VX", "vx stack"), ("INPUT_VY", "vy stack"),
                            ("INPUT_ERROR", "Speed error stack (v_error)")):
            self.addParameter(QgsProcessingParameterRasterLayer(name, label, optional=True))
        self.addParameter(QgsProcessingParameterFileDestination(
            "OUTPUT", "Cube", fileFilter="NetCDF (*.nc);;Zarr folder (*.zarr)"))

    def process(self, parameters, context, feedback):
        stacks = {q: self.raster_path(parameters, name, context, required=name == "INPUT")
                  for q, name in (("v", "INPUT"), ("vx", "INPUT_VX"), ("vy", "INPUT_VY"),
                                  ("v_error", "INPUT_ERROR"))}
        output = self.parameterAsFileOutput(parameters, "OUTPUT", context)
        export_stacks(output, stacks, progress=self.progress(feedback))
        feedback.pushInfo(f"Cube written: {output} (variables "
                          f"{', '.join(q for q, p in stacks.items() if p)}).")
        return {"OUTPUT": output}
