"""Raster reading, writing, tiling and resampling with GDAL.

Everything read comes back as float32 (or float64 when asked) with NoData as NaN. Everything
written is a tiled, compressed GeoTIFF, float32, NoData = NaN. Reads take an optional window
``(row_off, col_off, rows, cols)`` so rasters larger than memory are processed tile by tile
(:func:`iter_tiles`), and :class:`RasterWriter` writes any band/window as it comes.
"""

import contextlib
import os

import numpy as np
from osgeo import gdal

from ..errors import InputError
from .atomic import commit, discard, prepare_folder, temporary_path
from .grid import Grid

gdal.UseExceptions()

# INTERLEAVE=BAND: stacks are written and read band by band; GDAL's default (PIXEL) stores all
# bands of a block together, so once a stack exceeds the block cache every band access
# decompresses (and every band write rewrites) all bands: ~10x slower and bloated files.
GTIFF_OPTIONS = ["TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256", "COMPRESS=DEFLATE",
                 "PREDICTOR=3", "ZLEVEL=1", "BIGTIFF=IF_SAFER", "INTERLEAVE=BAND"]

RESAMPLING = {
    "nearest": gdal.GRA_NearestNeighbour,
    "bilinear": gdal.GRA_Bilinear,
    "cubic": gdal.GRA_Cubic,
    "cubicspline": gdal.GRA_CubicSpline,
    "lanczos": gdal.GRA_Lanczos,
    "average": gdal.GRA_Average,
}


def open_raster(path, what="raster"):
    """Open a raster read-only; :class:`InputError` naming the file when it is missing/unreadable."""
    path = str(path)
    if not path:
        raise InputError(f"No {what} given.")
    if not os.path.exists(path) and not path.startswith("/vsi") and ":" not in path[2:]:
        raise InputError(f"The {what} '{path}' does not exist.")
    try:
        ds = gdal.Open(path, gdal.GA_ReadOnly)
    except RuntimeError as exc:
        raise InputError(f"The {what} '{path}' cannot be read as a raster: {exc}") from None
    if ds is None or ds.RasterCount == 0:
        raise InputError(f"The {what} '{path}' cannot be read as a raster (no bands).")
    return ds


def check_readable(source, what="raster"):
    """Read the last block of the first and the last band of a raster: a truncated or damaged
    file (a download or copy cut short) fails here in milliseconds, with its name, instead of
    deep inside a long computation. Returns the open dataset."""
    ds = open_raster(source, what) if isinstance(source, (str, os.PathLike)) else source
    name = ds.GetDescription() or str(source)
    for index in sorted({1, ds.RasterCount}):
        band = ds.GetRasterBand(index)
        bx, by = band.GetBlockSize()
        bx, by = max(1, min(bx, ds.RasterXSize)), max(1, min(by, ds.RasterYSize))
        c0 = (ds.RasterXSize - 1) // bx * bx
        r0 = (ds.RasterYSize - 1) // by * by
        try:
            band.ReadRaster(c0, r0, ds.RasterXSize - c0, ds.RasterYSize - r0)
        except RuntimeError as exc:
            raise InputError(f"The {what} '{name}' is damaged or truncated (its last block cannot "
                             f"be read: {str(exc).strip()}).") from None
    return ds


def raster_grid(path, what="raster"):
    """The :class:`Grid` of a raster file."""
    return Grid.from_dataset(open_raster(path, what), path)


def read_band(source, band=1, window=None, dtype=np.float32):
    """Read one band (1-based) as ``dtype`` with NoData and non-finite values set to NaN.

    ``source`` is a path or an open dataset; ``window`` is ``(row_off, col_off, rows, cols)``.
    """
    ds = open_raster(source) if isinstance(source, (str, os.PathLike)) else source
    if not 1 <= band <= ds.RasterCount:
        raise InputError(f"'{ds.GetDescription()}' has {ds.RasterCount} band(s); band {band} "
                         "was asked for.")
    b = ds.GetRasterBand(band)
    if window is None:
        arr = b.ReadAsArray()
    else:
        r0, c0, nr, nc = window
        arr = b.ReadAsArray(int(c0), int(r0), int(nc), int(nr))
    arr = arr.astype(dtype, copy=False)
    nodata = b.GetNoDataValue()
    if nodata is not None and not np.isnan(nodata):
        arr[arr == nodata] = np.nan
    if np.issubdtype(arr.dtype, np.floating):
        arr[~np.isfinite(arr)] = np.nan
    return arr


def read_bands(source, bands=None, window=None, dtype=np.float32):
    """Read several bands (1-based list, default all) into a ``(band, row, col)`` array."""
    ds = open_raster(source) if isinstance(source, (str, os.PathLike)) else source
    bands = list(range(1, ds.RasterCount + 1)) if bands is None else list(bands)
    if window is None:
        shape = (ds.RasterYSize, ds.RasterXSize)
    else:
        shape = (int(window[2]), int(window[3]))
    out = np.empty((len(bands),) + shape, dtype=dtype)
    for i, b in enumerate(bands):
        out[i] = read_band(ds, b, window, dtype)
    return out


def iter_tiles(shape, tile=512, halo=0):
    """Yield ``(read_window, core_window, core_in_read)`` covering a ``(rows, cols)`` raster.

    ``core_window`` tiles the raster without overlap; ``read_window`` adds ``halo`` pixels on
    each side (clipped at the edges) for neighbourhood operations; ``core_in_read`` is the pair
    of slices that cuts the core out of an array read with ``read_window``. Windows are
    ``(row_off, col_off, rows, cols)``.
    """
    rows, cols = shape
    for r0 in range(0, rows, tile):
        for c0 in range(0, cols, tile):
            nr, nc = min(tile, rows - r0), min(tile, cols - c0)
            rr0, cc0 = max(r0 - halo, 0), max(c0 - halo, 0)
            rr1, cc1 = min(r0 + nr + halo, rows), min(c0 + nc + halo, cols)
            yield ((rr0, cc0, rr1 - rr0, cc1 - cc0), (r0, c0, nr, nc),
                   (slice(r0 - rr0, r0 - rr0 + nr), slice(c0 - cc0, c0 - cc0 + nc)))


def check_output_path(path, inputs=()):
    """Refuse to write over one of the inputs; create the output folder when needed (and remove
    the temporary leftovers of killed runs there)."""
    out = os.path.realpath(str(path))
    for p in inputs:
        if p and os.path.exists(str(p).split("|")[0]) and os.path.realpath(
                str(p).split("|")[0]) == out:
            raise InputError(f"The output '{path}' is also an input: choose another file so the "
                             "input is not overwritten.")
    if os.path.isdir(out):
        raise InputError(f"The output '{path}' is a folder: give a file name.")
    prepare_folder(out)


class RasterWriter:
    """A float32 GeoTIFF with NaN NoData, written band by band and window by window.

    ``descriptions`` sets each band's description; ``metadata`` the dataset metadata; and
    ``band_metadata`` (a list of dicts) each band's metadata. Use as a context manager or call
    :meth:`close` to flush.

    The file is written under a temporary name beside ``path`` (see :mod:`core.io.atomic`) and
    moved to ``path`` by :meth:`close`; :meth:`abort` (or leaving the ``with`` block on an
    exception) removes it, so ``path`` never holds a half-written raster.
    """

    def __init__(self, path, grid, bands=1, descriptions=None, metadata=None, band_metadata=None,
                 inputs=()):
        check_output_path(path, inputs)
        self.path = str(path)
        self.grid = grid
        self.temp = temporary_path(self.path)
        driver = gdal.GetDriverByName("GTiff")
        try:
            self.ds = driver.Create(self.temp, grid.cols, grid.rows, int(bands), gdal.GDT_Float32,
                                    options=GTIFF_OPTIONS)
        except RuntimeError as exc:
            discard(self.temp)
            raise InputError(f"The output '{self.path}' cannot be created: {exc}") from None
        self.ds.SetGeoTransform(grid.transform)
        if grid.crs_wkt:
            self.ds.SetProjection(grid.crs_wkt)
        for i in range(int(bands)):
            b = self.ds.GetRasterBand(i + 1)
            b.SetNoDataValue(float("nan"))
            if descriptions is not None:
                b.SetDescription(str(descriptions[i]))
            if band_metadata is not None and band_metadata[i]:
                b.SetMetadata({k: str(v) for k, v in band_metadata[i].items()})
        if metadata:
            self.ds.SetMetadata({k: str(v) for k, v in metadata.items()})

    def write(self, band, array, row_off=0, col_off=0):
        """Write a 2-D array into band ``band`` (1-based) at ``(row_off, col_off)``."""
        # contiguous: GDAL misreads arrays of zero strides (np.broadcast_to views)
        arr = np.ascontiguousarray(array, dtype=np.float32)
        self.ds.GetRasterBand(int(band)).WriteArray(arr, int(col_off), int(row_off))

    def set_band_metadata(self, band, items):
        """Set metadata items of one band (1-based)."""
        self.ds.GetRasterBand(int(band)).SetMetadata({k: str(v) for k, v in items.items()})

    def close(self):
        """Flush the complete raster and move it into place (a second call does nothing)."""
        if self.ds is not None:
            try:
                self.ds.FlushCache()
                self.ds = None  # closes the file
                commit(self.temp, self.path)
            except BaseException:
                self.abort()
                raise

    def abort(self):
        """Drop the raster being written: the destination stays as it was."""
        self.ds = None
        discard(self.temp)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_raster(path, grid, array, descriptions=None, metadata=None, inputs=()):
    """Write a 2-D or ``(band, row, col)`` array as a float32 GeoTIFF with NaN NoData."""
    arr = np.asarray(array)
    if arr.ndim == 2:
        arr = arr[None]
    with RasterWriter(path, grid, arr.shape[0], descriptions, metadata, inputs=inputs) as w:
        for i in range(arr.shape[0]):
            w.write(i + 1, arr[i])
    return str(path)


def warp_to_grid(source, grid, resampling="nearest", bands=None, window=None, src_nodata=None):
    """Resample a raster (any CRS) onto ``grid`` (or a window of it) and return float32 NaN data.

    ``resampling`` is a key of :data:`RESAMPLING` ('nearest' keeps values unsmoothed, as the
    harmonisation step requires; 'cubicspline'/'lanczos' for images before correlation). The
    result has shape ``(band, rows, cols)``; pixels outside the source are NaN.
    """
    ds = open_raster(source) if isinstance(source, (str, os.PathLike)) else source
    target = grid if window is None else grid.subgrid(*window)
    bands = list(range(1, ds.RasterCount + 1)) if bands is None else list(bands)
    x0, y0, x1, y1 = target.bounds
    if src_nodata is None:
        src_nodata = ds.GetRasterBand(1).GetNoDataValue()
    opts = gdal.WarpOptions(
        format="MEM", outputBounds=(x0, y0, x1, y1), width=target.cols, height=target.rows,
        dstSRS=target.crs_wkt or None, resampleAlg=RESAMPLING[resampling],
        outputType=gdal.GDT_Float32, srcNodata=src_nodata, dstNodata=float("nan"),
        multithread=True, warpOptions=["INIT_DEST=NO_DATA"])
    if bands != list(range(1, ds.RasterCount + 1)):
        ds = gdal.Translate("", ds, format="VRT", bandList=bands)
    out = gdal.Warp("", ds, options=opts)
    data = out.ReadAsArray().astype(np.float32, copy=False)
    if data.ndim == 2:
        data = data[None]
    data[~np.isfinite(data)] = np.nan
    return data


@contextlib.contextmanager
def all_or_none(writers):
    """Close every writer of ``writers`` (moving each output into place) when the block ends
    normally; abort them all when it raises, so a failed run leaves none of its outputs."""
    writers = [w for w in writers if w is not None]
    try:
        yield writers
    except BaseException:
        for w in writers:
            w.abort()
        raise
    for w in writers:
        w.close()
