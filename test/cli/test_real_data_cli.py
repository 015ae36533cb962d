"""The README's real-data walk-through, run headless through scripts/qgis-process (skips without
../shared/data): Perito Moreno through the one-pair model, Kaskawulsh through cleanpair and
stableuncertainty."""

import os

import numpy as np
import pytest
from scipy import ndimage

DAY = 365.25


@pytest.fixture(scope="module")
def walkthrough(load_script):
    return load_script("real_data_walkthrough")


def test_kaskawulsh_filter_and_uncertainty(walkthrough, shared_data, tmp_path):
    out = walkthrough.kaskawulsh(str(tmp_path), shared_data)
    rows = {(name, r["quantity"]): r for name, table in out["tables"].items() for r in table}
    for q in ("vx", "vy"):
        raw, clean = rows[("raw", q)], rows[("clean", q)]
        assert 0.35 < float(raw["std"]) / DAY < 0.45  # the published raw spread, ~0.40 m/day
        assert float(clean["std"]) / DAY <= 0.20
        assert abs(float(clean["median"])) / DAY <= 0.005
        assert int(clean["n"]) > 0.9 * int(raw["n"])  # the mismatches go, the stable ground stays


def test_perito_moreno_one_pair_model(walkthrough, shared_data, tmp_path):
    from glacier_velocity.core.io.products import read_pair_product
    from glacier_velocity.core.io.raster import warp_to_grid

    out = walkthrough.perito_moreno(str(tmp_path), shared_data)
    info, d = read_pair_product(out["clean"])
    assert info.start.isoformat() == "2020-01-01" and info.end.isoformat() == "2020-01-21"
    mask = warp_to_grid(os.path.join(shared_data, "perito_moreno", "mask.jpg"), info.grid,
                        "nearest", bands=[1])[0]
    glacier = ndimage.binary_erosion(mask > 127, iterations=3)
    valid = glacier & np.isfinite(d["vx"])
    assert valid.sum() > 0.5 * glacier.sum()
    speed = d["v"][valid] / DAY
    assert 1.0 < np.median(speed) < 3.0  # about 2 m/day near the front
    bearing = np.degrees(np.arctan2(d["vy"][valid], d["vx"][valid]))  # from east, counterclockwise
    assert 0 < np.median(bearing) < 30  # east-north-east, towards the lake front
