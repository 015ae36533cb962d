"""qgis_process through scripts/qgis-process, and the plugin archive."""

import os
import subprocess
import sys
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_list_shows_provider(qgis_process):
    out = qgis_process("list").stdout
    assert "Glacier Velocity" in out and "glaciervelocity:generatescene" in out


def test_help_explains_every_parameter(qgis_process):
    out = qgis_process("help", "glaciervelocity:generatescene").stdout
    for name in ("SIZE", "FIRST_YEAR", "YEARS", "SEED", "OUTPUT"):
        assert f"- {name} (" in out


def test_run_generates_scene_from_any_directory(qgis_process, tmp_path):
    out = tmp_path / "scene"
    proc = qgis_process("run", "glaciervelocity:generatescene", "--", "SIZE=0", "YEARS=1",
                        f"OUTPUT={out}")
    assert (out / "scene.json").exists() and (out / "stacks" / "uav_v.tif").exists()
    assert "scene.json" in proc.stdout


def test_failure_gives_clear_message(qgis_process, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder is expected")
    proc = qgis_process("run", "glaciervelocity:generatescene", "--", "SIZE=0", "YEARS=1",
                        f"OUTPUT={blocker}", check=False)
    assert proc.returncode != 0


def test_zip_installs_without_tests(tmp_path):
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "make_zip.py"), str(tmp_path)],
                   check=True, capture_output=True)
    (archive,) = list(tmp_path.glob("glacier_velocity-*.zip"))
    names = zipfile.ZipFile(archive).namelist()
    assert "glacier_velocity/metadata.txt" in names
    assert "glacier_velocity/__init__.py" in names and "glacier_velocity/core/sampledata/scene.py" in names
    assert not [n for n in names if n.startswith(("glacier_velocity/test/", "glacier_velocity/.",
                                                  "glacier_velocity/bench/"))]
    assert not [n for n in names if "__pycache__" in n or n.endswith("Makefile")]
    # the archive imports as a package named glacier_velocity
    zipfile.ZipFile(archive).extractall(tmp_path / "plugins")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); "
            "from glacier_velocity.core.sampledata.scene import SceneModel; SceneModel('tiny')")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "plugins")], check=True)
