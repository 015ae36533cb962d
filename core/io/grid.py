"""Raster grids (georeferencing) and the geometric checks between them.

A :class:`Grid` is a north-up GDAL geotransform, a shape and a CRS (WKT). Pixel ``[row, col]``
covers ``x0 + col*dx .. x0 + (col+1)*dx`` and ``y0 - row*|dy| .. y0 - (row+1)*|dy|``.
"""

from dataclasses import dataclass

import numpy as np
from osgeo import osr

from ..errors import InputError

osr.UseExceptions()


@dataclass(frozen=True)
class Grid:
    """A north-up raster grid: geotransform ``(x0, dx, 0, y0, 0, dy<0)``, shape, CRS WKT."""

    transform: tuple
    shape: tuple  # (rows, cols)
    crs_wkt: str

    @classmethod
    def from_dataset(cls, ds, name="raster"):
        """The grid of an open GDAL dataset; rotated or non-north-up grids are refused."""
        gt = tuple(float(v) for v in ds.GetGeoTransform())
        if gt == (0.0, 1.0, 0.0, 0.0, 0.0, 1.0):  # GDAL's answer when the file has none
            raise InputError(f"'{name}' has no georeferencing (no geotransform: not a georeferenced "
                             "raster, or its header is damaged or truncated).")
        if gt[2] != 0 or gt[4] != 0 or gt[5] >= 0:
            raise InputError(f"'{name}' has a rotated or south-up geotransform {gt}: warp it to a "
                             "north-up grid first.")
        return cls(gt, (ds.RasterYSize, ds.RasterXSize), ds.GetProjection() or "")

    @classmethod
    def from_bounds(cls, xmin, ymax, pixel, rows, cols, crs):
        """A grid from its top-left corner, square pixel size (m) and an EPSG code or WKT."""
        return cls((float(xmin), float(pixel), 0.0, float(ymax), 0.0, -float(pixel)),
                   (int(rows), int(cols)), crs_to_wkt(crs))

    @property
    def rows(self):
        return self.shape[0]

    @property
    def cols(self):
        return self.shape[1]

    @property
    def dx(self):
        """Pixel width (m, positive)."""
        return self.transform[1]

    @property
    def dy(self):
        """Pixel height (m, positive)."""
        return -self.transform[5]

    @property
    def bounds(self):
        """(xmin, ymin, xmax, ymax) in CRS units."""
        x0, dx, _, y0, _, dy = self.transform
        return (x0, y0 + dy * self.rows, x0 + dx * self.cols, y0)

    def centres(self):
        """1-D arrays (x of columns, y of rows) of pixel-centre coordinates."""
        x0, dx, _, y0, _, dy = self.transform
        return (x0 + dx * (np.arange(self.cols) + 0.5), y0 + dy * (np.arange(self.rows) + 0.5))

    def subgrid(self, row_off, col_off, rows, cols):
        """The grid of a window of this one."""
        x0, dx, _, y0, _, dy = self.transform
        return Grid((x0 + col_off * dx, dx, 0.0, y0 + row_off * dy, 0.0, dy), (rows, cols),
                    self.crs_wkt)

    def srs(self):
        """The CRS as an ``osr.SpatialReference`` (traditional x=east axis order)."""
        srs = osr.SpatialReference()
        if self.crs_wkt:
            srs.ImportFromWkt(self.crs_wkt)
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        return srs

    def same_as(self, other, tol=1e-6):
        """True when both grids have the same shape, CRS and geotransform (to ``tol`` pixel)."""
        if self.shape != other.shape or not same_crs(self.crs_wkt, other.crs_wkt):
            return False
        a, b = np.array(self.transform), np.array(other.transform)
        return bool(np.all(np.abs(a - b) <= tol * max(abs(self.dx), abs(self.dy))))


def crs_to_wkt(crs):
    """WKT for an EPSG code (int or 'EPSG:n') or pass WKT through."""
    if isinstance(crs, int) or (isinstance(crs, str) and crs.upper().startswith("EPSG:")):
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(int(str(crs).split(":")[-1]))
        return srs.ExportToWkt()
    return str(crs)


def same_crs(wkt_a, wkt_b):
    """True when two WKT strings describe the same CRS."""
    if wkt_a == wkt_b:
        return True
    if not wkt_a or not wkt_b:
        return False
    a, b = osr.SpatialReference(), osr.SpatialReference()
    a.ImportFromWkt(wkt_a)
    b.ImportFromWkt(wkt_b)
    return bool(a.IsSame(b))


def crs_name(wkt):
    """A short human name for a CRS ('EPSG:32645' when it has an authority)."""
    if not wkt:
        return "no CRS"
    srs = osr.SpatialReference()
    srs.ImportFromWkt(wkt)
    srs.AutoIdentifyEPSG()
    code = srs.GetAuthorityCode(None)
    return f"EPSG:{code}" if code else (srs.GetName() or "unknown CRS")


def require_crs(grid, name):
    """Raise :class:`InputError` when ``grid`` has no CRS."""
    if not grid.crs_wkt:
        raise InputError(f"'{name}' has no coordinate reference system: assign one (e.g. in QGIS, "
                         "Layer Properties > Source) before using it.")


def require_projected(grid, name):
    """Raise :class:`InputError` unless the CRS is projected in metres."""
    require_crs(grid, name)
    srs = grid.srs()
    if not srs.IsProjected() or abs(srs.GetLinearUnits() - 1.0) > 1e-9:
        raise InputError(f"'{name}' is in {crs_name(grid.crs_wkt)}, which is not a projected CRS in "
                         "metres: reproject it (e.g. to its UTM zone) so displacements are in metres.")


def require_same_crs(a, b, name_a, name_b):
    """Raise :class:`InputError` when two grids have different CRSs."""
    require_crs(a, name_a)
    require_crs(b, name_b)
    if not same_crs(a.crs_wkt, b.crs_wkt):
        raise InputError(f"'{name_a}' is in {crs_name(a.crs_wkt)} but '{name_b}' is in "
                         f"{crs_name(b.crs_wkt)}: reproject one onto the other's CRS first.")


def bounds_in(grid, crs_wkt):
    """The bounds ``(xmin, ymin, xmax, ymax)`` of ``grid`` in the CRS ``crs_wkt`` (its own when
    they are the same CRS; else the transformed extent, densified along the edges)."""
    if same_crs(grid.crs_wkt, crs_wkt) or not grid.crs_wkt or not crs_wkt:
        return grid.bounds
    src, dst = grid.srs(), osr.SpatialReference()
    dst.ImportFromWkt(crs_wkt)
    for srs in (src, dst):
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    x0, y0, x1, y1 = grid.bounds
    return tuple(osr.CoordinateTransformation(src, dst).TransformBounds(x0, y0, x1, y1, 21))


def require_overlap(a, b, name_a, name_b):
    """Raise :class:`InputError` when two grids do not overlap (``b`` taken into the CRS of ``a``
    when they differ); return the overlap in the CRS of ``a``."""
    ax0, ay0, ax1, ay1 = a.bounds
    bx0, by0, bx1, by1 = bounds_in(b, a.crs_wkt)
    x0, y0, x1, y1 = max(ax0, bx0), max(ay0, by0), min(ax1, bx1), min(ay1, by1)
    if x1 <= x0 or y1 <= y0:
        if same_crs(a.crs_wkt, b.crs_wkt):
            raise InputError(f"'{name_a}' and '{name_b}' do not overlap: extents {a.bounds} and "
                             f"{b.bounds} ({crs_name(a.crs_wkt)}).")
        where = tuple(round(v, 1) for v in (bx0, by0, bx1, by1))
        raise InputError(f"'{name_a}' ({crs_name(a.crs_wkt)}) and '{name_b}' "
                         f"({crs_name(b.crs_wkt)}) do not overlap: in {crs_name(a.crs_wkt)} the "
                         f"second covers {where}, the first {a.bounds}. Check that each file's "
                         "CRS is the right one (reproject a file, rather than assign it another "
                         "CRS).")
    return (x0, y0, x1, y1)
