"""Across a change of CRS through Processing: Harmonise turns vx/vy by the grid convergence (a
flow due grid east in UTM 45N near 89.6° E onto UTM 46N; truth: the ``zone_flow`` fixture's chord
method), and refuses a lone component naming the file."""

import numpy as np
import pytest
from qgis.core import QgsProcessingException

from glacier_velocity.core.io.products import read_pair_product, read_stack


def bearing_error(zone_flow, vx, vy):
    ok = np.isfinite(vx) & np.isfinite(vy)
    assert ok.mean() > 0.8
    truth = zone_flow.bearing(zone_flow.truth_vx, zone_flow.truth_vy)
    return np.abs(zone_flow.bearing(vx, vy)[ok] - truth[ok]).max()


def test_harmonise_pair_and_stacks_into_the_next_zone(run_alg, zone_flow):
    out = zone_flow.path("pair46.tif")
    run_alg("harmonise", {"INPUT": zone_flow.pair(), "TARGET_CRS": "EPSG:32646",
                          "PIXEL_SIZE": 30, "OUTPUT": out})
    _, d = read_pair_product(out)
    assert bearing_error(zone_flow, d["vx"], d["vy"]) < 0.1
    assert -5.4 < np.nanmean(d["vy"]) < -5.0

    zone_flow.stack("vx"), zone_flow.stack("vy")
    outs = {}
    for q in ("vx", "vy"):
        outs[q] = zone_flow.path(f"h46_{q}.tif")
        run_alg("harmonise", {"INPUT": zone_flow.path(f"flow_{q}.tif"), "TARGET_CRS": "EPSG:32646",
                              "PIXEL_SIZE": 30, "OUTPUT": outs[q]})
    x, y = read_stack(outs["vx"])[1], read_stack(outs["vy"])[1]
    assert bearing_error(zone_flow, x[0], y[0]) < 0.1
    assert -5.4 < np.nanmean(y) < -5.0  # was 0.00 before the reader turned stacks


def test_harmonise_refuses_a_lone_component_and_takes_an_explicit_one(run_alg, zone_flow):
    lone = zone_flow.stack("vy", name="north_only.tif")
    out = zone_flow.path("out.tif")
    with pytest.raises(QgsProcessingException, match="north_only.tif"):
        run_alg("harmonise", {"INPUT": lone, "TARGET_CRS": "EPSG:32646", "OUTPUT": out})
    east = zone_flow.stack("vx", name="east_only.tif")
    run_alg("harmonise", {"INPUT": lone, "INPUT_COMPANION": east, "TARGET_CRS": "EPSG:32646",
                          "OUTPUT": out})
    y = read_stack(out)[1]
    ok = np.isfinite(y)
    np.testing.assert_allclose(y[ok], np.broadcast_to(zone_flow.truth_vy, y.shape)[ok], atol=0.01)
