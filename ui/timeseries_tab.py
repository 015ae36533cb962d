"""The time-series tab: every velocity stack of the project at the pixel picked on the map.

Reading runs on one worker thread (GDAL releases the GIL while it decompresses), so the UI stays
responsive even when the first click on a 300-band stack decompresses a whole tile; the widget
polls the result with a timer. While the mouse is dragged, only the latest point is kept and
points are read at most every :data:`THROTTLE_MS` milliseconds.
"""

import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from qgis.core import QgsPointXY, QgsProject
from qgis.gui import QgsVertexMarker
from qgis.PyQt.QtCore import QCoreApplication, Qt, QTimer
from qgis.PyQt.QtGui import QColor, QIcon, QPixmap
from qgis.PyQt.QtWidgets import (QFileDialog, QHBoxLayout, QLabel, QListWidget, QListWidgetItem,
                                 QPushButton, QSizePolicy, QToolButton, QVBoxLayout, QWidget)

from ..core.errors import InputError
from ..core.io.cubes import source_file
from ..core.io.pixel_series import StackPixelReader, unique_labels, write_series_csv
from . import plot_widgets
from .plot_data import layer_file, stack_layers, to_crs, to_layer_crs

THROTTLE_MS = 80  # at most one read per this interval while dragging
POLL_MS = 15

NO_STACKS = ("No velocity stack is loaded. Add one as a raster layer: a GeoTIFF with one band per "
             "time step whose band descriptions are date intervals START/END (for example "
             "2019-06-03/2019-07-05), with metadata SENSOR and QUANTITY — the outputs of the Time "
             "series and Fusion algorithms, or the sample scene's stacks/*.tif (Processing › "
             "Glacier Velocity › Sample data). Then click on the map with the pixel tool.")
NO_STACKS_SHORT = ("No velocity stack is loaded: add one (e.g. Processing › Glacier Velocity › "
                   "Sample data), then click on the map with the pixel tool.")
NONE_TICKED = "Tick at least one velocity stack in the list to plot it."
# pin markers on the map, in the order of plot_widgets.PIN_SYMBOLS (triangle, diamond...)
PIN_ICONS = tuple(getattr(QgsVertexMarker.IconType, name, QgsVertexMarker.IconType.ICON_BOX)
                  for name in ("ICON_TRIANGLE", "ICON_RHOMBUS", "ICON_INVERTED_TRIANGLE",
                               "ICON_X"))


class TimeSeriesTab(QWidget):
    """Plots the series of the ticked stacks at a point; ``show_point`` is what a click calls."""

    def __init__(self, canvas, pick_action=None, parent=None):
        super().__init__(parent)
        self.canvas = canvas
        self.project = QgsProject.instance()
        self.current = []  # PixelSeries at the last point
        self.pinned = []  # pinned PixelSeries (copies)
        self.last_point = None  # (QgsPointXY, crs)
        self.reads = 0  # points read so far (throttling is measured on it)
        self.last_read_seconds = 0.0
        self._checked = {}  # layer id -> tick state, kept across refreshes
        self._colours = {}  # stack file -> colour of its list entry (the plot uses the same)
        self._readers = {}  # (path, mtime, size) -> StackPixelReader; touched by the worker only
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="glacier-velocity")
        self._job = None  # the point being read: its futures, one per stack
        self._pending = None
        self._marker = None
        self._pin_markers = []  # one canvas marker per pinned point

        self.plot = plot_widgets.TimeSeriesPlot(self)
        self.stack_list = QListWidget(self)
        self.stack_list.setMaximumHeight(5 * (self.fontMetrics().height() + 5) + 8)  # 5 rows
        self.stack_list.setToolTip("Velocity stacks loaded in the project: tick those to plot.")
        self.stack_list.itemChanged.connect(self._ticks_changed)
        self.status = QLabel(self)
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)

        buttons = QHBoxLayout()
        if pick_action is not None:
            pick = QToolButton(self)
            pick.setDefaultAction(pick_action)
            pick.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            buttons.addWidget(pick)
        self._button(buttons, "Pin", "Keep the plotted series to compare with other pixels",
                     self.pin)
        self._button(buttons, "Clear pins", "Remove the pinned series", self.clear_pins)
        buttons.addStretch(1)
        buttons.addWidget(plot_widgets.export_button(
            self, self._export_image_dialog, self._export_csv_dialog,
            "Series as CSV (dates, one column per series)…"))

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(buttons)
        layout.addWidget(self.stack_list)
        layout.addWidget(self.status)
        layout.addWidget(self.plot, 1)

        self._poll = QTimer(self)
        self._poll.setInterval(POLL_MS)
        self._poll.timeout.connect(self._poll_job)
        self._throttle = QTimer(self)
        self._throttle.setSingleShot(True)
        self._throttle.timeout.connect(self._submit_pending)
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.timeout.connect(self.refresh_stacks)
        self.project.layersAdded.connect(self._schedule_refresh)
        self.project.layersRemoved.connect(self._schedule_refresh)
        self.refresh_stacks()

    def _button(self, layout, text, tip, slot):
        button = QPushButton(text, self)
        button.setToolTip(tip)
        button.clicked.connect(slot)
        layout.addWidget(button)
        return button

    # ---------------------------------------------------------------- stacks in the project
    def _schedule_refresh(self, *args):
        self._refresh_timer.start(0)

    def refresh_stacks(self):
        """List the project's velocity stacks (quantity v ticked by default, else all)."""
        found = stack_layers(self.project)
        default_v = any(info.quantity == "v" for _, info in found)
        colours = plot_widgets.stack_colours([(layer.name(), info.sensor)
                                              for layer, info in found])
        self.stack_list.blockSignals(True)
        self.stack_list.clear()
        for layer, info in found:
            colour = colours[layer.name()]
            item = QListWidgetItem(f"{layer.name()} — {info.sensor or 'no sensor'}, "
                                   f"{info.quantity}, {info.count} bands")
            item.setData(Qt.ItemDataRole.UserRole, layer.id())
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            ticked = self._checked.get(layer.id(), info.quantity == "v" or not default_v)
            item.setCheckState(Qt.CheckState.Checked if ticked else Qt.CheckState.Unchecked)
            self._colours[layer_file(layer)] = colour
            pixmap = QPixmap(12, 12)
            pixmap.fill(QColor(colour))
            item.setIcon(QIcon(pixmap))
            self.stack_list.addItem(item)
        self.stack_list.blockSignals(False)
        if self.last_point is None:
            self._redraw()  # the empty plot's message follows the list
        if not found:
            self.status.setText(NO_STACKS)
        elif self.last_point is None:
            self.status.setText(f"{len(found)} velocity stack(s) in the project. Click on the map "
                                "with the pixel tool to plot their values there; drag to follow "
                                "the mouse.")

    def ticked_layers(self):
        """The ticked stack layers, in list order."""
        out = []
        for i in range(self.stack_list.count()):
            item = self.stack_list.item(i)
            layer = self.project.mapLayer(item.data(Qt.ItemDataRole.UserRole))
            if layer is not None and item.checkState() == Qt.CheckState.Checked:
                out.append(layer)
        return out

    def set_ticked(self, layer_ids):
        """Tick exactly the stacks of ``layer_ids`` (and re-plot the last point)."""
        for i in range(self.stack_list.count()):
            item = self.stack_list.item(i)
            on = item.data(Qt.ItemDataRole.UserRole) in layer_ids
            item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)

    def _ticks_changed(self, item):
        self._checked[item.data(Qt.ItemDataRole.UserRole)] = \
            item.checkState() == Qt.CheckState.Checked
        if self.last_point is not None:
            self.show_point(*self.last_point)

    # ---------------------------------------------------------------- reading
    def show_point(self, point, crs=None):
        """Plot the ticked stacks at ``point`` (QgsPointXY in ``crs``, default the canvas CRS).
        Returns at once; the values arrive from the worker thread."""
        self._request(point, crs, immediate=True)

    def drag_to(self, point, crs=None):
        """Like :meth:`show_point` for mouse drags: the latest point wins, reads are throttled."""
        self._request(point, crs, immediate=False)

    def _request(self, point, crs, immediate):
        crs = crs or self.canvas.mapSettings().destinationCrs()
        self._pending = (QgsPointXY(point), crs)
        self._show_marker(point)
        if self._job is not None:
            # a newer point: drop the stacks not read yet; the poll submits it when the stack
            # being read is done
            for _, future in self._job["futures"]:
                future.cancel()
            return
        if immediate:
            self._throttle.stop()
            self._submit_pending()
        elif not self._throttle.isActive():
            self._throttle.start(THROTTLE_MS)

    def _submit_pending(self):
        if self._pending is None or self._job is not None:
            return
        point, crs = self._pending
        self._pending = None
        self.last_point = (point, crs)
        layers = self.ticked_layers()
        if not layers:
            self.current = []
            self._redraw(point, crs)
            self.status.setText(NO_STACKS if self.stack_list.count() == 0 else NONE_TICKED)
            return
        futures, messages = [], []
        # vx/vy series are shown in the axes of the CRS the point was picked in (the map's), so
        # stacks of several CRSs agree; a WKT string, as the worker must not touch QGIS objects
        axes = crs.toWkt() if crs is not None and crs.isValid() else None
        for layer in layers:
            p = to_layer_crs(point, crs, layer, self.project)
            if p is None:
                messages.append(f"{layer.name()}: the point cannot be transformed to "
                                f"{layer.crs().authid()}.")
                continue
            path = layer_file(layer)
            if path is None:
                messages.append(f"{layer.name()}: its file cannot be found.")
                continue
            futures.append((layer.name(), self._executor.submit(self._read, layer.name(), path,
                                                                  p.x(), p.y(), axes)))
        # one future per stack: the plot fills in stack by stack, and a newer point cancels
        # the stacks not started yet
        self._job = {"point": point, "crs": crs, "messages": messages, "futures": futures,
                     "t0": time.perf_counter(), "shown": -1}
        self._poll.start()

    def _read(self, label, path, x, y, axes_crs=None):
        """Worker thread: ``(PixelSeries or None outside the stack, error message or None)``;
        vx/vy in the axes of ``axes_crs`` (WKT)."""
        try:
            st = os.stat(source_file(path))  # a NetCDF cube: its file
            key = (path, st.st_mtime_ns, st.st_size)
            reader = self._readers.get(key)
            if reader is None:
                reader = self._readers[key] = StackPixelReader(path)
            return reader.read(x, y, label, axes_crs), None
        except (InputError, RuntimeError, OSError) as exc:
            return None, str(exc)

    def _poll_job(self):
        job = self._job
        if job is None:
            self._poll.stop()
            return
        done = [f.done() for _, f in job["futures"]]
        finished = all(done)
        cancelled = any(f.cancelled() for _, f in job["futures"])
        n_done = sum(done)
        if not finished and (n_done == job["shown"] or self._pending is not None):
            return
        results = []
        for label, future in job["futures"]:
            if future.done() and not future.cancelled():
                try:
                    results.append((label,) + future.result())
                except Exception as exc:  # a bug must not leave the tab stuck
                    results.append((label, None, f"reading failed: {exc}"))
        job["shown"] = n_done
        self.last_read_seconds = time.perf_counter() - job["t0"]
        if not cancelled:
            self._show_results(job["point"], job["crs"], results, list(job["messages"]),
                               None if finished else (n_done, len(done)))
        if finished:
            self._job = None
            self._poll.stop()
            self.reads += 1
            if self._pending is not None and not self._throttle.isActive():
                self._throttle.start(THROTTLE_MS)

    def busy(self):
        """True while a read runs or a point waits to be read."""
        return self._job is not None or self._pending is not None

    def wait_idle(self, timeout=30.0):
        """Process events until every requested point is plotted (tests, screenshots)."""
        end = time.monotonic() + timeout
        while self.busy() and time.monotonic() < end:
            QCoreApplication.processEvents()
            time.sleep(0.002)
        QCoreApplication.processEvents()
        return not self.busy()

    # ---------------------------------------------------------------- display
    def _show_results(self, point, crs, results, messages, progress=None):
        self.current = []
        counts, pixels = [], []
        for label, series, error in results:
            if error:
                messages.append(f"{label}: {error}")
            elif series is None:
                messages.append(f"{label} does not cover this point.")
            else:
                self.current.append(series)
                counts.append(f"{label} {series.valid}/{len(series.values)}")
                pixels.append(f"{label}: row {series.row}, col {series.col}")
        self._redraw(point, crs)
        if progress is not None:
            head = f"Reading stack {progress[0] + 1} of {progress[1]}…"
        elif self.current:
            head = (f"Read {len(self.current)} stack(s) in {self.last_read_seconds:.2f} s; bands "
                    f"with a value: {', '.join(counts)}.")
        else:
            head = "No ticked stack covers this point."
        self.status.setText("\n".join([head] + messages))
        self.status.setToolTip("\n".join(pixels))

    def title(self, point, crs):
        """Plot title: the point (in ``crs``) and its pixel (the most stacks' when grids differ)."""
        if crs is not None and crs.isGeographic():
            where = f"{point.y():.5f}°, {point.x():.5f}°"
        else:
            where = f"x {point.x():.1f}, y {point.y():.1f}"
        text = f"{where} ({crs.authid() if crs is not None else ''})"
        if self.current:
            (row, col), n = Counter((s.row, s.col) for s in self.current).most_common(1)[0]
            text += f"<br>pixel row {row}, col {col}"  # two lines: narrow docks stay narrow
            if n < len(self.current):
                text += f" ({n} of {len(self.current)} stacks; others in the tooltip)"
        return text

    def displayed(self):
        """The plotted series (pinned first), with unique labels as in the legend and CSV."""
        series = self.pinned + self.current
        labels = unique_labels([s.label for s in series])
        return [replace(s, label=lab) for s, lab in zip(series, labels)]

    def _redraw(self, point=None, crs=None):
        if point is None and self.last_point is not None:
            point, crs = self.last_point
        shown = self.displayed()
        colours = {d.label: self._colours.get(s.path) for d, s in
                   zip(shown, self.pinned + self.current)}
        self.plot.set_series(shown, self.title(point, crs) if point is not None else "",
                             {k: v for k, v in colours.items() if v}, self.empty_message())

    def empty_message(self):
        """What the plot says when it has no value to show."""
        if self.stack_list.count() == 0:
            return NO_STACKS_SHORT
        if not self.ticked_layers():
            return NONE_TICKED
        if self.last_point is None:
            return plot_widgets.EMPTY_PLOT
        return "No ticked stack has a value at this pixel."

    def _vertex_marker(self, point, icon, colour, size):
        marker = QgsVertexMarker(self.canvas)
        marker.setIconType(icon)
        marker.setColor(QColor(colour))
        marker.setIconSize(size)
        marker.setPenWidth(2)
        marker.setCenter(QgsPointXY(point))
        return marker

    def _show_marker(self, point):
        if self.canvas is None:
            return
        if self._marker is None:
            self._marker = self._vertex_marker(point, QgsVertexMarker.IconType.ICON_CROSS,
                                               "#d62728", 14)
        self._marker.setCenter(QgsPointXY(point))

    # ---------------------------------------------------------------- pins and export
    def pin(self):
        """Keep the current series (dashed, labelled with their pin and pixel) to compare pixels;
        the pin is marked on the map with the shape its points have in the plot."""
        if not self.current or self.last_point is None:
            return
        number = len(self._pin_markers) + 1
        for s in self.current:
            self.pinned.append(replace(s, pinned=number,
                                       label=f"{s.label} · pin {number} (row {s.row}, col "
                                             f"{s.col})"))
        if self.canvas is not None:
            point, crs = self.last_point
            canvas_crs = self.canvas.mapSettings().destinationCrs()
            here = to_crs(point, crs, canvas_crs, self.project)
            if here is not None:
                icon = PIN_ICONS[(number - 1) % len(PIN_ICONS)]
                marker = self._vertex_marker(here, icon, "#202020", 16)
                marker.pin_icon = icon  # QgsVertexMarker has no getter for it
                self._pin_markers.append(marker)
        self._redraw()

    def pin_markers(self):
        """The canvas markers of the pins, in pin order."""
        return list(self._pin_markers)

    def clear_pins(self):
        self.pinned = []
        self._remove_pin_markers()
        self._redraw()

    def _remove_pin_markers(self):
        for marker in self._pin_markers:
            self.canvas.scene().removeItem(marker)
        self._pin_markers = []

    def export_csv(self, path):
        """Write the plotted series to CSV (see :func:`core.io.pixel_series.series_table`)."""
        return write_series_csv(path, self.displayed())

    def export_image(self, path, width=1600):
        return self.plot.export(path, width)

    def _export_image_dialog(self):
        path, _ = QFileDialog.getSaveFileName(self, "Save the plot", "velocity_series.png",
                                              "PNG image (*.png);;SVG drawing (*.svg)")
        if path:
            self.export_image(path)

    def _export_csv_dialog(self):
        if not self.displayed():
            self.status.setText("Nothing to export yet: click on the map first.")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save the plotted series", "velocity_series.csv",
                                              "CSV (*.csv)")
        if path:
            self.export_csv(path)

    # ---------------------------------------------------------------- teardown
    def close_tab(self):
        """Stop timers and the worker, close the datasets, remove the canvas marker."""
        for timer in (self._poll, self._throttle, self._refresh_timer):
            timer.stop()
        for signal in (self.project.layersAdded, self.project.layersRemoved):
            try:
                signal.disconnect(self._schedule_refresh)
            except TypeError:
                pass
        self._pending = None
        if self._job is not None:
            for _, future in self._job["futures"]:
                future.cancel()
            self._job = None
        self._executor.submit(self._readers.clear)
        self._executor.shutdown(wait=True)
        if self._marker is not None and self.canvas is not None:
            self.canvas.scene().removeItem(self._marker)
            self._marker = None
        if self.canvas is not None:
            self._remove_pin_markers()
        self._pin_markers = []  # one canvas marker per pinned point
