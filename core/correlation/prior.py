"""Where each window looks: a prior velocity field and a search range set by a maximum speed.

As in autoRIFT, the expected displacement of a window is ``prior velocity x baseline / pixel``
and the search around it is ``MAX_SPEED x baseline / pixel``: one setting in m/yr serves every
baseline and pixel size, where a search range in pixels would have to be re-thought for each.

A prior is a pair product (its ``vx``/``vy`` bands), a vx raster with its vy raster (e.g. an
ITS_LIVE mosaic's components as two GeoTIFFs), or band ``b`` of a vx velocity stack with its vy
stack; any CRS and grid (nearest neighbour onto the product grid, components turned to its axes),
m/yr unless the file's ``UNITS`` metadata says m/day. Where the prior has no value the constant
prior is used (on stable ground around a glacier map that is the right answer, zero motion).
"""

import math

import numpy as np

from ..errors import InputError
from ..io.dates import DAYS_PER_YEAR
from ..io.products import DEFAULT_MAX_SPEED, pair_band_index, to_m_per_yr
from ..io.raster import open_raster
from ..io.reader import GridReader

# the automatic search never reaches further than this many windows: beyond it the coarse pass
# would need windows of 8+ window sides; SEARCH can still ask for more explicitly
MAX_AUTO_SEARCH_WINDOWS = 2.0


def search_radius(max_speed, days, pixel, window, search=None):
    """Search range (px) beyond the prior: ``search`` when given (explicit override), else
    ``max_speed`` (m/yr, default 1095) x baseline / ``pixel`` (m), at least a quarter of the
    smaller window side (the normal pass's reach costs nothing) and at most
    :data:`MAX_AUTO_SEARCH_WINDOWS` window sides."""
    if search is not None:
        return float(search)
    speed = DEFAULT_MAX_SPEED if max_speed is None else float(max_speed)
    if speed < 0:
        raise InputError(f"MAX_SPEED must be positive; got {speed:g} m/yr.")
    side = min(window)
    radius = speed * days / DAYS_PER_YEAR / float(pixel)
    return float(min(max(radius, side / 4.0), MAX_AUTO_SEARCH_WINDOWS * side))


class PriorField:
    """A prior velocity field read onto the product grid.

    ``path``: a pair product, or a vx raster / vx stack with ``vy_path``; ``band``: the band of
    the vx/vy rasters (1-based; a pair product uses its vx and vy bands).
    """

    def __init__(self, path, vy_path=None, band=1):
        self.path, self.vy_path = str(path), (str(vy_path) if vy_path else None)
        ds = open_raster(self.path, "prior velocity field")
        units = (ds.GetMetadata() or {}).get("UNITS", "m/yr")
        if self.vy_path:
            count = min(ds.RasterCount, open_raster(self.vy_path, "prior vy raster").RasterCount)
            if not 1 <= int(band) <= count:
                raise InputError(f"PRIOR_BAND: '{self.path}' / '{self.vy_path}' have {count} "
                                 f"band(s); band {band} was asked for.")
            self.bands = (int(band), int(band))
        elif ds.RasterCount < 2:
            raise InputError(f"PRIOR: '{self.path}' has a single band: give its vy raster too "
                             "(PRIOR_VY) or a pair product with bands vx, vy.")
        else:
            self.bands = (pair_band_index(self.path, "vx"), pair_band_index(self.path, "vy"))
        self.units = units
        to_m_per_yr(0.0, units)  # unknown units fail here, naming them
        ds = None
        self._readers = None

    def __getstate__(self):
        # sent to a Dask worker without its open readers: the pair job attaches it there again
        return dict(self.__dict__, _readers=None)

    def inputs(self):
        """The prior's files (a cluster's workers must see them)."""
        return [p for p in (self.path, self.vy_path) if p]

    def attach(self, grid):
        """Read onto ``grid`` (the product grid: one pixel per window centre) from now on."""
        self._readers = (GridReader(self.path, grid, "prior velocity field"),
                         GridReader(self.vy_path, grid, "prior vy raster") if self.vy_path
                         else None)

    def max_speed(self):
        """The largest |component| of the prior (m/yr), from the files' exact min/max."""
        top = 0.0
        for path, band in ((self.path, self.bands[0]), (self.vy_path or self.path, self.bands[1])):
            ds = open_raster(path)  # kept while its band is used (GDAL frees bands with it)
            lo, hi = ds.GetRasterBand(band).ComputeRasterMinMax(False)
            top = max(top, abs(lo), abs(hi))
        return float(to_m_per_yr(top, self.units))

    def offsets(self, window, years, pixel):
        """Expected ``(d_row, d_col)`` in working px of the product-grid ``window``
        (row_off, col_off, rows, cols): velocity x ``years`` / ``pixel`` ((dy, dx) m), rows
        downward; NaN where the prior has no value."""
        main, other = self._readers
        vx, vy = main.read_vector(self.bands[0], self.bands[1], other, window)
        vx = np.asarray(to_m_per_yr(vx, self.units), np.float64)
        vy = np.asarray(to_m_per_yr(vy, self.units), np.float64)
        return -vy * years / pixel[0], vx * years / pixel[1]


def prior_margin(prior_field, years, pixel):
    """Pixels the prior can move a window (0 without a field)."""
    if prior_field is None:
        return 0
    return int(math.ceil(prior_field.max_speed() * years / min(pixel))) + 1
