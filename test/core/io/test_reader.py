"""The one reader: bands onto any grid by nearest neighbour, vx/vy and bearings turned by the grid
convergence across a change of CRS (truth: the chord method of the ``zone_flow`` fixture), lone
components refused, companions found by name."""

import numpy as np
import pytest

from glacier_velocity.core.errors import InputError
from glacier_velocity.core.io.grid import Grid
from glacier_velocity.core.io.pairsource import PairSource
from glacier_velocity.core.io.products import read_stack_info, write_stack
from glacier_velocity.core.io.raster import read_band, write_raster
from glacier_velocity.core.io.reader import (ComponentReader, GridReader, StackReader,
                                             axis_directions, companion_path, rotate_bearings)


def inside(arr):
    return np.isfinite(arr)


def test_convergence_matches_the_chord_truth_per_pixel(zone_flow):
    g45, g46 = zone_flow.grid45, zone_flow.grid46
    ex, ey, nx, ny = axis_directions(g45, g46)
    bearing = np.degrees(np.arctan2(ex, ey))  # of the source's east in 46N
    truth = zone_flow.bearing(zone_flow.truth_vx, zone_flow.truth_vy)
    assert np.abs(bearing - truth).max() < 0.01
    assert 92.8 < truth.mean() < 93.2  # ~3° convergence between the zones at 29.6° N
    # conformal: north stays perpendicular to east
    np.testing.assert_allclose(ex * nx + ey * ny, 0.0, atol=1e-6)
    # a window gets the same directions as the whole grid
    w = axis_directions(g45, g46, (5, 7, 9, 11))
    np.testing.assert_allclose(w[0], ex[5:14, 7:18], atol=1e-9)


def test_pair_product_onto_another_zone_keeps_its_true_direction(zone_flow):
    src = PairSource(zone_flow.pair())
    vx, vy, snr = src.warp(zone_flow.grid46)
    ok = inside(vx)
    assert ok.mean() > 0.8
    err = zone_flow.bearing(vx, vy)[ok] - zone_flow.bearing(zone_flow.truth_vx,
                                                            zone_flow.truth_vy)[ok]
    assert np.abs(err).max() < 0.1
    np.testing.assert_allclose(np.hypot(vx, vy)[ok], 100.0, rtol=1e-5)  # speed kept
    assert -5.4 < vy[ok].mean() < -5.0  # the example: not 0
    assert np.all(snr[ok] == 1.0)
    # same CRS: values as read
    same = src.warp(zone_flow.grid45, (2, 3, 5, 6))
    np.testing.assert_array_equal(same[0], 100.0)
    np.testing.assert_array_equal(same[1], 0.0)


def test_vx_and_vy_stacks_with_companion_by_name(zone_flow):
    vx_path, vy_path = zone_flow.stack("vx"), zone_flow.stack("vy")
    assert companion_path(vx_path, "vx") == vy_path and companion_path(vy_path, "vy") == vx_path
    assert companion_path(zone_flow.stack("v"), "v") is None
    truth_x, truth_y = zone_flow.truth_vx, zone_flow.truth_vy
    for path, truth in ((vx_path, truth_x), (vy_path, truth_y)):
        r = StackReader(read_stack_info(path), zone_flow.grid46)
        for b in (1, 2):
            arr = r.band(b)
            ok = inside(arr)
            assert ok.mean() > 0.8
            np.testing.assert_allclose(arr[ok], truth[ok], atol=0.1 * np.pi / 180 * 100)
    vy = StackReader(read_stack_info(vy_path), zone_flow.grid46).read(zone_flow.intervals[0])
    assert -5.4 < np.nanmean(vy) < -5.0
    # windows read the same values as the whole band
    r = ComponentReader(vy_path, zone_flow.grid46, "vy")
    np.testing.assert_array_equal(r.band(1, (4, 6, 10, 12)), r.band(1)[4:14, 6:18])


def test_speed_stack_needs_no_companion_and_is_not_rotated(zone_flow):
    r = StackReader(read_stack_info(zone_flow.stack("v")), zone_flow.grid46)
    v = r.band(1)
    assert inside(v).mean() > 0.8 and np.all(v[inside(v)] == 100.0)


def test_lone_component_across_crs_is_refused_naming_the_file(zone_flow):
    vx_path = zone_flow.stack("vx", name="lone_vx.tif")
    with pytest.raises(InputError, match="lone_vx.tif.*vy companion"):
        StackReader(read_stack_info(vx_path), zone_flow.grid46)
    # on its own CRS it needs none
    r = StackReader(read_stack_info(vx_path), zone_flow.grid45)
    assert np.all(r.band(1) == 100.0)
    # an explicit companion
    vy_path = zone_flow.stack("vy", name="other_name.tif")
    arr = StackReader(read_stack_info(vx_path), zone_flow.grid46, companion=vy_path).band(2)
    ok = inside(arr)
    np.testing.assert_allclose(arr[ok], zone_flow.truth_vx[ok], atol=0.01)
    # a companion on another grid is refused
    off = Grid.from_bounds(zone_flow.grid45.bounds[0], zone_flow.grid45.bounds[3], 60, 10, 10,
                           32645)
    bad = zone_flow.stack("vy", name="coarse.tif", grid=off, values=0.0)
    with pytest.raises(InputError, match="coarse.tif.*not on the same grid"):
        StackReader(read_stack_info(vx_path), zone_flow.grid46, companion=bad)


def test_bearings_are_rotated(zone_flow):
    east = np.full(zone_flow.grid45.shape, 90.0, np.float32)
    east[0, 0] = np.nan
    path = write_raster(zone_flow.path("flowdir.tif"), zone_flow.grid45, east)
    b = GridReader(path, zone_flow.grid46).read_bearings(1)
    ok = inside(b)
    truth = zone_flow.bearing(zone_flow.truth_vx, zone_flow.truth_vy)
    assert np.abs(b[ok] - truth[ok]).max() < 0.1 and np.isnan(b).any()
    np.testing.assert_allclose(rotate_bearings(np.array([[359.9]]), zone_flow.grid45,
                                               zone_flow.grid45), 359.9, atol=1e-4)


def test_same_grid_is_a_plain_read(zone_flow, tmp_path):
    data = np.arange(1600, dtype=np.float32).reshape(40, 40)
    path = write_stack(str(tmp_path / "s.tif"), zone_flow.grid45, data[None], zone_flow.intervals[:1])
    r = GridReader(path, zone_flow.grid45)
    assert r.same_grid
    np.testing.assert_array_equal(r.read(1, (3, 4, 5, 6)), read_band(path, 1, (3, 4, 5, 6)))


def test_geographic_axes_give_the_textbook_convergence(zone_flow):
    # UTM 45N grid north seen in true (geographic) axes at 89.6° E, 29.6° N: bearing
    # γ = atan(tan(λ − λ0) sin φ) with λ0 = 87° E (its ellipsoidal terms are below 1e-4° here)
    from osgeo import osr

    from glacier_velocity.core.io.grid import crs_to_wkt
    from glacier_velocity.core.io.reader import directions_at

    geo = osr.SpatialReference()
    geo.ImportFromEPSG(4326)
    geo.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    x, y, _ = osr.CoordinateTransformation(geo, zone_flow.grid45.srs()).TransformPoint(89.6, 29.6)
    ex, ey, nx, ny = directions_at(zone_flow.grid45, crs_to_wkt(4326), [[x, y]])
    gamma = np.degrees(np.arctan(np.tan(np.radians(2.6)) * np.sin(np.radians(29.6))))
    assert abs(np.degrees(np.arctan2(nx[0], ny[0])) - gamma) < 1e-3
    assert abs(ex[0] * nx[0] + ey[0] * ny[0]) < 1e-5  # measured in ground metres: perpendicular
    # and back: a geographic grid's true east, seen in 45N, is γ the other way
    g4326 = Grid.from_bounds(89.6, 29.6, 0.001, 1, 1, 4326)
    ex, ey, nx, ny = directions_at(g4326, zone_flow.grid45.crs_wkt, [[89.6005, 29.5995]])
    assert abs(np.degrees(np.arctan2(nx[0], ny[0])) + gamma) < 1e-3
