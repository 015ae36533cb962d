"""cleanpair's SNR and speed thresholds: the published defaults, and overridable for fast glaciers
or weak texture."""

import numpy as np

from glacier_velocity.core.io.grid import Grid
from glacier_velocity.core.io.products import read_pair_product, write_pair_product


def test_thresholds_default_and_override(run_alg, tmp_path):
    grid = Grid.from_bounds(500000, 4000000, 30, 40, 40, 32645)
    vx = np.full((40, 40), 1500.0, np.float32)  # a smooth fast field: 1500 m/yr east
    vy = np.zeros((40, 40), np.float32)
    snr = np.full((40, 40), 0.8, np.float32)  # below the default 0.9
    snr[:, 20:] = 0.95
    pair = str(tmp_path / "pair.tif")
    write_pair_product(pair, grid, vx, vy, snr, "2020-01-01", "2020-01-21", "sentinel2")

    out = str(tmp_path / "default.tif")
    res = run_alg("cleanpair", {"INPUT": pair, "OUTPUT": out})
    assert res["VALID_BEFORE"] == 1600 and res["VALID_AFTER"] == 0  # faster than 1095 m/yr
    out = str(tmp_path / "fast.tif")
    res = run_alg("cleanpair", {"INPUT": pair, "MAX_SPEED": 2000, "OUTPUT": out})
    _, d = read_pair_product(out)
    kept = np.isfinite(d["vx"])
    assert not kept[:, :19].any() and kept[:, 21:].all()  # only SNR >= 0.9 survives
    np.testing.assert_allclose(d["vx"][kept], 1500.0, rtol=1e-6)
    res = run_alg("cleanpair", {"INPUT": pair, "MAX_SPEED": 0, "SNR_MIN": 0.5,
                                "OUTPUT": str(tmp_path / "all.tif")})
    assert res["VALID_AFTER"] == 1600
