"""The Glacier Velocity dock: per-pixel velocity time series and UAV calibration fits.

pyqtgraph is optional: without it the dock explains how to install it and the plugin still
loads (Processing algorithms do not need it).
"""

from qgis.gui import QgsDockWidget
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import QAction, QLabel, QTabWidget, QVBoxLayout, QWidget

from ..compat import pyqtgraph_env
from ..processing_provider.base import icon

INSTALL_HELP = (
    "<b>The plots need the Python package pyqtgraph</b>, which is not installed in the Python "
    "that QGIS runs ({error}).<br><br>"
    "Debian / Ubuntu: <code>sudo apt install python3-pyqtgraph</code><br>"
    "Windows (OSGeo4W Shell) and macOS: <code>python3 -m pip install \"pyqtgraph&lt;0.14\"</code> "
    "(0.14 needs numpy ≥ 1.25)<br><br>Then restart QGIS. The Processing algorithms work without it."
)


def load_pyqtgraph():
    """``(True, '')`` when pyqtgraph imports with QGIS's Qt binding, else ``(False, reason)``."""
    pyqtgraph_env()
    try:
        import pyqtgraph  # noqa: F401
    except ImportError as exc:
        return False, str(exc)
    return True, ""


class GlacierVelocityDock(QgsDockWidget):
    """Dock shown from the Raster menu: a time-series tab (with its map tool) and a calibration
    tab. ``iface`` needs only ``mapCanvas()``."""

    def __init__(self, iface, parent=None):
        super().__init__("Glacier Velocity", parent)
        self.setObjectName("GlacierVelocityDock")
        self.iface = iface
        self.canvas = iface.mapCanvas() if iface is not None else None
        self.timeseries = self.calibration = self.tool = self.pick_action = None
        self.available, reason = load_pyqtgraph()
        if not self.available:
            label = QLabel(INSTALL_HELP.format(error=reason), self)
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setAlignment(Qt.AlignmentFlag.AlignTop)
            self.setWidget(label)
            return

        from .calibration_tab import CalibrationTab
        from .map_tool import PixelPickTool
        from .timeseries_tab import TimeSeriesTab

        self.pick_action = QAction(icon("map_tool.svg"), "Pick a pixel's velocity history", self)
        self.pick_action.setIconText("Pick pixel")
        self.pick_action.setCheckable(True)
        self.pick_action.setToolTip("Click (or drag) on the map to plot every loaded velocity "
                                    "stack at that pixel")
        self.pick_action.toggled.connect(self._tool_toggled)
        self.timeseries = TimeSeriesTab(self.canvas, self.pick_action, self)
        self.calibration = CalibrationTab(self)
        if self.canvas is not None:
            self.tool = PixelPickTool(self.canvas)
            self.tool.setAction(self.pick_action)
            self.tool.picked.connect(self.timeseries.show_point)
            self.tool.dragged.connect(self.timeseries.drag_to)
        self.tabs = QTabWidget(self)
        self.tabs.addTab(self.timeseries, "Time series")
        self.tabs.addTab(self.calibration, "Calibration")
        body = QWidget(self)
        layout = QVBoxLayout(body)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tabs)
        self.setWidget(body)

    def _tool_toggled(self, on):
        if self.tool is None:
            return
        if on:
            self.canvas.setMapTool(self.tool)
            self.show()
            self.raise_()
            self.tabs.setCurrentWidget(self.timeseries)
        elif self.canvas.mapTool() is self.tool:
            self.canvas.unsetMapTool(self.tool)

    def toolbar_actions(self):
        """Actions the plugin adds to the toolbar (the map tool's toggle)."""
        return [self.pick_action] if self.pick_action is not None else []

    def close_tools(self):
        """Release the map tool and anything bound to the canvas before the dock is removed
        (once: later calls do nothing)."""
        if getattr(self, "_closed", False):
            return
        self._closed = True
        if self.pick_action is not None:
            self.pick_action.toggled.disconnect(self._tool_toggled)
            self.pick_action.setChecked(False)
        if self.tool is not None:
            if self.canvas.mapTool() is self.tool:
                self.canvas.unsetMapTool(self.tool)
            self.tool = None
        if self.timeseries is not None:
            self.timeseries.close_tab()
        if self.calibration is not None:
            self.calibration.close_tab()
