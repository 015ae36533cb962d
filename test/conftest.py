"""Shared test set-up. Imports nothing from QGIS: test/core runs with ``-p no:qgis``.

The plugin is imported as the package ``glacier_velocity`` through a link in ``.build/plugins``
(whatever the checkout folder is called), exactly as QGIS loads it.
"""

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLUGINS = os.path.join(ROOT, ".build", "plugins")
LINK = os.path.join(PLUGINS, "glacier_velocity")
os.makedirs(PLUGINS, exist_ok=True)
if os.path.realpath(LINK) != ROOT:
    if os.path.lexists(LINK):
        os.remove(LINK)
    os.symlink(ROOT, LINK)
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
