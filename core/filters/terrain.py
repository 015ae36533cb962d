"""SAR layover and shadow from a DEM, and the correlation windows they contaminate.

A side-looking radar sees the ground along a look direction, given here as the **look bearing**:
the horizontal compass bearing from the ground towards the sensor, degrees clockwise from north,
and the **incidence angle** from the vertical (degrees). A slope facing the sensor more steeply
than the incidence angle is in *layover* (its top is imaged before its foot), a slope facing away
more steeply than 90° − incidence is in *shadow* (no echo): neither carries a trackable pattern,
but speckle keeps a high correlation peak there, so no SNR threshold removes them.

Sentinel-1 is right-looking, so the look bearing is the satellite heading + 270°: ascending
passes (heading about 347° at mid latitudes) look east from the west, bearing about 257°;
descending passes (heading about 193°) look west from the east, bearing about 103°. IW swaths
span incidence angles of 29°–46°. The defaults (bearing 280°, incidence 39°) are the geometry of
the plugin's sample scenes: the radar west of the ground, looking east, i.e. an ascending pass
(heading about 10°; for real descending data give about 103°).

A vector whose correlation window covers more than a share of layover or shadow pixels is
contaminated: :data:`DEFAULT_SHARE` is measured on the valley sample scene (figures beside it).
"""

import math

import numpy as np
from scipy import ndimage

from ..errors import InputError
from ..io.grid import Grid
from ..io.raster import open_raster, warp_to_grid

METRES_PER_DEGREE = 111320.0  # a degree of latitude, m: a geographic DEM's pixel in metres
# pixels of the refined grid the DEM is resampled to at most: about 40 bytes each in the slope
# computation, so 16 Mpx keep one mask under ~650 MB whatever the DEM's resolution
MAX_FINE_PIXELS = 16_000_000

DEFAULT_LOOK_BEARING = 280.0  # degrees, ground -> sensor
DEFAULT_INCIDENCE = 39.0  # degrees from vertical
# share of a window's pixels in layover or shadow above which its vector is dropped. Valley
# scene, full model's Sentinel-1 monthly stack (64 px windows of 10 m) on glaciers, by the share
# its window has in this DEM's layover/shadow: 0 -> bias -7.2 m/yr (the window's margin
# smoothing), 0.05-0.1 -5.8, 0.1-0.2 +2.1, 0.2-0.3 +17.8, 0.3-0.5 +27.2 (RMSE 23.5 -> 37.4).
DEFAULT_SHARE = 0.2


def check_geometry(look_bearing, incidence):
    """Refuse a look bearing outside [0, 360) or an incidence outside (0, 90) degrees."""
    if not (np.isfinite(look_bearing) and 0.0 <= look_bearing < 360.0):
        raise InputError(f"LOOK_BEARING must be a bearing in [0, 360) degrees, got {look_bearing}.")
    if not (np.isfinite(incidence) and 0.0 < incidence < 90.0):
        raise InputError(f"INCIDENCE must be an angle between 0 and 90 degrees (exclusive), got "
                         f"{incidence}.")


def layover_shadow(dem, dx, dy, look_bearing=DEFAULT_LOOK_BEARING, incidence=DEFAULT_INCIDENCE):
    """``(layover, shadow)`` boolean arrays of a DEM (m, NaN = no data) on a north-up grid of
    pixel size ``dx``, ``dy`` (m): the terrain slope towards the sensor (degrees, positive when
    the ground rises towards it) above ``incidence``, or below -(90 - ``incidence``)."""
    check_geometry(look_bearing, incidence)
    z = np.asarray(dem, np.float64)
    if z.ndim != 2 or min(z.shape) < 2:
        raise InputError("DEM: a 2-D elevation raster of at least 2 x 2 pixels is needed.")
    d_row, d_east = np.gradient(z, abs(dy), abs(dx))
    b = math.radians(look_bearing)
    towards = np.degrees(np.arctan(d_east * math.sin(b) - d_row * math.cos(b)))
    with np.errstate(invalid="ignore"):
        return towards > incidence, towards < -(90.0 - incidence)


def contaminated(mask, footprint_px, share=DEFAULT_SHARE):
    """Pixels whose centred square window of ``footprint_px`` pixels has more than ``share`` of
    its pixels in ``mask`` (bool): the vectors a correlation window of that size spoils."""
    if not 0.0 <= share < 1.0:
        raise InputError(f"LAYOVER_SHARE must be in [0, 1), got {share}.")
    size = max(1, int(round(footprint_px)))
    frac = ndimage.uniform_filter(np.asarray(mask, np.float32), size, mode="nearest")
    return frac > share + 1e-6


def window_footprint_m(metadata, path):
    """Side (m) of the correlation window of a pair product from its metadata ``WINDOW``
    (``64x64`` or ``64``, pixels) and ``PIXEL_M`` (the images' pixel size, m)."""
    try:
        window = float(str(metadata["WINDOW"]).lower().split("x")[0])
        pixel = float(metadata["PIXEL_M"])
    except (KeyError, ValueError):
        raise InputError(f"Pair product '{path}' does not state its correlation window (metadata "
                         "WINDOW and PIXEL_M, as the correlation writes them): the layover mask "
                         "needs the window's footprint.") from None
    return window * pixel


class SarTerrainMask:
    """Layover/shadow contamination from a user DEM (any grid and CRS), on product grids.

    :meth:`on` gives, for a grid and a correlation window footprint (m), the pixels whose window
    covers more than ``share`` of layover or shadow; the DEM is resampled (bilinear) to the grid
    refined to about the DEM's own pixel size (:meth:`refinement`), so slopes keep the DEM's
    resolution. Masks are cached per grid and footprint.
    """

    def __init__(self, dem_path, look_bearing=DEFAULT_LOOK_BEARING, incidence=DEFAULT_INCIDENCE,
                 share=DEFAULT_SHARE):
        check_geometry(look_bearing, incidence)
        if not 0.0 <= share < 1.0:
            raise InputError(f"LAYOVER_SHARE must be in [0, 1), got {share}.")
        self.path = str(dem_path)
        self.look_bearing, self.incidence, self.share = look_bearing, incidence, share
        dem = Grid.from_dataset(open_raster(self.path, "DEM"), self.path)
        # pixel in metres (a geographic DEM's north step): the refinement of :meth:`on`
        self.dem_pixel = (abs(dem.dy) * METRES_PER_DEGREE if dem.srs().IsGeographic()
                          else abs(dem.dx))
        self._cache = {}
        self.uncovered = 0.0  # the largest share of a grid seen so far that the DEM misses

    def refinement(self, grid):
        """Integer factor the DEM refines ``grid`` by: its pixel over the DEM's (m), within
        :data:`MAX_FINE_PIXELS` for the refined grid."""
        k = max(1, int(round(grid.dx / self.dem_pixel)))
        return max(1, min(k, int(math.sqrt(MAX_FINE_PIXELS / (grid.rows * grid.cols)))))

    def on(self, grid, footprint_m):
        """Boolean mask on ``grid``: True where a window of ``footprint_m`` metres is spoilt."""
        key = (grid.transform, grid.shape, grid.crs_wkt, round(float(footprint_m), 3))
        if key not in self._cache:
            k = self.refinement(grid)
            fine = Grid((grid.transform[0], grid.dx / k, 0.0, grid.transform[3], 0.0,
                         -grid.dy / k), (grid.rows * k, grid.cols * k), grid.crs_wkt)
            dem = warp_to_grid(self.path, fine, "bilinear")[0]
            if not np.isfinite(dem).any():
                raise InputError(f"DEM '{self.path}' does not overlap the pair products' grid.")
            self.uncovered = max(self.uncovered, float(np.mean(~np.isfinite(dem))))
            lay, sha = layover_shadow(dem, fine.dx, fine.dy, self.look_bearing, self.incidence)
            bad = contaminated(lay | sha, footprint_m / fine.dx, self.share)
            self._cache[key] = bad[k // 2::k, k // 2::k]
        return self._cache[key]

    def for_pair(self, source, grid):
        """:meth:`on` for a pair product (a :class:`core.io.pairsource.PairSource`) with its own
        window footprint: the ``mask`` of :func:`core.timeseries.monthly.monthly_stacks`."""
        return self.on(grid, window_footprint_m(getattr(source, "metadata", {}), source.path))
