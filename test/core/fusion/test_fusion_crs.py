"""Fusion, gap filling and weight calibration with stacks in another UTM zone than the output
grid: their vx/vy are turned by the grid convergence (truth: the chord method of the
``zone_flow`` fixture, a flow due grid east in 45N seen from a 46N grid)."""

import numpy as np
import pytest

from glacier_velocity.core.errors import InputError
from glacier_velocity.core.fusion.calibration import calibrate
from glacier_velocity.core.fusion.gapfill import gapfill_stack
from glacier_velocity.core.fusion.weighted import fuse_stacks
from glacier_velocity.core.io.products import read_stack

TOL = 100.0 * np.radians(0.1)  # a 0.1° direction error of a 100 m/yr flow, in m/yr


def truth_stack(zone_flow, quantity, name, offset=0.0, hole=None, sensor="landsat"):
    values = (zone_flow.truth_vx if quantity == "vx" else zone_flow.truth_vy) + offset
    if hole is not None:
        values = values.copy()
        values[hole] = np.nan
    return zone_flow.stack(quantity, name=name, grid=zone_flow.grid46, values=values, sensor=sensor)


def test_fuse_turns_a_stack_of_another_zone(zone_flow):
    zone_flow.stack("vx"), zone_flow.stack("vy")  # the 45N source, companions by name
    fused = {}
    for q in ("vx", "vy"):
        out = zone_flow.path(f"fused_{q}.tif")
        fuse_stacks([truth_stack(zone_flow, q, f"p46_{q}.tif"), zone_flow.path(f"flow_{q}.tif")],
                    out, "0.5,0.5")
        info, fused[q] = read_stack(out)
        assert info.grid.same_as(zone_flow.grid46) and info.quantity == q
    for q, truth in (("vx", zone_flow.truth_vx), ("vy", zone_flow.truth_vy)):
        assert np.abs(fused[q] - truth).max() < 0.01  # the 45N stack agrees with the truth
    err = zone_flow.bearing(fused["vx"], fused["vy"]) - zone_flow.bearing(zone_flow.truth_vx,
                                                                          zone_flow.truth_vy)
    assert np.abs(err).max() < 0.1
    assert -5.4 < fused["vy"].mean() < -5.0


def test_fuse_refuses_a_lone_component_of_another_zone(zone_flow):
    lone = zone_flow.stack("vy", name="s1_north.tif")
    with pytest.raises(InputError, match="s1_north.tif"):
        fuse_stacks([truth_stack(zone_flow, "vy", "p46_vy.tif"), lone],
                    zone_flow.path("f.tif"), "0.5,0.5")


def test_gapfill_with_an_auxiliary_of_another_zone(zone_flow):
    zone_flow.stack("vx"), zone_flow.stack("vy")
    hole = (slice(15, 21), slice(15, 21))
    for q, truth in (("vx", zone_flow.truth_vx), ("vy", zone_flow.truth_vy)):
        fused = truth_stack(zone_flow, q, f"fused46_{q}.tif", hole=hole)
        out = zone_flow.path(f"filled_{q}.tif")
        summary = gapfill_stack(fused, zone_flow.path(f"flow_{q}.tif"), out)
        filled = read_stack(out)[1]
        assert all(s["filled"] == 36 for s in summary)
        np.testing.assert_allclose(filled[:, hole[0], hole[1]],
                                   np.broadcast_to(truth[hole], (2, 6, 6)), atol=TOL / 10)


def test_calibration_on_a_uav_grid_of_another_zone(zone_flow):
    zone_flow.stack("vx"), zone_flow.stack("vy")
    uav = truth_stack(zone_flow, "vy", "uav46_vy.tif", sensor="uav")
    biased = truth_stack(zone_flow, "vy", "l46_vy.tif", offset=3.0)
    cal = calibrate(uav, [biased, zone_flow.path("flow_vy.tif")])
    # the 45N stack, turned, is the truth: it takes all the weight (unturned, vy = 0, it got none)
    np.testing.assert_allclose(cal.weights, [0.0, 1.0], atol=1e-3)
