"""Cancel mid-run on the newer algorithms (invertseries, importitslive, exportcube, closure), as a
user presses Cancel in the dialog once the progress bar has moved: the run ends with "Cancelled
by the user.", and no output, no partial file and no temporary file is left."""

import datetime as dt
import glob
import os

import numpy as np
import pytest
from qgis.core import QgsProcessingException, QgsProcessingFeedback

from glacier_velocity.core.io.grid import Grid
from glacier_velocity.core.io.products import write_pair_product
from glacier_velocity.core.sampledata.pair_series import pair_series


class CancelAt(QgsProcessingFeedback):
    """Presses Cancel when the progress bar passes ``share`` (0-100)."""

    def __init__(self, share):
        super().__init__()
        self.share, self.seen = share, []

    def setProgress(self, progress):  # noqa: N802 (QGIS's name)
        self.seen.append(progress)
        super().setProgress(progress)
        if progress >= self.share:
            self.cancel()


def _files(folder):
    return sorted(os.path.relpath(p, folder)
                  for p in glob.glob(os.path.join(folder, "**", "*"), recursive=True)
                  + glob.glob(os.path.join(folder, "**", ".*"), recursive=True))


def _cancelled(run_alg, alg, params, share=20):
    feedback = CancelAt(share)
    with pytest.raises(QgsProcessingException, match="Cancelled by the user"):
        run_alg(alg, params, feedback)
    assert any(0 < p < 100 for p in feedback.seen), "cancelled before any work"


def test_cancel_invertseries(run_alg, tmp_path):
    pairs = tmp_path / "pairs"
    pair_series(size=40, years=1, n_pairs=60, seed=1).write(str(pairs))
    out = tmp_path / "out"
    out.mkdir()
    _cancelled(run_alg, "invertseries", {"FOLDER": str(pairs), "OUTPUT": str(out / "v.tif"),
                                         "OUTPUT_VX": str(out / "vx.tif"),
                                         "OUTPUT_TABLE": str(out / "bands.csv")}, share=30)
    assert _files(out) == []


def test_cancel_importitslive_leaves_no_pair(run_alg, tmp_path):
    pytest.importorskip("netCDF4")
    from glacier_velocity.core.sampledata.itslive import write_cube

    rng = np.random.default_rng(0)
    n = 10
    starts = [dt.datetime(2020, 1, 1) + dt.timedelta(days=8 * i) for i in range(n)]
    cube = write_cube(str(tmp_path / "cube.nc"), rng.normal(90, 9, (n, 20, 20)),
                      rng.normal(0, 9, (n, 20, 20)), starts,
                      [s + dt.timedelta(days=16) for s in starts], ["2A"] * n,
                      (400000.0, 120.0, 0.0, 3300000.0, 0.0, -120.0))
    out = tmp_path / "pairs"
    _cancelled(run_alg, "importitslive", {"INPUT": cube, "OUTPUT": str(out)}, share=40)
    # the pairs written before the cancel are removed with the folder this run made
    assert not out.exists()
    # into an existing folder: older files stay, this run's pairs go
    out.mkdir()
    (out / "mine.txt").write_text("kept")
    old = out / f"sentinel2_{starts[0]:%Y%m%d}_{starts[0] + dt.timedelta(days=16):%Y%m%d}.tif"
    old.write_bytes(b"an older import of the first pair")  # the name this run writes first
    _cancelled(run_alg, "importitslive", {"INPUT": cube, "OUTPUT": str(out)}, share=40)
    assert _files(out) == sorted(["mine.txt", old.name])
    assert old.read_bytes() == b"an older import of the first pair"


def test_cancel_exportcube(run_alg, scene_tiny, tmp_path):
    pytest.importorskip("xarray")
    paths = scene_tiny[1]["paths"]
    out = tmp_path / "out"
    out.mkdir()
    for name in ("cube.nc", "cube.zarr"):
        _cancelled(run_alg, "exportcube", {"INPUT": paths["landsat_v"],
                                           "INPUT_ERROR": paths["landsat_v"],
                                           "OUTPUT": str(out / name)})
    assert _files(out) == []


def test_exportcube_writes_over_its_own_zarr(run_alg, scene_tiny, tmp_path):
    """Exporting again to the same .zarr replaces it (a Zarr cube is a folder)."""
    pytest.importorskip("zarr")
    xr = pytest.importorskip("xarray")
    paths = scene_tiny[1]["paths"]
    out = str(tmp_path / "cube.zarr")
    run_alg("exportcube", {"INPUT": paths["landsat_v"], "OUTPUT": out})
    run_alg("exportcube", {"INPUT": paths["sentinel2_v"], "OUTPUT": out})
    with xr.open_zarr(out) as ds:
        assert ds.attrs["source_files"] == os.path.basename(paths["sentinel2_v"])
    assert sorted(os.listdir(tmp_path)) == ["cube.zarr"]


def test_cancel_closure(run_alg, tmp_path):
    grid = Grid.from_bounds(420000, 3330000, 30, 600, 600, 32645)
    rng = np.random.default_rng(5)
    paths = []
    for name, (a, b) in {"ab": ("2020-01-05", "2020-02-06"), "bc": ("2020-02-06", "2020-03-09"),
                         "ac": ("2020-01-05", "2020-03-09")}.items():
        vx = rng.normal(100, 5, grid.shape).astype(np.float32)
        vy = rng.normal(0, 5, grid.shape).astype(np.float32)
        paths.append(str(tmp_path / f"{name}.tif"))
        write_pair_product(paths[-1], grid, vx, vy, np.ones_like(vx), a, b, "landsat")
    out = tmp_path / "out"
    out.mkdir()
    _cancelled(run_alg, "closure", {"SOURCES": paths, "PIXEL_SIZE": 15,
                                    "OUTPUT": str(out / "closure.tif"),
                                    "OUTPUT_TABLE": str(out / "closure.csv")}, share=10)
    assert _files(out) == []
