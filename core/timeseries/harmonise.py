"""Harmonisation: bring a pair product or a velocity stack onto one grid (a reference raster's
grid, or a grid of a given pixel size, default 30 m, in any CRS).

Resampling is nearest neighbour (:mod:`core.io.reader`), so every output value is an input value:
velocities are not smoothed across glacier margins or gaps. Across a change of CRS, vx and vy are
turned by the local grid convergence; a pair product's speed is recomputed from the resampled vx
and vy (both taken from the same source pixel).
Work goes tile by tile and band by band, so memory stays bounded for large stacks.
"""

import numpy as np
from osgeo import osr

from ..errors import InputError
from ..io.grid import Grid, crs_to_wkt, require_projected, same_crs
from ..io.pairsource import PairSource, check_units
from ..io.products import PairWriter, StackWriter, read_stack_info
from ..progress import ensure
from ..io.raster import iter_tiles, open_raster, raster_grid
from ..io.reader import ComponentReader

DEFAULT_PIXEL = 30.0


def kind_of(path):
    """'pair' for a pair product (bands named vx and vy), 'stack' for a velocity stack (every
    band named by a date interval); :class:`InputError` otherwise."""
    ds = open_raster(path, "pair product or velocity stack")
    names = [ds.GetRasterBand(i + 1).GetDescription().strip().lower()
             for i in range(ds.RasterCount)]
    if "vx" in names and "vy" in names:
        return "pair"
    try:
        read_stack_info(path)
        return "stack"
    except InputError:
        if all("/" in n for n in names):  # a stack with a fault of its own (units, band order)
            raise
        raise InputError(f"'{path}' is neither a pair product (bands vx, vy, v, snr) nor a "
                         "velocity stack (bands named START/END dates).") from None


def target_grid(source_grid, pixel=DEFAULT_PIXEL, crs=None):
    """A grid of square ``pixel`` (m) covering ``source_grid``, in ``crs`` (EPSG code or WKT;
    default the source's), its corners snapped to multiples of the pixel size."""
    if pixel is None or pixel <= 0:
        raise InputError(f"The pixel size must be positive (m); {pixel} given.")
    wkt = crs_to_wkt(crs) if crs else source_grid.crs_wkt
    x0, y0, x1, y1 = source_grid.bounds
    if crs and not same_crs(wkt, source_grid.crs_wkt):
        t = np.linspace(0.0, 1.0, 21)
        xs = np.concatenate([x0 + (x1 - x0) * t, np.full(21, x1), x0 + (x1 - x0) * t, np.full(21, x0)])
        ys = np.concatenate([np.full(21, y0), y0 + (y1 - y0) * t, np.full(21, y1), y0 + (y1 - y0) * t])
        target = osr.SpatialReference()
        target.ImportFromWkt(wkt)
        target.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        tr = osr.CoordinateTransformation(source_grid.srs(), target)
        pts = np.array(tr.TransformPoints(np.column_stack([xs, ys]).tolist()))
        x0, y0, x1, y1 = pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()
    gx0, gy1 = np.floor(x0 / pixel) * pixel, np.ceil(y1 / pixel) * pixel
    cols = int(np.ceil((x1 - gx0) / pixel - 1e-9))
    rows = int(np.ceil((gy1 - y0) / pixel - 1e-9))
    grid = Grid.from_bounds(gx0, gy1, pixel, rows, cols, wkt)
    require_projected(grid, "the target grid")
    return grid


def harmonise(path, output, grid=None, pixel=DEFAULT_PIXEL, crs=None, units="m/yr", tile=1024,
              companion=None, progress=None):
    """Resample the pair product or stack ``path`` onto ``grid`` (or a :func:`target_grid` of
    ``pixel`` m in ``crs``) by nearest neighbour and write it, in m/yr, to ``output``.

    ``units`` declares the input's velocity units when its metadata does not say (m/yr or m/day).
    Velocity components are turned to the new CRS's axes (:mod:`core.io.reader`): a vx or vy
    stack needs its other component for that, ``companion`` or the file named like it with
    _vy/_vx; without one it is refused. Returns ``(kind, grid)``.
    """
    progress = ensure(progress)
    kind = kind_of(path)
    if grid is None:
        grid = target_grid(raster_grid(path), pixel, crs)
    tiles = list(iter_tiles(grid.shape, tile))
    if kind == "pair":
        src = PairSource(path, units=units)
        with PairWriter(output, grid, src.start, src.end, src.sensor, src.carried_metadata(),
                        inputs=[path]) as w:
            for i, (window, _, _) in enumerate(tiles):
                vx, vy, snr = src.warp(grid, window)
                w.write(vx, vy, snr, window[0], window[1])
                progress.update((i + 1) / len(tiles))
        return kind, grid
    info = read_stack_info(path)
    declared = check_units(units, path, info.metadata)
    units = info.metadata.get("UNITS", "").strip() or declared  # the file's, when it says
    reader = ComponentReader(path, grid, info.quantity, units, companion)
    ds = reader.reader.dataset()
    band_meta = [ds.GetRasterBand(b + 1).GetMetadata() or {} for b in range(info.count)]
    meta = {k: v for k, v in info.metadata.items() if k not in ("SENSOR", "QUANTITY", "UNITS")}
    inputs = [path] + ([reader.other.path] if reader.other is not None else [])
    with StackWriter(output, grid, info.intervals, info.sensor, info.quantity, meta, band_meta,
                     inputs=inputs) as w:
        for t, (window, _, _) in enumerate(tiles):  # tile by tile: one window's rotation
            for b in range(info.count):            # serves all its bands
                w.write(b, reader.band(b + 1, window), window[0], window[1])
                progress.update((t + (b + 1) / info.count) / len(tiles))
    return kind, grid
