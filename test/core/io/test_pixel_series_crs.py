"""The dock's series across CRSs: a vx/vy stack clicked on a map in another CRS is shown in the
map's axes (truth: the ``zone_flow`` fixture's chord method at the clicked point); speeds are not
turned; a lone component is refused naming the file."""

import numpy as np
import pytest
from osgeo import osr

from glacier_velocity.core.errors import InputError
from glacier_velocity.core.io.grid import Grid, crs_to_wkt
from glacier_velocity.core.io.pixel_series import StackPixelReader

UTM46 = crs_to_wkt(32646)


def read_pixel_series(path, x, y, axes_crs=None):
    reader = StackPixelReader(path)
    try:
        return reader.read(x, y, axes_crs=axes_crs)
    finally:
        reader.close()


def click(zone_flow, row=12, col=30):
    """The centre of pixel (row, col) of the 45N grid, and the flow's truth there in 46N axes."""
    x0, dx, _, y0, _, dy = zone_flow.grid45.transform
    x, y = x0 + (col + 0.5) * dx, y0 + (row + 0.5) * dy
    x46, y46, _ = osr.CoordinateTransformation(zone_flow.grid45.srs(),
                                               zone_flow.grid46.srs()).TransformPoint(x, y)
    point = Grid.from_bounds(x46 - 0.5, y46 + 0.5, 1.0, 1, 1, 32646)
    tx, ty = zone_flow.truth_on(point)
    return x, y, tx[0, 0], ty[0, 0]


def test_components_shown_in_the_map_axes(zone_flow):
    vx_path, vy_path = zone_flow.stack("vx"), zone_flow.stack("vy")
    x, y, tx, ty = click(zone_flow)
    sx = read_pixel_series(vx_path, x, y, axes_crs=UTM46)
    sy = read_pixel_series(vy_path, x, y, axes_crs=UTM46)
    assert (sx.row, sx.col) == (12, 30)
    err = zone_flow.bearing(sx.values, sy.values) - zone_flow.bearing(tx, ty)
    assert np.abs(err).max() < 0.1
    np.testing.assert_allclose(np.hypot(sx.values, sy.values), 100.0, rtol=1e-6)
    assert -5.4 < sy.values.mean() < -5.0
    # in the stack's own CRS (or without axes) the values are the file's
    for axes in (None, zone_flow.grid45.crs_wkt):
        np.testing.assert_array_equal(read_pixel_series(vy_path, x, y, axes_crs=axes).values, 0.0)
    # the speed is never turned
    v = read_pixel_series(zone_flow.stack("v"), x, y, axes_crs=UTM46)
    np.testing.assert_array_equal(v.values, 100.0)


def test_lone_component_in_other_axes_is_refused(zone_flow):
    lone = zone_flow.stack("vy", name="north_only.tif")
    x, y, _, _ = click(zone_flow)
    reader = StackPixelReader(lone)
    with pytest.raises(InputError, match="north_only.tif.*vx companion"):
        reader.read(x, y, axes_crs=UTM46)
    np.testing.assert_array_equal(reader.read(x, y).values, 0.0)
    reader.close()
