"""pyqtgraph widgets of the dock: a pixel's velocity time series and the UAV calibration scatters.

Importing this module imports pyqtgraph (after telling it QGIS's Qt binding): the dock imports it
only once it knows pyqtgraph is installed. Widgets only draw; the data come ready from
:mod:`..core.io.pixel_series`.
"""

import html
import math
import zlib

import numpy as np

from ..compat import pyqtgraph_env
from ..core.io.pixel_series import connect_mask

pyqtgraph_env()

import pyqtgraph as pg  # noqa: E402  (needs PYQTGRAPH_QT_LIB set first)
from pyqtgraph import exporters  # noqa: E402
from qgis.PyQt.QtCore import Qt  # noqa: E402
from qgis.PyQt.QtGui import QColor, QFont, QFontMetricsF  # noqa: E402
from qgis.PyQt.QtWidgets import QMenu, QToolButton  # noqa: E402

SENSOR_COLOURS = {
    "landsat": "#e67e22",
    "sentinel2": "#2ca02c",
    "sentinel1": "#7b4fc9",
    "uav": "#d62728",
    "truth": "#7f7f7f",
    "fused": "#111111",
}
PALETTE = ("#1f77b4", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#9467bd", "#ff7f0e")
SENSOR_ALIASES = {"s2": "sentinel2", "s1": "sentinel1", "l8": "landsat", "l9": "landsat",
                  "drone": "uav", "fusion": "fused", "combined": "fused", "gapfilled": "fused"}
FOREGROUND = "#202020"
HOVER_PIXELS = 12  # hover picks the nearest point within this many screen pixels


def sensor_key(sensor):
    """Normalised sensor name ('Sentinel-2' -> 'sentinel2', 'S1' -> 'sentinel1')."""
    key = str(sensor).lower().replace("-", "").replace("_", "").replace(" ", "")
    key = SENSOR_ALIASES.get(key, key)
    for known in SENSOR_COLOURS:
        if key.startswith(known):
            return known
    return key


_FIRST_SEEN = {}  # stack name -> order of its first appearance in this QGIS session


def stack_colours(entries):
    """``{name: colour}`` for ``(name, sensor)`` entries, the same for a stack in every view and
    redraw: a sensor's colour goes to the first-seen stack of that sensor (in this session), other
    stacks take a palette colour chosen by a hash of their name (the next free one on a clash)."""
    for name, _ in entries:
        _FIRST_SEEN.setdefault(name, len(_FIRST_SEEN))
    ordered = sorted(dict(entries).items(), key=lambda e: _FIRST_SEEN[e[0]])
    out, used = {}, set()
    for name, sensor in ordered:
        colour = SENSOR_COLOURS.get(sensor_key(sensor))
        if colour is not None and colour not in used:
            out[name] = colour
            used.add(colour)
    for name, _ in ordered:
        if name not in out:
            start = zlib.crc32(name.encode("utf-8")) % len(PALETTE)
            free = [PALETTE[(start + k) % len(PALETTE)] for k in range(len(PALETTE))]
            out[name] = next((c for c in free if c not in used), free[0])
            used.add(out[name])
    return out


def _with_alpha(colour, alpha):
    c = QColor(colour)
    c.setAlpha(alpha)
    return c


def _style_plot(plot_item):
    """Dark text on the white background, a light grid, readable fonts."""
    for name in ("left", "bottom"):
        axis = plot_item.getAxis(name)
        axis.setPen(pg.mkPen(FOREGROUND))
        axis.setTextPen(pg.mkPen(FOREGROUND))
    plot_item.showGrid(x=True, y=True, alpha=0.15)



def export_image(target, path, width=1600):
    """Export a plot item or scene to PNG (any image extension) or SVG by ``path``'s extension."""
    path = str(path)
    if path.lower().endswith(".svg"):
        exporters.SVGExporter(target).export(path)
    else:
        exporter = exporters.ImageExporter(target)
        exporter.parameters()["width"] = int(width)
        exporter.export(path)
    return path


def export_button(parent, image_slot, csv_slot, csv_text="Data as CSV…"):
    """An 'Export' button with a menu: the plot as PNG/SVG, its data as CSV."""
    button = QToolButton(parent)
    button.setText("Export")
    button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
    menu = QMenu(button)
    menu.addAction("Plot as PNG or SVG…", image_slot)
    menu.addAction(csv_text, csv_slot)
    button.setMenu(menu)
    return button


class _Pool:
    """Plot items created once and reused: removing pyqtgraph items from a scene raises
    "unable to convert a QVariant back to a Python object" inside QGIS (its NULL QVariant), so
    redraws set new data on existing items and hide the spare ones."""

    def __init__(self, plot_item, factory):
        self.plot_item, self.factory, self.items, self.used = plot_item, factory, [], 0

    def reset(self):
        for item in self.items:
            item.hide()
        self.used = 0

    def take(self):
        if self.used == len(self.items):
            item = self.factory()
            self.plot_item.addItem(item)
            self.items.append(item)
        item = self.items[self.used]
        self.used += 1
        item.show()
        return item


def robust_range(values, k=1.5):
    """``(lo, hi)`` of the y-axis: each series' values inside its Tukey fences (quartiles ∓ k ×
    IQR; a series of fewer than 8 values keeps them all), so one outlier does not flatten the
    others; None when no value is outside (the plot then fits every value)."""
    inside, clipped = [], False
    for v in values:
        v = np.asarray(v, np.float64)
        v = v[np.isfinite(v)]
        if v.size >= 8:
            q1, q3 = np.percentile(v, [25, 75])
            iqr = (q3 - q1) or max(abs(q3), 1.0) * 0.05
            ok = (v >= q1 - k * iqr) & (v <= q3 + k * iqr)
            clipped |= not ok.all()
            v = v[ok]
        if v.size:
            inside.append((v.min(), v.max()))
    if not clipped or not inside:
        return None
    lo, hi = min(a for a, _ in inside), max(b for _, b in inside)
    pad = 0.06 * ((hi - lo) or 1.0)
    return float(lo - pad), float(hi + pad)


EMPTY_PLOT = "Click on the map with the pixel tool to plot the velocity history of the ticked stacks there."

# pinned pixels: the map marker's shape and the plot symbol of the same pin (cycled)
# (squares and circles are the series at the point: pins take other shapes)
PIN_SYMBOLS = ("t1", "d", "t", "x")
PIN_MARKS = ("▲", "◆", "▼", "✕")  # the same shapes as text, for the legend
LEGEND_SIZE = "9pt"
LEGEND_MAX_SHARE = 1 / 3  # the legend never takes more than this share of the plot's height


class TimeSeriesPlot(pg.GraphicsLayoutWidget):
    """Velocity against the middle date of each band, one curve per :class:`PixelSeries`.

    Points plus lines broken at NaN and at long gaps (:func:`connect_mask`), error bars where
    errors are known, pinned series dashed with their pin's symbol, the fused product thicker and
    on top (UAV points larger, so they show around it). The legend sits below the plot in as many
    columns as fit, never over the data nor over a third of the height. The y-range leaves out
    far outliers (:func:`robust_range`), which are drawn as triangles on the edge they exceed.
    Hovering near a point shows its series, date and value. With nothing to plot, a message
    replaces the axes.
    """

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setBackground("w")
        self.plotItem = self.ci.addPlot(
            row=0, col=0, axisItems={"bottom": pg.DateAxisItem(orientation="bottom", utcOffset=0)})
        self.plotItem.setLabel("left", "Velocity", units="m/yr", color=FOREGROUND)
        self.plotItem.setLabel("bottom", "Middle date of each interval", color=FOREGROUND)
        self.plotItem.getAxis("left").enableAutoSIPrefix(False)
        _style_plot(self.plotItem)
        # rich text below the plot (an HTML table): it never covers the data
        self.legend = pg.LabelItem("", justify="left", color=FOREGROUND, size=LEGEND_SIZE)
        self.ci.addItem(self.legend, row=1, col=0)
        self.ci.layout.setRowStretchFactor(0, 1)
        self._legend_entries = []  # (symbol html, label) in legend order
        self._legend_shown = []  # the labels shown (the "+ n more" line included)
        self.legend_columns = 1
        self.legend_hidden = 0  # entries left out for lack of room
        self._curves = _Pool(self.plotItem, lambda: pg.PlotDataItem(antialias=True))
        self._bars = _Pool(self.plotItem, lambda: pg.ErrorBarItem(x=np.zeros(0), y=np.zeros(0)))
        self._clipped = _Pool(self.plotItem, lambda: pg.ScatterPlotItem(size=10))
        self.items = {}  # label -> PlotDataItem
        self.empty = True  # nothing plotted: the message shows instead of axes
        self.clipped = {}  # label -> number of values drawn on the edge of the y-range
        self._drawn = []  # (series, timestamps, y as drawn)
        self.message = pg.TextItem("", color="#606060", anchor=(0.5, 0.5))
        self.message.setTextWidth(320)
        self.hover = pg.TextItem("", color=FOREGROUND, fill=pg.mkBrush(255, 255, 255, 230),
                                 border=pg.mkPen("#808080"), anchor=(0, 1))
        self.hover_marker = pg.ScatterPlotItem(size=11, pen=pg.mkPen("#000000", width=1.5),
                                               brush=None)
        for z, item in ((100, self.hover), (99, self.hover_marker), (98, self.message)):
            item.setZValue(z)
            item.hide()
            self.plotItem.addItem(item, ignoreBounds=True)
        self._proxy = pg.SignalProxy(self.scene().sigMouseMoved, rateLimit=30,
                                     slot=self._mouse_moved)
        self._show_empty(EMPTY_PLOT)

    def set_series(self, series, title="", colours=None, empty_message=None):
        """Draw ``series`` (a list of :class:`PixelSeries`; labels must be unique); ``colours``
        maps labels to colours where the caller fixes them (else :func:`stack_colours`). When no
        series has a value, ``empty_message`` is shown instead of axes."""
        self._curves.reset()
        self._bars.reset()
        self._clipped.reset()
        self.hide_hover()
        self.items, self.clipped, self._drawn = {}, {}, []
        fixed = dict(colours or {})
        auto = stack_colours([(s.label, s.sensor) for s in series if s.label not in fixed])
        y_range = robust_range([s.values for s in series])
        for s in series:
            x = s.timestamps()
            y = self._draw(s, x, fixed.get(s.label) or auto[s.label], y_range)
            self._drawn.append((s, x, y))
        self._legend_entries = self._legend_for(series, fixed, auto)
        self.plotItem.setTitle(title, size="11pt", color=FOREGROUND)
        self.empty = not any(s.valid for s in series)
        self._show_empty((empty_message or EMPTY_PLOT) if self.empty else "")
        if not self.empty and y_range is not None:
            self.plotItem.enableAutoRange(x=True, y=False)
            self.plotItem.setYRange(*y_range, padding=0)
        elif not self.empty:
            self.plotItem.enableAutoRange()
        self._layout_legend()

    def _draw(self, s, x, colour, y_range):
        """Draw one series; returns its y values as drawn (outliers moved to the edge)."""
        fused = s.is_fused
        style = Qt.PenStyle.DashLine if s.pinned else Qt.PenStyle.SolidLine
        alpha = 150 if s.pinned else 255
        item = self._curves.take()
        values = s.values
        if not np.isfinite(values).any():  # nothing to draw (pyqtgraph warns on all-NaN data)
            x = values = np.zeros(0)
        symbol = PIN_SYMBOLS[(int(s.pinned) - 1) % len(PIN_SYMBOLS)] if s.pinned else (
            "s" if fused else "o")
        item.setData(x, values, connect=connect_mask(s) if values.size else "finite",
                     pen=pg.mkPen(_with_alpha(colour, alpha), width=2.4 if fused else 1.3,
                                  style=style),
                     symbol=symbol,
                     symbolSize=6 if fused else (9 if sensor_key(s.sensor) == "uav" or s.pinned
                                                 else 5),
                     symbolPen=pg.mkPen(colour),
                     symbolBrush=pg.mkBrush(_with_alpha(colour, alpha)), name=s.label)
        item.setZValue(10 if fused else (1 if s.pinned else 5))
        self.items[s.label] = item
        shown = values
        if y_range is not None and values.size:
            lo, hi = y_range
            above, below = values > hi, values < lo
            if above.any() or below.any():
                # the curve runs off the plot; a triangle on the edge says where and which way
                edge = self._clipped.take()
                spots = np.concatenate([x[above], x[below]])
                edge.setData(spots, np.concatenate([np.full(above.sum(), hi),
                                                    np.full(below.sum(), lo)]),
                             symbol=["t1"] * int(above.sum()) + ["t"] * int(below.sum()),
                             pen=pg.mkPen(colour), brush=pg.mkBrush(_with_alpha(colour, 200)))
                edge.setZValue(12)
                self.clipped[s.label] = int(above.sum() + below.sum())
                shown = np.clip(values, lo, hi)
        if s.errors is not None and not s.pinned:
            ok = np.isfinite(s.values) & np.isfinite(s.errors)
            if ok.any():
                bars = self._bars.take()
                bars.setData(x=x[ok], y=s.values[ok], height=2 * s.errors[ok], beam=0,
                             pen=pg.mkPen(_with_alpha(colour, 140), width=1))
                bars.setZValue(item.zValue() - 0.5)
        return shown

    def _show_empty(self, text):
        """A message instead of axes when there is nothing to plot (no meaningless ticks)."""
        for name in ("left", "bottom"):
            self.plotItem.showAxis(name, not text)
        self.plotItem.showGrid(x=not text, y=not text, alpha=0.15)
        self.message.setText(text)
        self.message.setVisible(bool(text))
        if text:
            self.plotItem.disableAutoRange()
            self.plotItem.setRange(xRange=(0, 1), yRange=(0, 1), padding=0)
            self.message.setPos(0.5, 0.5)

    @staticmethod
    def _legend_for(series, fixed, auto):
        """``(symbol html, label)``: the series at the point (sources in list order, the fused
        product last, as drawn on top), then one entry per pin (its symbol, dashed)."""
        entries, pins = [], {}
        for s in sorted((s for s in series if not s.pinned), key=lambda s: s.is_fused):
            colour = fixed.get(s.label) or auto[s.label]
            mark = "■" if s.is_fused else "●"
            entries.append((f"<span style='color:{colour}'>━{mark}</span>",
                            s.label if s.valid else f"{s.label} (no value here)"))
        for s in series:
            if s.pinned and s.pinned not in pins:
                pins[s.pinned] = f"pin {s.pinned}: row {s.row}, col {s.col} (dashed)"
        for number, label in pins.items():
            mark = PIN_MARKS[(number - 1) % len(PIN_MARKS)]
            entries.append((f"<span style='color:#404040'>╌{mark}</span>", label))
        return entries

    def _layout_legend(self):
        """The legend as a table: as many columns as the width allows, rows within a third of
        the height; entries that still do not fit are counted in a last "+ n more" line."""
        entries = self._legend_entries
        if not entries:
            self._legend_shown, self.legend_columns = [], 1
            self.legend.setText("")
            self.ci.layout.setRowMaximumHeight(1, 0)
            return
        font = QFont()
        font.setPointSizeF(float(LEGEND_SIZE.rstrip("pt")))
        metrics = QFontMetricsF(font)
        entry_w = max(metrics.horizontalAdvance("━● " + label) for _, label in entries) + 24
        row_h = metrics.height() + 4
        max_cols = max(1, int(max(self.width() - 30, 100) // entry_w))
        max_rows = max(1, int((self.height() * LEGEND_MAX_SHARE - 12) // row_h))
        shown, hidden = entries, 0
        if len(entries) > max_cols * max_rows:
            keep = max(max_cols * max_rows - 1, 1)
            shown, hidden = entries[:keep], len(entries) - keep
        cells = [f"{mark}&nbsp;{html.escape(label)}" for mark, label in shown]
        self._legend_shown = [label for _, label in shown]
        if hidden:
            cells.append(f"+ {hidden} more (see the list above)")
            self._legend_shown.append(f"+ {hidden} more (see the list above)")
        # as many columns as fit: the fewest rows, the most room for the data
        cols = self.legend_columns = min(max_cols, len(cells))
        rows = [cells[i:i + cols] for i in range(0, len(cells), cols)]
        self.legend.setText("<table cellspacing='0' cellpadding='1'>" + "".join(
            "<tr>" + "".join(f"<td style='padding-right:14px'>{c}</td>" for c in row) + "</tr>"
            for row in rows) + "</table>")
        self.ci.layout.setRowMaximumHeight(1, len(rows) * row_h + 8)

    def legend_labels(self):
        """Legend texts in order (the "+ n more" line included)."""
        return list(self._legend_shown)

    def resizeEvent(self, event):  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        if hasattr(self, "_legend_entries"):  # the base constructor resizes before ours runs
            self._layout_legend()

    # ---------------------------------------------------------------- hover
    def nearest(self, x, y, max_pixels=HOVER_PIXELS):
        """``(series, index)`` of the plotted point nearest ``(x, y)`` (view coordinates) within
        ``max_pixels`` screen pixels, or None."""
        sx, sy = self.plotItem.vb.viewPixelSize()
        sx, sy = sx or 1.0, sy or 1.0
        best, best_d = None, float(max_pixels)
        for s, ts, shown in self._drawn:
            d = np.hypot((ts - x) / sx, (shown - y) / sy)
            d[~np.isfinite(d)] = np.inf
            if d.size and d.min() <= best_d:
                i = int(np.argmin(d))
                best, best_d = (s, i), float(d[i])
        return best

    @staticmethod
    def describe(series, index):
        """Hover text of a point: series, middle date, interval and value (± error)."""
        iv = series.intervals[index]
        err = ""
        if series.errors is not None and math.isfinite(series.errors[index]):
            err = f" ± {series.errors[index]:.1f}"
        return (f"{series.label}\n{iv.mid.isoformat()} ({iv.start.isoformat()} to "
                f"{iv.end.isoformat()})\n{series.values[index]:.1f}{err} m/yr")

    def hover_at(self, x, y):
        """Show (or hide) the hover label for view point ``(x, y)``; returns its text or ''."""
        hit = self.nearest(x, y)
        if hit is None:
            self.hide_hover()
            return ""
        s, i = hit
        shown = next(y for d, _, y in self._drawn if d is s)
        xi, yi = s.timestamps()[i], shown[i]
        text = self.describe(s, i)
        self.hover.setText(text)
        self.hover.setPos(xi, yi)
        (x0, x1), _ = self.plotItem.vb.viewRange()
        self.hover.setAnchor((1, 1) if xi > (x0 + x1) / 2 else (0, 1))
        self.hover_marker.setData([xi], [yi])
        self.hover.show()
        self.hover_marker.show()
        return text

    def hide_hover(self):
        self.hover.hide()
        self.hover_marker.hide()

    def _mouse_moved(self, event):
        pos = event[0]
        if self.plotItem.vb.sceneBoundingRect().contains(pos):
            p = self.plotItem.vb.mapSceneToView(pos)
            self.hover_at(p.x(), p.y())
        else:
            self.hide_hover()

    def export(self, path, width=1600):
        """Save the plot and its legend as PNG or SVG."""
        self.hide_hover()
        return export_image(self.ci, path, width)


class CalibrationPlot(pg.GraphicsLayoutWidget):
    """Two scatters against the UAV velocity: every source, and the weighted combination, each
    with the 1:1 line; the legends below them give weight, n, bias, RMSE and R² from the
    calibration table. Both axes span the same range (aspect locked, the 1:1 line at 45°). Side
    by side or stacked, whichever gives the larger plots."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setBackground("w")
        self.sources_plot = self.ci.addPlot(row=0, col=0)
        self.fused_plot = self.ci.addPlot(row=0, col=1)
        self.scatters = {}  # source name (or 'combined') -> ScatterPlotItem
        self.legends, self._pools, self._lines = {}, {}, {}
        for col, (plot, title) in enumerate(((self.sources_plot, "Sources against UAV"),
                                             (self.fused_plot, "Fused against UAV"))):
            plot.setLabel("bottom", "UAV velocity", units="m/yr", color=FOREGROUND)
            plot.setLabel("left", "Satellite velocity", units="m/yr", color=FOREGROUND)
            for name in ("left", "bottom"):
                plot.getAxis(name).enableAutoSIPrefix(False)
            plot.setTitle(title, size="11pt", color=FOREGROUND)
            _style_plot(plot)
            plot.setAspectLocked(True)  # the 1:1 line at 45°
            # legends below the plots (rich text): long statistics never hide points
            legend = pg.LabelItem("", justify="left", color=FOREGROUND, size="9pt")
            legend.entries = []
            self.ci.addItem(legend, row=1, col=col)
            self.legends[id(plot)] = legend
            self._pools[id(plot)] = _Pool(plot, lambda: pg.ScatterPlotItem(pen=None, size=5))
            line = pg.PlotDataItem([], [], pen=pg.mkPen("#606060", width=1.2,
                                                        style=Qt.PenStyle.DashLine))
            line.setZValue(20)
            plot.addItem(line)
            self._lines[id(plot)] = line
        self._wide = True
        self.ci.layout.setRowStretchFactor(0, 1)
        for col in (0, 1):
            self.ci.layout.setColumnStretchFactor(col, 1)

    def _arrange(self):
        """Side by side when wide, stacked when tall (moved in the Qt layout: never removed
        from the scene)."""
        w, h = self.width(), self.height()
        wide = min(w / 2, h) >= min(w, h / 2)  # whichever gives the larger square plots
        if wide == self._wide:
            return
        self._wide = wide
        layout = self.ci.layout
        legend = self.legends[id(self.fused_plot)]
        for item in (self.fused_plot, legend):
            layout.removeItem(item)
        layout.addItem(self.fused_plot, 0 if wide else 2, 1 if wide else 0)
        layout.addItem(legend, 1 if wide else 3, 1 if wide else 0)

    def resizeEvent(self, event):  # noqa: N802 (Qt's name)
        if hasattr(self, "_wide"):  # GraphicsView's constructor resizes before ours runs
            self._arrange()
        super().resizeEvent(event)

    def clear_plots(self):
        self.scatters = {}
        for plot in (self.sources_plot, self.fused_plot):
            self._pools[id(plot)].reset()
            self._lines[id(plot)].setData([], [])
            self.legends[id(plot)].entries = []
            self.legends[id(plot)].setText("")

    def set_calibration(self, calibration, samples):
        """Draw :class:`Samples` with the legends of a :class:`Calibration` (either may be None:
        without samples only the legends and 1:1 lines are drawn)."""
        self.clear_plots()
        fits = {f.source: f for f in calibration.sources} if calibration else {}
        names = list(samples.sources) if samples is not None else []
        names += [n for n in fits if n not in names]
        by_name = stack_colours([(n, fits[n].sensor if n in fits and fits[n].sensor else n)
                                 for n in names])
        colours = [by_name[n] for n in names]
        values = []
        for name, colour in zip(names, colours):
            fit = fits.get(name)
            y = samples.sources.get(name) if samples is not None else None
            self.scatters[name] = self._scatter(self.sources_plot, samples, y, colour,
                                                fit.legend(sep="\n") if fit else name)
            values.append(y)
        combined = calibration.combined if calibration else None
        y = samples.combined if samples is not None else None
        label = (combined.legend(with_weight=False, sep="\n") if combined
                 else "weighted combination")
        self.scatters["combined"] = self._scatter(self.fused_plot, samples, y,
                                                  SENSOR_COLOURS["fused"], label)
        values += [y, samples.uav if samples is not None else None]
        self._one_to_one(values)

    def _scatter(self, plot, samples, y, colour, label):
        x = np.zeros(0)
        if samples is not None and y is not None:
            ok = np.isfinite(samples.uav) & np.isfinite(y)
            x, y = samples.uav[ok], y[ok]
        else:
            y = np.zeros(0)
        item = self._pools[id(plot)].take()
        item.setData(x, y, brush=pg.mkBrush(_with_alpha(colour, 110)), pen=None, size=5)
        item.legend_text = label
        self._add_legend(plot, f"<span style='color:{colour}'>●</span>", label)
        return item

    def _add_legend(self, plot, symbol, label):
        legend = self.legends[id(plot)]
        legend.entries.append(label)
        lines = legend.text.split("<br>") if legend.text else []
        # a second line (the statistics) is indented under the name: narrow docks stay readable
        lines.append(f"{symbol}&nbsp;" + html.escape(label).replace("\n", "<br>" + "&nbsp;" * 5))
        legend.setText("<br>".join(lines))

    def _one_to_one(self, values):
        finite = [v[np.isfinite(v)] for v in values if v is not None]
        finite = [v for v in finite if v.size]
        lo, hi = (0.0, 1.0) if not finite else (min(v.min() for v in finite),
                                                 max(v.max() for v in finite))
        pad = 0.04 * (hi - lo or 1.0)
        lo, hi = lo - pad, hi + pad
        for plot in (self.sources_plot, self.fused_plot):
            line = self._lines[id(plot)]
            line.setData([lo, hi], [lo, hi])
            self._add_legend(plot, "<span style='color:#606060'>- -</span>", "1:1")
            plot.setXRange(lo, hi, padding=0)
            plot.setYRange(lo, hi, padding=0)

    def legend_texts(self, which="sources"):
        """Legend labels of the sources (or 'fused') plot, in order."""
        plot = self.sources_plot if which == "sources" else self.fused_plot
        return list(self.legends[id(plot)].entries)

    def export(self, path, width=1600):
        """Save both scatters (and their legends) as PNG or SVG."""
        return export_image(self.scene(), path, width)
