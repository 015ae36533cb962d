"""Reference flow directions for the directional filter, window by window of a grid.

Three sources, all giving bearings in degrees clockwise from north (NaN where unknown, so the
filter does not test there):

* a direction raster (any CRS, e.g. ``truth/flow_direction.tif`` of the sample scene),
  resampled by nearest neighbour, its bearings turned to the grid's north across a change of CRS;
* flowlines: lines digitised in the direction of flow (upstream to downstream); each pixel
  takes the bearing of the nearest line segment within ``max_distance`` metres;
* the field itself: the direction of its NaN-aware box mean (see :func:`filters.smoothed_field`),
  computed by the filter chain, not here.
"""

import numpy as np
from osgeo import ogr
from scipy.spatial import cKDTree

from ..errors import InputError
from ..io.reader import GridReader
from ..io.vector import features_in_grid_crs


class RasterDirection:
    """Flow bearings read from a raster, resampled onto windows of ``grid`` and, when its CRS
    differs, turned to the grid's north (:func:`core.io.reader.rotate_bearings`)."""

    def __init__(self, path, grid):
        self.path, self.grid = str(path), grid
        self.reader = GridReader(path, grid, "direction raster")

    def window(self, window):
        return self.reader.read_bearings(1, window)


def _line_parts(geom):
    """Vertex arrays (n, 2) of each part of a (multi)line geometry."""
    flat = ogr.GT_Flatten(geom.GetGeometryType())
    if flat in (ogr.wkbMultiLineString, ogr.wkbGeometryCollection):
        return [p for i in range(geom.GetGeometryCount()) for p in _line_parts(geom.GetGeometryRef(i))]
    if flat == ogr.wkbLineString:
        return [np.array(geom.GetPoints())[:, :2]] if geom.GetPointCount() >= 2 else []
    return []


class FlowlineDirection:
    """Flow bearings from flowlines (drawn downstream) onto windows of ``grid``.

    Segments are sampled every half pixel; a pixel takes the bearing of the nearest sample if it
    lies within ``max_distance`` (m), else NaN.
    """

    def __init__(self, path, grid, max_distance=500.0):
        if max_distance <= 0:
            raise InputError(f"The flowline distance must be positive (m); {max_distance} given.")
        self.grid, self.max_distance = grid, float(max_distance)
        step = 0.5 * min(grid.dx, grid.dy)
        points, bearings = [], []
        for _, geom in features_in_grid_crs(path, grid, "flowlines"):
            for xy in _line_parts(geom):
                a, b = xy[:-1], xy[1:]
                length = np.hypot(*(b - a).T)
                keep = length > 0
                a, b, length = a[keep], b[keep], length[keep]
                n = np.maximum(np.ceil(length / step).astype(int), 1)
                seg = np.repeat(np.arange(len(a)), n)
                frac = (np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n) + 0.5) / n[seg]
                points.append(a[seg] + (b - a)[seg] * frac[:, None])
                d = b - a
                bearings.append(np.repeat(np.degrees(np.arctan2(d[:, 0], d[:, 1])) % 360.0, n))
        if not points:
            raise InputError(f"The flowlines '{path}' hold no lines.")
        self.tree = cKDTree(np.concatenate(points))
        self.bearings = np.concatenate(bearings).astype(np.float32)

    def window(self, window):
        xs, ys = self.grid.subgrid(*window).centres()
        xx, yy = np.meshgrid(xs, ys)
        dist, idx = self.tree.query(np.column_stack([xx.ravel(), yy.ravel()]),
                                    distance_upper_bound=self.max_distance)
        out = np.full(dist.shape, np.nan, np.float32)
        near = np.isfinite(dist)
        out[near] = self.bearings[idx[near]]
        return out.reshape(xx.shape)
