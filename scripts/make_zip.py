"""Build the plugin archive installable from QGIS's plugin manager (no tests, no build files).

Usage: python3 scripts/make_zip.py OUTPUT_FOLDER  ->  OUTPUT_FOLDER/glacier_velocity-<version>.zip
"""

import configparser
import os
import sys
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INCLUDE = ["metadata.txt", "__init__.py", "plugin.py", "compat.py", "LICENSE", "README.md",
           "core", "ui", "processing_provider", "icons", "models"]


def plugin_files():
    """Paths (relative to the root) of everything the installed plugin needs."""
    for name in INCLUDE:
        path = os.path.join(ROOT, name)
        if os.path.isfile(path):
            yield name
        elif os.path.isdir(path):
            for folder, dirs, files in os.walk(path):
                dirs[:] = [d for d in dirs if d != "__pycache__"]
                for f in sorted(files):
                    if not f.endswith((".pyc", ".pyo")):
                        yield os.path.relpath(os.path.join(folder, f), ROOT)


def main(out_dir):
    meta = configparser.ConfigParser()
    meta.read(os.path.join(ROOT, "metadata.txt"))
    version = meta["general"]["version"]
    os.makedirs(out_dir, exist_ok=True)
    target = os.path.join(out_dir, f"glacier_velocity-{version}.zip")
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
        for rel in plugin_files():
            z.write(os.path.join(ROOT, rel), os.path.join("glacier_velocity", rel))
    print(target)
    return target


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "dist")
