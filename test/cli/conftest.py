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
