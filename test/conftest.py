"""Shared test set-up. Imports nothing from QGIS: test/core runs with ``-p no:qgis``.

The plugin is imported as the package ``glacier_velocity`` through a link in ``.build/plugins``
(whatever the checkout folder is called), exactly as QGIS loads it.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLUGINS = subprocess.run([os.path.join(ROOT, "scripts", "link-plugin")], check=True,
                         capture_output=True, text=True).stdout.strip()
if PLUGINS not in sys.path:
    sys.path.insert(0, PLUGINS)
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

SHARED_DATA = os.path.join(os.path.dirname(ROOT), "shared", "data")



@pytest.fixture(scope="session")
def scene_tiny(tmp_path_factory):
    """The tiny (3 km, 10 years) sample scene: ``(folder, manifest, model)``. Built once a session."""
    from glacier_velocity.core.sampledata.scene import generate_scene, load_scene

    folder = str(tmp_path_factory.mktemp("scene_tiny"))
    generate_scene(folder, "tiny", 2015, 10, seed=0)
    manifest, model = load_scene(folder)
    return folder, manifest, model


@pytest.fixture(scope="session")
def calibration_tiny(scene_tiny):
    """The tiny scene's UAV calibration (Landsat, Sentinel-2; Sentinel-1 auxiliary), made once."""
    from glacier_velocity.core.fusion.calibration import calibrate

    p = scene_tiny[1]["paths"]
    return calibrate(p["uav_v"], [p["landsat_v"], p["sentinel2_v"]], p["sentinel1_v"])


@pytest.fixture(scope="session")
def fused_tiny(scene_tiny, calibration_tiny, tmp_path_factory):
    """The tiny scene fused with its calibrated weights: ``(fused, count, summary, error)``
    (error: the fused 1 σ stack from the calibration's errors), made once."""
    from glacier_velocity.core.fusion.weighted import fuse_stacks

    p = scene_tiny[1]["paths"]
    folder = tmp_path_factory.mktemp("fused_tiny")
    out, cnt = str(folder / "fused.tif"), str(folder / "count.tif")
    err = str(folder / "fused_error.tif")
    summary = fuse_stacks([p["landsat_v"], p["sentinel2_v"]], out, calibration_tiny.weight_string,
                          p["sentinel1_v"], cnt, errors=calibration_tiny.error_string,
                          error_output=err)
    return out, cnt, summary, err


@pytest.fixture(scope="session")
def load_script():
    """A function importing ``scripts/<name>.py`` as a module (the scripts are not a package)."""
    import importlib.util

    def load(name):
        spec = importlib.util.spec_from_file_location(
            name, os.path.join(ROOT, "scripts", f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture(scope="session")
def build_models(load_script):
    """scripts/build_models.py as a module: the models' builders and their input/output names."""
    return load_script("build_models")


@pytest.fixture(scope="session")
def shared_data():
    """Path of ../shared/data, or skip the test when it is absent (a user's clone has none)."""
    if not os.path.isdir(SHARED_DATA):
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


class ZoneFlow:
    """A uniform flow of 100 m/yr due grid east (vx = 100, vy = 0) on a 30 m grid in UTM 45N near
    89.6° E, 29.6° N, and the UTM 46N grid covering it, where the grid convergence between the
    zones is ~3°. The truth on the 46N grid is found independently of the reader: each pixel's
    point and the point 100 m further along the flow are both transformed to 46N, and the chord
    between them gives the flow's bearing there (vy ≈ −5.2 m/yr)."""

    SPEED = 100.0
    INTERVALS = ("2020-07-01/2020-08-01", "2020-08-01/2020-09-01")

    def __init__(self, folder):
        from osgeo import osr

        from glacier_velocity.core.io.dates import Interval
        from glacier_velocity.core.io.grid import Grid
        from glacier_velocity.core.timeseries.harmonise import target_grid

        self.folder = str(folder)
        geo, utm45 = osr.SpatialReference(), osr.SpatialReference()
        geo.ImportFromEPSG(4326)
        utm45.ImportFromEPSG(32645)
        for s in (geo, utm45):
            s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        x, y, _ = osr.CoordinateTransformation(geo, utm45).TransformPoint(89.6, 29.6)
        self.grid45 = Grid.from_bounds(round(x, -3), round(y, -3), 30, 40, 40, 32645)
        self.grid46 = target_grid(self.grid45, 30, 32646)
        self.intervals = [Interval.parse(t) for t in self.INTERVALS]
        self.truth_vx, self.truth_vy = self.truth_on(self.grid46)

    def truth_on(self, grid):
        """(vx, vy) m/yr of the flow in ``grid``'s CRS axes (the chord method, 100 m long)."""
        from osgeo import osr

        to45 = osr.CoordinateTransformation(grid.srs(), self.grid45.srs())
        back = osr.CoordinateTransformation(self.grid45.srs(), grid.srs())
        xs, ys = grid.centres()
        xx, yy = np.meshgrid(xs, ys)
        p = np.array(to45.TransformPoints(np.column_stack([xx.ravel(), yy.ravel()])))[:, :2]
        a = np.array(back.TransformPoints(p))[:, :2]
        b = np.array(back.TransformPoints(p + [100.0, 0.0]))[:, :2]
        d = (b - a) / np.hypot(*(b - a).T)[:, None] * self.SPEED
        return d[:, 0].reshape(grid.shape), d[:, 1].reshape(grid.shape)

    def path(self, name):
        return os.path.join(self.folder, name)

    def pair(self, name="flow_pair.tif"):
        """A pair product of the flow in UTM 45N."""
        from glacier_velocity.core.io.products import write_pair_product

        vx = np.full(self.grid45.shape, self.SPEED, np.float32)
        return write_pair_product(self.path(name), self.grid45, vx, np.zeros_like(vx),
                                  np.ones_like(vx), "2020-07-01", "2020-08-01", "landsat")

    def stack(self, quantity, name=None, grid=None, values=None, sensor="landsat"):
        """A two-band stack of ``quantity`` (v, vx or vy) of the flow, in UTM 45N by default
        (``values`` given: that array on ``grid``), named ``flow_<quantity>.tif``."""
        from glacier_velocity.core.io.products import write_stack

        grid = grid or self.grid45
        if values is None:
            values = {"vx": self.SPEED, "vy": 0.0, "v": self.SPEED}[quantity]
        band = np.broadcast_to(np.asarray(values, np.float32), grid.shape)
        return write_stack(self.path(name or f"flow_{quantity}.tif"), grid,
                           np.stack([band, band]), self.intervals, sensor, quantity)

    @staticmethod
    def bearing(vx, vy):
        """Bearings (degrees clockwise from grid north) of velocity components."""
        return np.degrees(np.arctan2(vx, vy))


@pytest.fixture
def zone_flow(tmp_path):
    """A :class:`ZoneFlow` writing its rasters under ``tmp_path``."""
    return ZoneFlow(tmp_path)
