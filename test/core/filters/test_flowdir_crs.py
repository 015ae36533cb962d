"""Reference bearings from a direction raster in another CRS are turned to the grid's north
(truth: the ``zone_flow`` fixture's chord method, a flow due grid east in UTM 45N)."""

import numpy as np

from glacier_velocity.core.filters.flowdir import RasterDirection
from glacier_velocity.core.io.raster import write_raster


def test_direction_raster_of_the_next_zone_is_turned(zone_flow):
    # the flow's bearing measured on the 46N grid (~93°) read onto the 45N grid: due east, 90°
    truth46 = zone_flow.bearing(zone_flow.truth_vx, zone_flow.truth_vy).astype(np.float32)
    path = write_raster(zone_flow.path("flowdir46.tif"), zone_flow.grid46, truth46)
    b = RasterDirection(path, zone_flow.grid45).window((0, 0, 40, 40))
    ok = np.isfinite(b)
    assert ok.mean() > 0.9 and np.abs(truth46 - 90).min() > 2.5  # unturned it would be ~93°
    assert np.abs(b[ok] - 90.0).max() < 0.1
