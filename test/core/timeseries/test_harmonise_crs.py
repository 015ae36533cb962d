"""Harmonisation across a UTM zone boundary: pair products and vx/vy stacks keep the flow's true
direction (truth: the chord method of the ``zone_flow`` fixture); a lone component is refused."""

import os

import numpy as np
import pytest

from glacier_velocity.core.errors import InputError
from glacier_velocity.core.io.products import read_pair_product, read_stack
from glacier_velocity.core.timeseries.harmonise import harmonise


def bearing_error(zone_flow, vx, vy):
    ok = np.isfinite(vx) & np.isfinite(vy)
    assert ok.mean() > 0.8
    truth = zone_flow.bearing(zone_flow.truth_vx, zone_flow.truth_vy)
    return np.abs(zone_flow.bearing(vx, vy)[ok] - truth[ok]).max()


def test_pair_product_into_the_next_zone(zone_flow):
    out = zone_flow.path("pair46.tif")
    _, grid = harmonise(zone_flow.pair(), out, pixel=30, crs=32646)
    assert grid.same_as(zone_flow.grid46)
    _, d = read_pair_product(out)
    assert bearing_error(zone_flow, d["vx"], d["vy"]) < 0.1
    assert -5.4 < np.nanmean(d["vy"]) < -5.0
    np.testing.assert_allclose(d["v"][np.isfinite(d["v"])], 100.0, rtol=1e-5)


def test_vx_and_vy_stacks_into_the_next_zone(zone_flow):
    vx_path, vy_path = zone_flow.stack("vx"), zone_flow.stack("vy")
    out_x, out_y = zone_flow.path("h46_vx.tif"), zone_flow.path("h46_vy.tif")
    harmonise(vx_path, out_x, pixel=30, crs=32646, tile=16)  # companion found by name
    harmonise(vy_path, out_y, crs=32646, tile=16)
    (ix, x), (iy, y) = read_stack(out_x), read_stack(out_y)
    assert ix.quantity == "vx" and iy.quantity == "vy" and x.shape == (2,) + zone_flow.grid46.shape
    for b in range(2):
        assert bearing_error(zone_flow, x[b], y[b]) < 0.1
    assert -5.4 < np.nanmean(y) < -5.0  # the example (was 0.00)
    # the speed stack is resampled, not rotated
    out_v = zone_flow.path("h46_v.tif")
    harmonise(zone_flow.stack("v"), out_v, crs=32646)
    v = read_stack(out_v)[1]
    assert np.all(v[np.isfinite(v)] == 100.0)


def test_lone_vx_stack_is_refused_and_an_explicit_companion_works(zone_flow):
    lone = zone_flow.stack("vx", name="flow_east.tif")
    out = zone_flow.path("out.tif")
    with pytest.raises(InputError, match="flow_east.tif"):
        harmonise(lone, out, crs=32646)
    assert not os.path.exists(out)  # nothing half-written
    harmonise(lone, out, crs=32646, companion=zone_flow.stack("vy", name="north.tif"))
    x = read_stack(out)[1]
    ok = np.isfinite(x[0])
    np.testing.assert_allclose(x[0][ok], zone_flow.truth_vx[ok], atol=0.01)
    # within its own CRS a lone component needs no companion
    harmonise(lone, zone_flow.path("same.tif"), pixel=60)
    same = read_stack(zone_flow.path("same.tif"))[1]
    assert np.isfinite(same).mean() > 0.8 and np.all(same[np.isfinite(same)] == 100.0)


def test_monthly_stacks_of_pairs_from_another_zone(zone_flow):
    from glacier_velocity.core.timeseries.monthly import monthly_stacks

    pairs = [zone_flow.pair("LC08_20200703_20200719_pair.tif"),
             zone_flow.pair("LC08_20200705_20200721_pair.tif")]
    outs = {q: zone_flow.path(f"m46_{q}.tif") for q in ("vx", "vy", "v")}
    monthly_stacks(pairs, zone_flow.grid46, outs, tile=16)
    (_, x), (_, y), (_, v) = (read_stack(outs[q]) for q in ("vx", "vy", "v"))
    assert bearing_error(zone_flow, x[0], y[0]) < 0.1
    np.testing.assert_allclose(v[np.isfinite(v)], 100.0, rtol=1e-5)
