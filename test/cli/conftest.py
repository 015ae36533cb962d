"""Command-line tests: run scripts/qgis-process as users and the demo do."""

import os
import subprocess

import pytest

QGIS_PROCESS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "scripts", "qgis-process")


@pytest.fixture(scope="session")
def qgis_process():
    """Run ``scripts/qgis-process ARGS...`` from '/'; returns the CompletedProcess (text)."""

    def _run(*args, check=True, timeout=600):
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
        proc = subprocess.run([QGIS_PROCESS, *map(str, args)], capture_output=True, text=True,
                              timeout=timeout, env=env, cwd="/")
        if check and proc.returncode != 0:
            raise AssertionError(f"qgis_process {' '.join(map(str, args))} failed "
                                 f"({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    return _run


@pytest.fixture(scope="session")
def series_scene(tmp_path_factory):
    """The tiny sample scene with image series over 3 years (the trends need 3): ``(folder,
    manifest, model)``, made once for the model runs."""
    from glacier_velocity.core.sampledata.scene import generate_scene, load_scene

    folder = str(tmp_path_factory.mktemp("series_scene"))
    generate_scene(folder, "tiny", 2015, 3, seed=0, image_series=True)
    manifest, model = load_scene(folder)
    return folder, manifest, model
