"""The Glacier Velocity dock: per-pixel velocity time series and UAV calibration fits."""

from qgis.gui import QgsDockWidget
from qgis.PyQt.QtWidgets import QLabel, QVBoxLayout, QWidget


class GlacierVelocityDock(QgsDockWidget):
    """Dock shown from the Raster menu. Plots arrive with the time-series and calibration tabs."""

    def __init__(self, iface, parent=None):
        super().__init__("Glacier Velocity", parent)
        self.setObjectName("GlacierVelocityDock")
        self.iface = iface
        body = QWidget(self)
        layout = QVBoxLayout(body)
        layout.addWidget(QLabel("Load velocity stacks, then click on the map to see a pixel's "
                                "velocity history."))
        self.setWidget(body)

    def toolbar_actions(self):
        """Actions the plugin adds to the toolbar (the map tool's toggle)."""
        return []

    def close_tools(self):
        """Release the map tool and anything bound to the canvas before the dock is removed."""
