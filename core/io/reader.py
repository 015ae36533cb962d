"""The one reader: any band of a pair product or velocity stack brought onto any target grid.

:class:`GridReader` reads band ``b`` of one raster onto a window of a target :class:`Grid`: a plain
windowed read when the raster already is on that grid, else a nearest-neighbour warp of just that
window (every output value is an input value; memory holds one window). The dataset stays open
(one per thread: GDAL datasets are not thread-safe) so GDAL's block cache serves band after band.

Vector quantities change with the CRS. Velocity components ``vx``/``vy`` (east/north of the
source CRS's axes, m/yr) and bearings (degrees clockwise from the source's north) are turned to
the target CRS's axes by the local grid convergence: per output pixel, the directions of the
source's east and north in the target CRS (:func:`axis_directions`: unit steps transformed with
OSR every 16 pixels, interpolated between, ~1e-8° off), and a vector ``vx·ê + vy·n̂`` expressed
in the target's axes (:func:`rotate_components`). The speed needs
no rotation. A component cannot be turned without its companion, so :class:`ComponentReader`
refuses a lone vx or vy stack across a change of CRS unless the companion is given or found by
the stack naming convention (``…_vx.tif`` ↔ ``…_vy.tif``, :func:`companion_path`).
"""

import os
import re
import threading

import numpy as np
from osgeo import osr

from ..errors import InputError
from .grid import Grid, crs_name, same_crs
from .products import to_m_per_yr
from .raster import open_raster, read_bands, warp_to_grid

COMPONENTS = ("vx", "vy")
ROTATION_STEP = 16  # pixels between exact convergence computations (it varies by ~1e-4°/km)
DIRECTION_CACHE_PIXELS = 1 << 22  # per-pixel directions kept for windows up to this (64 MB)
_SUFFIX = re.compile(r"([_-])(vx|vy)(?=\.[^.]+$|$)", re.IGNORECASE)


# ---------------------------------------------------------------------------- rotation

def _metric_scale(srs, lat):
    """East-step scale of a CRS relative to its north step, in ground metres per unit: for a
    geographic CRS (degrees) N cos φ / M (prime-vertical over meridian radius of curvature of its
    ellipsoid), else 1."""
    if not srs.IsGeographic():
        return 1.0
    inv_f = srs.GetInvFlattening()
    e2 = 0.0 if not inv_f else (2.0 - 1.0 / inv_f) / inv_f
    s2 = np.sin(np.radians(lat)) ** 2
    return np.cos(np.radians(lat)) * (1.0 - e2 * s2) / (1.0 - e2)


def directions_at(source_grid, crs_wkt, points):
    """Unit vectors, in the axes of CRS ``crs_wkt``, of the source CRS's east and north at
    ``points`` ((n, 2) in the source CRS): ``(ex, ey, nx, ny)`` float64 arrays of n. A step of
    one source pixel east and north is transformed; geographic CRSs are measured in local ground
    metres (:func:`_metric_scale`)."""
    src = source_grid.srs()
    dst = Grid((0.0, 1.0, 0.0, 0.0, 0.0, -1.0), (1, 1), crs_wkt).srs()
    to_dst = osr.CoordinateTransformation(src, dst)
    ps = np.asarray(points, np.float64).reshape(-1, 2)
    h = max(min(source_grid.dx, source_grid.dy), 1e-9)
    src_scale = _metric_scale(src, ps[:, 1])
    base = np.array(to_dst.TransformPoints(ps))[:, :2]
    out = []
    for offset in (np.column_stack([np.full(len(ps), h) / src_scale, np.zeros(len(ps))]),
                   np.column_stack([np.zeros(len(ps)), np.full(len(ps), h)])):
        moved = np.array(to_dst.TransformPoints(ps + offset))[:, :2] - base
        moved[:, 0] *= _metric_scale(dst, base[:, 1])
        moved /= np.hypot(moved[:, 0], moved[:, 1])[:, None]
        out += [moved[:, 0], moved[:, 1]]
    return tuple(out)


def _linear_index(n, knots):
    """``(j, t)``: positions 0..n-1 lie between knots ``j`` and ``j + 1`` at fraction ``t``
    (``knots`` sorted integer positions, the first 0 and the last n-1)."""
    pos = np.arange(n)
    if knots.size == 1:
        return np.zeros(n, int), np.zeros(n)
    j = np.clip(np.searchsorted(knots, pos, side="right") - 1, 0, knots.size - 2)
    return j, (pos - knots[j]) / (knots[j + 1] - knots[j])


def _bilinear(values, rows, cols, shape):
    """``values`` given at knots ``rows`` x ``cols`` interpolated bilinearly onto ``shape``,
    one axis after the other (two gathers, no per-pixel coordinate search)."""
    jr, tr = _linear_index(shape[0], rows)
    jc, tc = _linear_index(shape[1], cols)
    v = np.vstack([values, values[-1:]])  # a knot past the end (weight 0 for a single knot)
    v = v[jr] * (1.0 - tr)[:, None] + v[jr + 1] * tr[:, None]
    v = np.hstack([v, v[:, -1:]])
    return v[:, jc] * (1.0 - tc) + v[:, jc + 1] * tc


def direction_lattice(source_grid, grid, window=None, step=ROTATION_STEP):
    """The exact :func:`directions_at` every ``step`` pixels of ``grid``'s window (and at its last
    row and column): ``(rows, cols, (ex, ey, nx, ny))``, the knots' pixel rows and columns in
    the window and four arrays of (rows, cols). Small (1/step² of the window), so readers keep it
    per window instead of transforming points again for every band."""
    g = grid if window is None else grid.subgrid(*window)
    to_src = osr.CoordinateTransformation(g.srs(), source_grid.srs())
    rows = np.unique(np.r_[np.arange(0, g.rows, step), g.rows - 1])
    cols = np.unique(np.r_[np.arange(0, g.cols, step), g.cols - 1])
    xs, ys = g.centres()
    px, py = np.meshgrid(xs[cols], ys[rows])
    ps = np.array(to_src.TransformPoints(np.column_stack([px.ravel(), py.ravel()])))[:, :2]
    dirs = directions_at(source_grid, g.crs_wkt, ps)
    return rows, cols, tuple(d.reshape(px.shape) for d in dirs)


def axis_directions(source_grid, grid, window=None, step=ROTATION_STEP, lattice=None):
    """:func:`directions_at` every pixel of ``grid`` (or a window ``(row_off, col_off, rows,
    cols)`` of it), as arrays of the window's shape: the :func:`direction_lattice` (given, or
    computed) interpolated bilinearly (float32)."""
    if window is None:
        window = (0, 0) + tuple(grid.shape)
    rows, cols, dirs = lattice or direction_lattice(source_grid, grid, window, step)
    # unit vectors ``step`` pixels apart differ by ~1e-6 rad: their linear blend keeps unit
    # length to ~1e-13, so no renormalisation is needed
    return tuple(_bilinear(d, rows, cols, window[2:]).astype(np.float32) for d in dirs)


def rotate_components(vx, vy, source_grid, grid, window=None, lattice=None, directions=None):
    """``(vx, vy)`` given in ``source_grid``'s CRS axes (float arrays on ``grid``'s window)
    expressed in ``grid``'s CRS axes (float32); unchanged when both CRSs are the same. In a
    conformal projection such as UTM this is a rotation by the grid convergence (speed kept).
    ``lattice`` (the window's :func:`direction_lattice`) or ``directions`` (its
    :func:`axis_directions`), when already known."""
    vx, vy = np.asarray(vx, np.float32), np.asarray(vy, np.float32)
    if same_crs(source_grid.crs_wkt, grid.crs_wkt):
        return vx, vy
    ex, ey, nx, ny = directions or axis_directions(source_grid, grid, window, lattice=lattice)
    return vx * ex + vy * nx, vx * ey + vy * ny


def rotate_bearings(bearings, source_grid, grid, window=None, directions=None):
    """Bearings (degrees clockwise from north, NaN kept) measured in ``source_grid``'s CRS, as
    bearings in ``grid``'s CRS (0–360), turned like velocity components."""
    b = np.radians(np.asarray(bearings, np.float64))
    x, y = rotate_components(np.sin(b), np.cos(b), source_grid, grid, window,
                             directions=directions)
    return (np.degrees(np.arctan2(x, y)) % 360.0).astype(np.float32)


# ---------------------------------------------------------------------------- readers

class GridReader:
    """Bands of one raster read onto windows of a target ``grid`` (nearest neighbour), as
    float32 with NaN NoData in the file's units. ``grid`` None reads on the raster's own grid."""

    def __init__(self, path, grid=None, what="raster"):
        self.path, self.what = str(path), what
        ds = open_raster(self.path, what)
        self.source_grid = Grid.from_dataset(ds, self.path)
        self.count = ds.RasterCount
        self.grid = grid or self.source_grid
        self.same_grid = self.source_grid.same_as(self.grid)
        self.same_crs = same_crs(self.source_grid.crs_wkt, self.grid.crs_wkt)
        self._local = threading.local()
        self._local.ds = ds
        self._lattices = {}  # window -> direction_lattice, when the CRS changes
        self._last = None  # (window, axis_directions) of the last window turned

    def dataset(self):
        """This thread's open dataset of the raster."""
        ds = getattr(self._local, "ds", None)
        if ds is None:
            ds = self._local.ds = open_raster(self.path, self.what)
        return ds

    def read(self, band, window=None):
        """Band ``band`` (1-based) on ``grid`` or its ``window`` (row_off, col_off, rows, cols)."""
        return self.read_bands([band], window)[0]

    def read_bands(self, bands, window=None):
        """Bands (1-based list) as a ``(band, rows, cols)`` array, all from one warp, so the
        values of a pixel come from the same source pixel."""
        if self.same_grid:
            return read_bands(self.dataset(), bands, window)
        return warp_to_grid(self.dataset(), self.grid, "nearest", list(bands), window)

    def directions(self, window=None):
        """:func:`axis_directions` of a window of the target grid. The small lattice of exact
        values is kept per window; the per-pixel arrays of the last window (when it has at most
        :data:`DIRECTION_CACHE_PIXELS`), so band after band of one window costs one
        interpolation."""
        key = tuple(window) if window is not None else None
        last = self._last  # one read: another thread may replace it
        if last is not None and last[0] == key:
            return last[1]
        if key not in self._lattices:
            self._lattices[key] = direction_lattice(self.source_grid, self.grid, window)
        dirs = axis_directions(self.source_grid, self.grid, window, lattice=self._lattices[key])
        shape = self.grid.shape if window is None else window[2:]
        if shape[0] * shape[1] <= DIRECTION_CACHE_PIXELS:
            self._last = (key, dirs)
        return dirs

    def turn(self, vx, vy, window=None):
        """Components read from this raster (source CRS axes) in the target CRS's axes."""
        if self.same_crs:
            return vx, vy
        return rotate_components(vx, vy, self.source_grid, self.grid, window,
                                 directions=self.directions(window))

    def turn_errors(self, ex, ey, window=None):
        """1σ errors of components read from this raster (independent, source CRS axes) as the
        1σ of the components in the target CRS's axes: the variances turned with the squared
        direction cosines."""
        if self.same_crs:
            return ex, ey
        dx, dy, nx, ny = self.directions(window)
        ex, ey = np.asarray(ex, np.float32), np.asarray(ey, np.float32)
        return np.hypot(ex * dx, ey * nx), np.hypot(ex * dy, ey * ny)

    def read_vector(self, band_x, band_y, y_reader=None, window=None):
        """``(vx, vy)`` of bands ``band_x`` (this raster) and ``band_y`` (of ``y_reader``, default
        this raster) on ``grid``, turned to its CRS's axes (file units)."""
        if y_reader is None or y_reader is self:
            vx, vy = self.read_bands([band_x, band_y], window)
        else:
            vx, vy = self.read(band_x, window), y_reader.read(band_y, window)
        return self.turn(vx, vy, window)

    def read_bearings(self, band=1, window=None):
        """Bearings (degrees from north) of ``band`` on ``grid``, turned to its CRS's north."""
        b = self.read(band, window)
        if self.same_crs:
            return b
        return rotate_bearings(b, self.source_grid, self.grid, window, self.directions(window))


def companion_path(path, quantity):
    """The file of the other component by the stack naming convention (``…_vx.tif`` ↔
    ``…_vy.tif``), when ``path`` is named after ``quantity`` and that file exists; else None."""
    if quantity not in COMPONENTS:
        return None
    head, name = os.path.split(str(path))
    m = _SUFFIX.search(name)
    if not m or m.group(2).lower() != quantity:
        return None
    other = "vy" if quantity == "vx" else "vx"
    other = other.upper() if m.group(2).isupper() else other
    candidate = os.path.join(head, name[:m.start(2)] + other + name[m.end(2):])
    return candidate if os.path.exists(candidate) else None


class ComponentReader:
    """Bands of one quantity (v, vx, vy or another scalar) of a raster on a target grid, in m/yr
    when ``units`` is given (else file units).

    Reading ``vx`` or ``vy`` across a change of CRS needs the other component at the same step:
    ``companion`` (its path; band ``b`` of the companion pairs with band ``b`` unless
    ``companion_bands`` maps them), else the file found by :func:`companion_path`, else
    :class:`InputError` naming the file. Speed and other scalars are only resampled."""

    def __init__(self, path, grid=None, quantity="v", units=None, companion=None,
                 companion_bands=None, what="velocity stack"):
        self.path, self.quantity, self.units = str(path), quantity, units
        self.companion_bands = companion_bands
        # checked before any dataset is kept open: an error's traceback must not hold datasets
        # (QGIS tears GDAL down at exit before it would release them)
        companion = self._companion(grid, companion, what)
        self.reader = GridReader(path, grid, what)
        self.grid, self.source_grid = self.reader.grid, self.reader.source_grid
        self.other = None
        if companion is not None:
            self.other = (self.reader if str(companion) == self.path
                          else GridReader(companion, grid, f"{quantity} companion"))

    def _companion(self, grid, companion, what):
        """The companion's path when vx/vy change CRS (None otherwise), checked."""
        if self.quantity not in COMPONENTS:
            return None
        ds = open_raster(self.path, what)
        source, count = Grid.from_dataset(ds, self.path), ds.RasterCount
        ds = None
        target = grid or source
        if same_crs(source.crs_wkt, target.crs_wkt):
            return None
        companion = companion or companion_path(self.path, self.quantity)
        if not companion:
            other = "vy" if self.quantity == "vx" else "vx"
            raise InputError(
                f"'{self.path}' holds {self.quantity} only and is in {crs_name(source.crs_wkt)}, "
                f"not the target's {crs_name(target.crs_wkt)}: a velocity component cannot be "
                f"turned to the new CRS's axes without its {other} companion. Put the {other} "
                f"stack beside it, named like it with _{other} (e.g. flow_vx.tif and "
                f"flow_vy.tif), or give it explicitly (Harmonise: INPUT_COMPANION), or use a grid "
                f"in {crs_name(source.crs_wkt)}.")
        if str(companion) != self.path:
            ds = open_raster(companion, f"{self.quantity} companion")
            other_grid, other_count = Grid.from_dataset(ds, str(companion)), ds.RasterCount
            ds = None
            if not other_grid.same_as(source):
                raise InputError(f"The companion '{companion}' of '{self.path}' is not on the "
                                 "same grid.")
            if self.companion_bands is None and other_count != count:
                raise InputError(f"The companion '{companion}' has {other_count} band(s) but "
                                 f"'{self.path}' has {count}: one band per time step.")
        return companion

    def band(self, band, window=None):
        """Band ``band`` (1-based) of the quantity on the target grid (or its window)."""
        if self.other is None:
            arr = self.reader.read(band, window)
        else:
            band_other = self.companion_bands[band] if self.companion_bands else band
            if self.quantity == "vx":
                arr = self.reader.read_vector(band, band_other, self.other, window)[0]
            else:
                arr = self.other.read_vector(band_other, band, self.reader, window)[1]
        return arr if self.units is None else np.asarray(to_m_per_yr(arr, self.units), np.float32)


class StackReader(ComponentReader):
    """A velocity stack (:class:`~core.io.products.StackInfo`) read band by band on ``grid``
    in m/yr: ``band(b)`` by 1-based index, ``read(interval)`` the band of exactly that interval."""

    def __init__(self, info, grid=None, companion=None):
        super().__init__(info.path, grid, info.quantity, info.units, companion)
        self.info = info
        self.band_of = {iv: i + 1 for i, iv in enumerate(info.intervals)}

    def read(self, interval, window=None):
        """The band of exactly ``interval`` in m/yr, or None when the stack has none."""
        b = self.band_of.get(interval)
        return None if b is None else self.band(b, window)
