"""The calibration tab: how each source fits the UAV velocities, and the weights calibrated.

Reads the calibration table and its samples table (see :mod:`..core.io.pixel_series` for the
columns) from project layers or files, shows the table of weights and fit statistics, and the
scatters of every source and of the weighted combination against UAV with the 1:1 line.
"""

import math
import os

from qgis.core import QgsProject
from qgis.PyQt.QtCore import Qt, QTimer
from qgis.PyQt.QtWidgets import (QAbstractItemView, QComboBox, QFileDialog, QGridLayout,
                                 QHBoxLayout, QHeaderView, QLabel, QPushButton, QTableWidget,
                                 QTableWidgetItem, QVBoxLayout, QWidget)

from ..core.errors import InputError
from ..core.io.pixel_series import (parse_calibration, parse_samples, read_table_rows,
                                 samples_companion, samples_table, write_csv)
from . import plot_widgets
from .plot_data import layer_rows, table_layers

HEADERS = ("Source", "Sensor", "Role", "Weight", "n", "Bias (m/yr)", "RMSE (m/yr)", "R²", "Slope")
TABLE_FILTER = "Tables (*.csv *.gpkg *.sqlite *.xlsx *.ods *.dbf);;All files (*)"
HELP = ("Choose the calibration table written by 'Calibrate fusion weights' (a project layer or a "
        "file) and its samples table to see each source against the UAV velocities.")


def _same_table(source, path):
    """True when a layer source and a table path name the same file (and layer, if given)."""
    a, b = str(source).split("|"), str(path).split("|")
    same_file = os.path.abspath(a[0]) == os.path.abspath(b[0])
    layer_a = next((p for p in a[1:] if p.startswith("layername=")), None)
    layer_b = next((p for p in b[1:] if p.startswith("layername=")), None)
    return same_file and (layer_a is None or layer_b is None or layer_a == layer_b)


def _fmt(value, spec):
    return "" if value is None or (isinstance(value, float) and not math.isfinite(value)) \
        else format(value, spec)


class CalibrationTab(QWidget):
    """Calibration table + samples table pickers, the weights table and the two scatters."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.project = QgsProject.instance()
        self.calibration = None
        self.samples = None
        self._files = {"calibration": [], "samples": []}
        self.combos = {}

        pickers = QGridLayout()
        for row, (kind, text) in enumerate((("calibration", "Calibration table"),
                                            ("samples", "Samples table"))):
            combo = QComboBox(self)
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(8)
            combo.currentIndexChanged.connect(
                self._calibration_chosen if kind == "calibration" else self.update_view)
            self.combos[kind] = combo
            browse = QPushButton("File…", self)
            browse.clicked.connect(lambda _=False, k=kind: self._browse(k))
            pickers.addWidget(QLabel(text, self), row, 0)
            pickers.addWidget(combo, row, 1)
            pickers.addWidget(browse, row, 2)
        pickers.setColumnStretch(1, 1)

        self.summary = QTableWidget(0, len(HEADERS), self)
        self.summary.setHorizontalHeaderLabels(HEADERS)
        self.summary.verticalHeader().setVisible(False)
        self.summary.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.summary.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.status = QLabel(HELP, self)
        self.status.setWordWrap(True)
        self.plot = plot_widgets.CalibrationPlot(self)

        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(plot_widgets.export_button(self, self._export_image_dialog,
                                                     self._export_csv_dialog, "Samples as CSV…"))

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(pickers)
        layout.addWidget(self.summary)
        layout.addWidget(self.status)
        layout.addWidget(self.plot, 1)
        layout.addLayout(buttons)

        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.timeout.connect(self.refresh_choices)
        self.project.layersAdded.connect(self._schedule_refresh)
        self.project.layersRemoved.connect(self._schedule_refresh)
        self.refresh_choices()

    # ---------------------------------------------------------------- choices
    def _schedule_refresh(self, *args):
        self._refresh_timer.start(0)

    def refresh_choices(self):
        """List project tables and opened files; keep the current choices when still there."""
        for kind, combo in self.combos.items():
            keep = combo.currentData()
            combo.blockSignals(True)
            combo.clear()
            combo.addItem("(none)", "")
            for layer in table_layers(kind, self.project):
                combo.addItem(f"{layer.name()} (project)", f"layer:{layer.id()}")
            for path in self._files[kind]:
                combo.addItem(os.path.basename(path.split("|")[0]) +
                              (f" ({path.split('layername=')[1]})" if "layername=" in path else ""),
                              f"file:{path}")
            index = combo.findData(keep) if keep else -1
            combo.setCurrentIndex(index if index >= 0 else min(1, combo.count() - 1))
            combo.blockSignals(False)
        self._calibration_chosen()

    def open_file(self, kind, path):
        """Add a table file to the ``kind`` ('calibration' or 'samples') choices and select it;
        a calibration file also brings its samples companion when one lies beside it."""
        path, companion = str(path), None
        if path not in self._files[kind]:
            self._files[kind].append(path)
        if kind == "calibration":
            companion = samples_companion(path)
            if companion and companion not in self._files["samples"]:
                self._files["samples"].append(companion)
        self.refresh_choices()
        self.combos[kind].setCurrentIndex(self.combos[kind].findData(f"file:{path}"))
        if companion:
            self.combos["samples"].setCurrentIndex(
                self.combos["samples"].findData(f"file:{companion}"))

    def _calibration_chosen(self, *args):
        """A calibration table was chosen: choose the samples written beside it (a project layer
        of that file, else the file itself), then redraw."""
        data = self.combos["calibration"].currentData() or ""
        source = data.split(":", 1)[1] if ":" in data else ""
        if data.startswith("layer:"):
            layer = self.project.mapLayer(source)
            source = layer.source() if layer is not None else ""
        companion = samples_companion(source) if source and os.path.exists(
            source.split("|")[0]) else None
        if companion:
            combo = self.combos["samples"]
            same = [lyr.id() for lyr in table_layers("samples", self.project)
                    if _same_table(lyr.source(), companion)]
            if not same and companion not in self._files["samples"]:
                self._files["samples"].append(companion)
                self.refresh_choices()  # lists the file; it comes back here once
                return
            index = combo.findData(f"layer:{same[0]}" if same else f"file:{companion}")
            if index >= 0:
                combo.blockSignals(True)
                combo.setCurrentIndex(index)
                combo.blockSignals(False)
        self.update_view()

    def _browse(self, kind):
        path, _ = QFileDialog.getOpenFileName(self, f"Open a {kind} table", "", TABLE_FILTER)
        if path:
            self.open_file(kind, path)

    def _rows(self, kind):
        data = self.combos[kind].currentData()
        if not data:
            return None
        source, key = data.split(":", 1)
        if source == "layer":
            layer = self.project.mapLayer(key)
            return layer_rows(layer) if layer is not None else None
        return read_table_rows(key, f"{kind} table")

    # ---------------------------------------------------------------- view
    def update_view(self, *args):
        """Read the chosen tables and redraw; bad tables give a message, not an exception."""
        self.calibration = self.samples = None
        messages = []
        for kind, parse in (("calibration", parse_calibration), ("samples", parse_samples)):
            try:
                rows = self._rows(kind)
                if rows is not None:
                    setattr(self, kind, parse(rows, f"{kind} table"))
            except InputError as exc:
                messages.append(str(exc))
        self._fill_summary()
        if self.calibration is None and self.samples is None:
            self.plot.clear_plots()
            self.status.setText("\n".join(messages) or HELP)
            return
        self.plot.set_calibration(self.calibration, self.samples)
        if self.samples is not None:
            messages.insert(0, f"{self.samples.uav.size} UAV samples.")
        elif self.calibration is not None:
            messages.insert(0, "No samples table: the scatters need the samples written with the "
                               "calibration (OUTPUT_SAMPLES).")
        self.status.setText("\n".join(messages))

    def _fill_summary(self):
        fits = []  # (fit, class label)
        if self.calibration is not None:
            cal = self.calibration
            fits = [(f, "") for f in cal.sources + ([cal.combined] if cal.combined else [])]
            fits += [(f, label) for label, group in cal.classes.items() for f in group]
        self.summary.setRowCount(len(fits))
        for r, (f, label) in enumerate(fits):
            role = f"{f.role} · class {label}" if label else f.role
            cells = (f.source, f.sensor, role, _fmt(f.weight, ".3f"), str(f.n),
                     _fmt(f.bias, "+.2f"), _fmt(f.rmse, ".2f"), _fmt(f.r2, ".3f"),
                     _fmt(f.slope, ".3f"))
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c >= 3:
                    item.setTextAlignment(int(Qt.AlignmentFlag.AlignRight |
                                              Qt.AlignmentFlag.AlignVCenter))
                self.summary.setItem(r, c, item)
        # show every row up to a few, then scroll
        shown = min(max(len(fits), 1), 6)
        height = (self.summary.horizontalHeader().height() + 2 * self.summary.frameWidth() +
                  self.summary.horizontalScrollBar().sizeHint().height())  # narrow docks scroll
        height += sum(self.summary.rowHeight(r) for r in range(shown)) if fits else 24
        self.summary.setFixedHeight(height)

    def summary_rows(self):
        """The weights table as shown: a list of rows of cell texts."""
        return [[self.summary.item(r, c).text() for c in range(self.summary.columnCount())]
                for r in range(self.summary.rowCount())]

    # ---------------------------------------------------------------- export
    def export_csv(self, path):
        """Write the plotted samples (samples-table layout) to CSV."""
        if self.samples is None:
            raise InputError("No samples table is shown: nothing to export.")
        header, rows = samples_table(self.samples)
        return write_csv(path, header, rows)

    def export_image(self, path, width=1600):
        return self.plot.export(path, width)

    def _export_image_dialog(self):
        path, _ = QFileDialog.getSaveFileName(self, "Save the scatters", "calibration.png",
                                              "PNG image (*.png);;SVG drawing (*.svg)")
        if path:
            self.export_image(path)

    def _export_csv_dialog(self):
        if self.samples is None:
            self.status.setText("No samples table is shown: nothing to export.")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save the samples", "calibration_samples.csv",
                                              "CSV (*.csv)")
        if path:
            self.export_csv(path)

    def close_tab(self):
        self._refresh_timer.stop()
        for signal in (self.project.layersAdded, self.project.layersRemoved):
            try:
                signal.disconnect(self._schedule_refresh)
            except TypeError:
                pass
