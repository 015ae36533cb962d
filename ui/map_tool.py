"""The map tool that picks the pixel whose velocity history the dock plots."""

from qgis.core import QgsPointXY
from qgis.gui import QgsMapTool
from qgis.PyQt.QtCore import Qt, pyqtSignal


class PixelPickTool(QgsMapTool):
    """Emits ``picked(point)`` on a left click and ``dragged(point)`` while the mouse moves with
    the left button held (the dock throttles those). Points are in the canvas CRS."""

    picked = pyqtSignal(QgsPointXY)
    dragged = pyqtSignal(QgsPointXY)

    def __init__(self, canvas):
        super().__init__(canvas)
        self._pressed = False
        self.setCursor(Qt.CursorShape.CrossCursor)

    def canvasPressEvent(self, event):  # noqa: N802 (QGIS's name)
        if event.button() == Qt.MouseButton.LeftButton:
            self._pressed = True
            self.picked.emit(QgsPointXY(event.mapPoint()))

    def canvasMoveEvent(self, event):  # noqa: N802
        if self._pressed and event.buttons() & Qt.MouseButton.LeftButton:
            self.dragged.emit(QgsPointXY(event.mapPoint()))

    def canvasReleaseEvent(self, event):  # noqa: N802
        if self._pressed and event.button() == Qt.MouseButton.LeftButton:
            self._pressed = False

    def deactivate(self):
        self._pressed = False
        super().deactivate()
