"""The uncertainty readers across a UTM zone boundary: products in 45N compared with a 46N
reference have their vx/vy turned (truth: the ``zone_flow`` fixture's chord method), so a
product equal to the truth agrees with it; a lone component is refused naming the file."""

import pytest

from glacier_velocity.core.errors import InputError
from glacier_velocity.core.uncertainty.quality_metrics import coverage, reference_agreement
from glacier_velocity.core.uncertainty.stable_ground import open_sources, open_velocity_source


def reference(zone_flow, quantity):
    truth = zone_flow.truth_vx if quantity == "vx" else zone_flow.truth_vy
    return zone_flow.stack(quantity, name=f"uav46_{quantity}.tif", grid=zone_flow.grid46,
                           values=truth, sensor="uav")


@pytest.mark.parametrize("quantity", ["vx", "vy"])
def test_agreement_of_stacks_and_pairs_of_another_zone(zone_flow, quantity):
    zone_flow.stack("vx"), zone_flow.stack("vy")
    ref = reference(zone_flow, quantity)
    sources = open_sources([zone_flow.path(f"flow_{quantity}.tif"), zone_flow.pair()])
    sources.append(open_velocity_source(vx=zone_flow.path("flow_vx.tif"),
                                        vy=zone_flow.path("flow_vy.tif"), name="components"))
    rows = [r for r in reference_agreement(sources, ref) if r["ref_band"] == 1]
    assert len(rows) == 3
    for r in rows:
        # unturned, the bias of vy would be +5.2 m/yr
        assert r["n"] > 1000 and abs(r["bias"]) < 0.01 and r["rmse"] < 0.01, r


def test_lone_component_of_another_zone_is_refused(zone_flow):
    ref = reference(zone_flow, "vy")
    lone = zone_flow.stack("vy", name="north_only.tif")
    with pytest.raises(InputError, match="north_only.tif"):
        reference_agreement([lone], ref)
    with pytest.raises(InputError, match="north_only.tif"):
        coverage([ref, lone])
    # with its companion by name, coverage reads it on the first source's grid
    zone_flow.stack("vx"), zone_flow.stack("vy")
    rows = coverage([ref, zone_flow.path("flow_vy.tif")])
    share = [r["valid_ratio"] for r in rows if r["band"] == 1]
    assert share[0] == 1.0 and 0.8 < share[1] < 1.0
