"""GUI: the dock widget and the map tool (pyqtgraph plots)."""
