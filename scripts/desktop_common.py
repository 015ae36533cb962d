"""What the scripts run inside the real QGIS desktop share (scripts/screenshots.py,
scripts/desktop_check.py): letting the GUI draw, pictures of the X screen, real clicks on the map.

QGIS runs those scripts with ``qgis --code``, without ``__file__``: they find this module through
``GV_SCRIPTS`` (the Makefile sets it), else ``scripts`` under the working directory.
"""

import os
import subprocess
import time
import traceback

from osgeo import gdal
from qgis.core import QgsApplication, QgsPointXY
from qgis.PyQt.QtCore import QPoint, QRect, Qt, QTimer
from qgis.PyQt.QtTest import QTest
from qgis.utils import iface

SCREEN = QRect(0, 0, 1600, 1000)  # the Xvfb screen the Makefile starts


def wait(seconds=1.0):
    """Let the GUI draw (layers render in background threads)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QgsApplication.processEvents()
        time.sleep(0.02)


def show_main_window():
    """QGIS's main window on the whole screen with the Processing toolbox shown; returns the
    toolbox's dock widget."""
    from qgis.PyQt.QtWidgets import QDockWidget

    window = iface.mainWindow()
    window.setGeometry(SCREEN)
    window.showMaximized()
    toolbox = window.findChild(QDockWidget, "ProcessingToolbox")
    toolbox.show()
    return toolbox


def shot(folder, name, rect=SCREEN, settle=1.5):
    """The screen (cropped to ``rect``) as ``folder/name``, taken by ImageMagick from the X
    server once the GUI has drawn for ``settle`` seconds."""
    wait(settle)
    path = os.path.join(folder, name)
    crop = f"{rect.width()}x{rect.height()}+{rect.x()}+{rect.y()}"
    subprocess.run(["import", "-window", "root", "-crop", crop, "+repage", path], check=True)
    print(f"Wrote {path}", flush=True)
    return path


def map_point(path, row, col):
    """The map point at the centre of pixel ``(row, col)`` of the raster ``path``."""
    gt = gdal.Open(path).GetGeoTransform()
    return QgsPointXY(gt[0] + (col + 0.5) * gt[1], gt[3] + (row + 0.5) * gt[5])


def click_map(point):
    """A real left click on the canvas at map ``point`` (what the pixel tool receives)."""
    canvas = iface.mapCanvas()
    pixel = canvas.getCoordinateTransform().transform(point)
    pos = QPoint(int(pixel.x()), int(pixel.y()))
    QTest.mousePress(canvas.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     pos)
    QTest.mouseRelease(canvas.viewport(), Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier, pos)


def run_steps(steps, finish, label, interval_ms=400, delay_ms=2000):
    """Run ``steps`` (callables) one after the other from the GUI's event loop, ``interval_ms``
    apart, once QGIS has been up ``delay_ms``; then ``finish(failures)``. A step that raises is
    printed with its traceback and ends the run (``failures`` names it)."""
    todo, failures = list(steps), []

    def step():
        if not todo:
            finish(failures)
            return
        current = todo.pop(0)
        try:
            print(f"{label}: {current.__name__}", flush=True)
            current()
        except Exception:
            traceback.print_exc()
            failures.append(f"{current.__name__} raised")
            todo.clear()
        QTimer.singleShot(interval_ms, step)

    QTimer.singleShot(delay_ms, step)
