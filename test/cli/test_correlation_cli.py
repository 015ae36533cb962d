"""glaciervelocity:correlate from the command line (qgis_process), as scripts and the demo use it."""

import json

import numpy as np

from glacier_velocity.core.io.dates import DAYS_PER_YEAR
from glacier_velocity.core.io.grid import Grid
from glacier_velocity.core.io.products import read_pair_product
from glacier_velocity.core.io.raster import write_raster
from glacier_velocity.core.sampledata.scene import band_limited_noise, render_pair_images


def test_correlate_from_the_command_line(qgis_process, tmp_path):
    rng = np.random.default_rng(0)
    fine = band_limited_noise((288, 288), rng, 0.1)
    ref, sec = render_pair_images(fine, np.full(fine.shape, 2.4), np.full(fine.shape, 1.5))
    grid = Grid.from_bounds(400000, 3300000, 10.0, 96, 96, 32645)
    a = write_raster(str(tmp_path / "S2A_MSIL1C_20200703T045701_N0209_R119_T45RUV_x.tif"), grid,
                     ref.astype(np.float32))
    b = write_raster(str(tmp_path / "S2A_MSIL1C_20200802T045701_N0209_R119_T45RUV_x.tif"), grid,
                     sec.astype(np.float32))
    out = tmp_path / "pair.tif"
    proc = qgis_process("run", "glaciervelocity:correlate", "--json", "--", f"REFERENCE={a}",
                        f"SECONDARY={b}", "STEP=4", f"OUTPUT={out}")
    results = json.loads(proc.stdout[proc.stdout.index("{"):])["results"]
    assert results["VALID_SHARE"] > 0.4 and results["MEDIAN_SNR"] > 0.9
    info, d = read_pair_product(str(out))
    assert info.sensor == "sentinel2" and info.baseline_days == 30
    years = 30 / DAYS_PER_YEAR
    # 0.8 px east and 0.5 px south (rows down) of 10 m pixels
    assert abs(np.nanmedian(d["vx"]) * years - 8.0) < 0.1
    assert abs(np.nanmedian(d["vy"]) * years + 5.0) < 0.1
