"""The dock driven like a user: synthetic clicks and drags on the canvas over the sample scene,
the calibration tab reading tables, exports. Plotted values are compared with the stacks."""

import math
import os
import sys

import numpy as np
import pytest
from osgeo import gdal, osr

from glacier_velocity.core.io.pixel_series import read_table_rows, write_csv
from glacier_velocity.test.helpers import read_series_csv
from glacier_velocity.core.io.products import read_stack, read_stack_info

STACKS = ("landsat_v", "sentinel2_v", "sentinel1_v", "uav_v", "truth_v")


@pytest.fixture
def dock(qgis_iface, qgis_new_project):
    """A fresh dock on the test canvas (CRS restored afterwards)."""
    from glacier_velocity.ui.dock import GlacierVelocityDock

    canvas = qgis_iface.mapCanvas()
    crs = canvas.mapSettings().destinationCrs()
    d = GlacierVelocityDock(qgis_iface)
    d.resize(800, 700)
    d.show()
    yield d
    d.close_tools()
    d.deleteLater()
    canvas.setDestinationCrs(crs)


def add_stacks(manifest, names=STACKS):
    from qgis.core import QgsProject, QgsRasterLayer

    layers = {}
    for name in names:
        layer = QgsRasterLayer(manifest["paths"][name], name)
        assert layer.isValid()
        layers[name] = QgsProject.instance().addMapLayer(layer)
    return layers


def add_layer(path, name):
    from qgis.core import QgsProject, QgsRasterLayer

    layer = QgsRasterLayer(str(path), name)
    assert layer.isValid()
    return QgsProject.instance().addMapLayer(layer)


def pixel_centre(path, row, col):
    gt = gdal.Open(path).GetGeoTransform()
    return gt[0] + (col + 0.5) * gt[1], gt[3] + (row + 0.5) * gt[5]


def to_canvas(canvas, x, y, epsg):
    from qgis.core import (QgsCoordinateReferenceSystem, QgsCoordinateTransform, QgsPointXY,
                           QgsProject)

    tr = QgsCoordinateTransform(QgsCoordinateReferenceSystem(f"EPSG:{epsg}"),
                                canvas.mapSettings().destinationCrs(), QgsProject.instance())
    return tr.transform(QgsPointXY(x, y))


def mouse(canvas, kind, point, buttons=None):
    """A canvas mouse event of ``kind`` ('press', 'move', 'release') at map ``point``."""
    from qgis.gui import QgsMapMouseEvent
    from qgis.PyQt.QtCore import QEvent, QPoint, Qt

    left = Qt.MouseButton.LeftButton
    types = {"press": QEvent.Type.MouseButtonPress, "move": QEvent.Type.MouseMove,
             "release": QEvent.Type.MouseButtonRelease}
    button = Qt.MouseButton.NoButton if kind == "move" else left
    held = left if buttons is None else (buttons or Qt.MouseButton.NoButton)
    event = QgsMapMouseEvent(canvas, types[kind], QPoint(10, 10), button, held)
    event.setMapPoint(point)
    return event


def click(dock, point):
    tool = dock.tool
    tool.canvasPressEvent(mouse(dock.canvas, "press", point))
    tool.canvasReleaseEvent(mouse(dock.canvas, "release", point, buttons=0))
    assert dock.timeseries.wait_idle()


def plotted(dock, label):
    x, y = dock.timeseries.plot.items[label].getData()
    if y is None:  # nothing drawn
        return np.zeros(0), np.zeros(0)
    return np.asarray(x, float), np.asarray(y, float)


def glacier_pixel(manifest):
    """A pixel with UAV values in every survey and gaps in Landsat."""
    _, uav = read_stack(manifest["paths"]["uav_v"])
    _, lan = read_stack(manifest["paths"]["landsat_v"])
    ok = np.isfinite(uav).all(0) & np.isnan(lan).any(0) & np.isfinite(lan).any(0)
    rows, cols = np.nonzero(ok)
    k = len(rows) // 2
    return int(rows[k]), int(cols[k])


def warped_pixel(path, x, y, epsg):
    """Row/col of point (x, y in EPSG:epsg) in a raster in EPSG:4326 (independent of QGIS)."""
    src, dst = osr.SpatialReference(), osr.SpatialReference()
    src.ImportFromEPSG(epsg)
    dst.ImportFromEPSG(4326)
    for s in (src, dst):
        s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    lon, lat, _ = osr.CoordinateTransformation(src, dst).TransformPoint(x, y)
    inv = gdal.InvGeoTransform(gdal.Open(path).GetGeoTransform())
    col, row = gdal.ApplyGeoTransform(inv, lon, lat)
    return math.floor(row), math.floor(col)


def test_click_plots_every_stack_at_the_pixel_in_other_crs(dock, scene_tiny, tmp_path):
    from qgis.core import QgsCoordinateReferenceSystem

    _, manifest, _ = scene_tiny
    paths = manifest["paths"]
    warped = str(tmp_path / "landsat_4326.tif")
    gdal.Warp(warped, paths["landsat_v"], dstSRS="EPSG:4326", resampleAlg="near")
    add_stacks(manifest)
    add_layer(warped, "landsat_4326")
    ts = dock.timeseries
    assert ts.stack_list.count() == 6 and len(ts.ticked_layers()) == 6
    dock.canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:3857"))
    dock.pick_action.trigger()
    assert dock.canvas.mapTool() is dock.tool

    row, col = glacier_pixel(manifest)
    x, y = pixel_centre(paths["landsat_v"], row, col)
    click(dock, to_canvas(dock.canvas, x, y, 32645))

    assert sorted(ts.plot.items) == sorted(STACKS + ("landsat_4326",))
    for name in STACKS:
        info, arr = read_stack(paths[name])
        px, py = plotted(dock, name)
        np.testing.assert_array_equal(py, arr[:, row, col].astype(float))
        days = [(iv.mid.toordinal() - 719163) * 86400.0 for iv in info.intervals]
        np.testing.assert_array_equal(px, days)
    _, lan = read_stack(paths["landsat_v"])
    assert np.isnan(lan[:, row, col]).any()  # the plotted series has NaN gaps
    # the reprojected layer: its own pixel holding the point, found independently with OSR
    wr, wc = warped_pixel(warped, x, y, 32645)
    _, warr = read_stack(warped)
    _, wy = plotted(dock, "landsat_4326")
    np.testing.assert_array_equal(wy, warr[:, wr, wc].astype(float))
    assert np.isnan(wy).any() and np.isfinite(wy).any()
    title = ts.plot.plotItem.titleLabel.text
    assert "EPSG:3857" in title and f"row {row}, col {col}" in title
    assert "does not cover" not in ts.status.text()


def test_drag_is_throttled_and_ends_at_the_last_point(dock, scene_tiny):
    _, manifest, _ = scene_tiny
    add_stacks(manifest, ("sentinel1_v",))
    path = manifest["paths"]["sentinel1_v"]
    ts = dock.timeseries
    from qgis.core import QgsCoordinateReferenceSystem, QgsPointXY

    dock.canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:32645"))
    dock.tool.canvasPressEvent(mouse(dock.canvas, "press", QgsPointXY(*pixel_centre(path, 10, 10))))
    moves = 30
    for k in range(moves):
        p = QgsPointXY(*pixel_centre(path, 10 + k, 20))
        dock.tool.canvasMoveEvent(mouse(dock.canvas, "move", p))
    dock.tool.canvasReleaseEvent(mouse(dock.canvas, "release", p, buttons=0))
    assert ts.wait_idle()
    assert 1 <= ts.reads < moves / 2  # throttled: far fewer reads than mouse moves
    _, arr = read_stack(path)
    np.testing.assert_array_equal(plotted(dock, "sentinel1_v")[1], arr[:, 10 + moves - 1, 20])
    # moving without the button held does nothing
    reads = ts.reads
    dock.tool.canvasMoveEvent(mouse(dock.canvas, "move", QgsPointXY(*pixel_centre(path, 3, 3)),
                                    buttons=0))
    assert ts.wait_idle() and ts.reads == reads


def test_no_stacks_outside_points_and_unticked_stacks_give_messages(dock, scene_tiny):
    from qgis.core import QgsCoordinateReferenceSystem, QgsPointXY

    _, manifest, _ = scene_tiny
    ts = dock.timeseries
    dock.canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:32645"))
    assert "No velocity stack is loaded" in ts.status.text()
    click(dock, QgsPointXY(421000, 3329000))
    assert "No velocity stack is loaded" in ts.status.text() and ts.plot.items == {}

    layers = add_stacks(manifest, ("landsat_v", "uav_v"))
    add_layer(manifest["paths"]["dem"], "dem")  # not a stack: not listed
    ts.refresh_stacks()
    assert ts.stack_list.count() == 2
    x, y = pixel_centre(manifest["paths"]["landsat_v"], 5, 5)  # outside the UAV footprint
    click(dock, QgsPointXY(x, y))
    assert sorted(ts.plot.items) == ["landsat_v", "uav_v"]
    assert plotted(dock, "uav_v")[1].size == 0  # no value there: a legend entry, no points
    assert "uav_v 0/6" in ts.status.text()
    click(dock, QgsPointXY(x + 50000, y))  # 50 km east: outside every stack
    assert "landsat_v does not cover this point" in ts.status.text()
    assert ts.plot.items == {}
    ts.set_ticked([layers["uav_v"].id()])
    assert ts.wait_idle() and "does not cover" in ts.status.text()
    ts.set_ticked([])
    assert ts.wait_idle() and "Tick at least one" in ts.status.text()


def test_pin_hover_and_exports_round_trip(dock, scene_tiny, tmp_path):
    from qgis.core import QgsCoordinateReferenceSystem, QgsPointXY
    from qgis.PyQt.QtGui import QImage

    _, manifest, _ = scene_tiny
    paths = manifest["paths"]
    add_stacks(manifest, ("landsat_v", "sentinel2_v", "uav_v"))
    ts = dock.timeseries
    dock.canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:32645"))
    row, col = glacier_pixel(manifest)
    click(dock, QgsPointXY(*pixel_centre(paths["landsat_v"], row, col)))
    ts.pin()
    click(dock, QgsPointXY(*pixel_centre(paths["landsat_v"], row + 3, col)))
    pinned = f"landsat_v · pin 1 (row {row}, col {col})"
    assert pinned in ts.plot.items and "landsat_v" in ts.plot.items
    _, arr = read_stack(paths["landsat_v"])
    np.testing.assert_array_equal(plotted(dock, pinned)[1], arr[:, row, col])
    np.testing.assert_array_equal(plotted(dock, "landsat_v")[1], arr[:, row + 3, col])

    # hover on a plotted point shows its date and value
    info = read_stack_info(paths["landsat_v"])
    k = int(np.flatnonzero(np.isfinite(arr[:, row + 3, col]))[0])
    x = (info.intervals[k].mid.toordinal() - 719163) * 86400.0
    text = ts.plot.hover_at(x, float(arr[k, row + 3, col]))
    assert info.intervals[k].mid.isoformat() in text and f"{arr[k, row + 3, col]:.1f}" in text

    # CSV: dates and one column per plotted series, equal to the stacks
    csv_path = ts.export_csv(tmp_path / "series.csv")
    dates, cols = read_series_csv(csv_path)
    here = ("landsat_v", "sentinel2_v", "uav_v")
    assert set(cols) == set(here) | {f"{n} · pin 1 (row {row}, col {col})" for n in here}
    by_date = {d: i for i, d in enumerate(dates)}
    for name, (r, c) in (("landsat_v", (row + 3, col)), (pinned, (row, col))):
        idx = [by_date[iv.mid] for iv in info.intervals]
        np.testing.assert_allclose(cols[name][idx], arr[:, r, c].astype(float), rtol=0,
                                   atol=0, equal_nan=True)
    uinfo, uarr = read_stack(paths["uav_v"])
    np.testing.assert_array_equal(cols["uav_v"][[by_date[iv.mid] for iv in uinfo.intervals]],
                                  uarr[:, row + 3, col])
    ts.clear_pins()
    assert pinned not in ts.plot.items

    png = ts.export_image(tmp_path / "plot.png", width=1200)
    image = QImage(png)
    assert image.width() == 1200 and image.height() > 200
    bits = image.constBits()
    bits.setsize(image.sizeInBytes())
    assert len(set(bytes(bits))) > 10  # axes, curves and text, not a blank image
    svg = ts.export_image(tmp_path / "plot.svg")
    with open(svg) as f:
        assert "<svg" in f.read()


CAL_HEADER = ["source", "sensor", "role", "weight", "n", "bias", "rmse", "r2", "slope"]
CAL_ROWS = [["landsat", "landsat", "primary", 0.31, 40, 4.2, 14.9, 0.90, 0.97],
            ["sentinel2", "sentinel2", "primary", 0.54, 40, -2.8, 8.4, 0.96, 1.02],
            ["sentinel1", "sentinel1", "auxiliary", 0.15, 40, 1.9, 18.3, 0.84, 0.95],
            ["combined", "", "combined", 1.0, 40, -0.4, 6.7, 0.97, 0.99]]


def write_calibration(folder, n=40, seed=1):
    rng = np.random.default_rng(seed)
    uav = rng.uniform(50, 200, n)
    cols = {s: uav + rng.normal(0, sd, n) for s, sd in (("landsat", 15), ("sentinel2", 8),
                                                        ("sentinel1", 18))}
    cols["sentinel2"][3] = np.nan
    combined = 0.31 * cols["landsat"] + 0.54 * np.nan_to_num(cols["sentinel2"]) + \
        0.15 * cols["sentinel1"]
    cal = write_csv(os.path.join(folder, "weights.csv"), CAL_HEADER, CAL_ROWS)
    header = ["interval", "row", "col", "uav", "v_landsat", "v_sentinel2", "v_sentinel1",
              "v_combined"]
    rows = [["2020-06-28/2020-07-30", 40 + i % 5, 20 + i // 5, uav[i], cols["landsat"][i],
             "" if np.isnan(cols["sentinel2"][i]) else cols["sentinel2"][i],
             cols["sentinel1"][i], combined[i]] for i in range(n)]
    samples = write_csv(os.path.join(folder, "weights_samples.csv"), header, rows)
    return cal, samples, uav, cols, combined


def test_calibration_tab_from_files_and_project_layers(dock, tmp_path):
    from qgis.core import QgsProject, QgsVectorLayer

    cal_path, samples_path, uav, cols, combined = write_calibration(str(tmp_path))
    tab = dock.calibration
    assert "Choose the calibration table" in tab.status.text()
    tab.open_file("calibration", cal_path)  # the samples file beside it comes along
    assert tab.combos["samples"].currentData() == f"file:{samples_path}"
    rows = tab.summary_rows()
    assert [r[0] for r in rows] == ["landsat", "sentinel2", "sentinel1", "combined"]
    assert [r[3] for r in rows] == ["0.310", "0.540", "0.150", "1.000"]
    assert rows[1][5:8] == ["-2.80", "8.40", "0.960"]
    legends = tab.plot.legend_texts("sources")
    assert legends[0] == "landsat (primary) w=0.310\nn=40 · bias=+4.2 · RMSE=14.9 · R²=0.900"
    assert legends[2].startswith("sentinel1 (auxiliary) w=0.150\n") and legends[-1] == "1:1"
    assert tab.plot.legend_texts("fused")[0].startswith("combined\nn=40 · bias=-0.4")
    x, y = tab.plot.scatters["sentinel2"].getData()
    ok = np.isfinite(cols["sentinel2"])
    np.testing.assert_allclose(x, uav[ok])
    np.testing.assert_allclose(y, cols["sentinel2"][ok])
    np.testing.assert_allclose(tab.plot.scatters["combined"].getData()[1], combined)
    assert "40 UAV samples" in tab.status.text()
    out = tab.export_csv(tmp_path / "exported.csv")
    again = read_table_rows(out)
    assert len(again) == 40 and float(again[5]["v_landsat"]) == pytest.approx(cols["landsat"][5])

    # the same tables as project layers (no geometry) are offered and chosen
    for path, name in ((cal_path, "weights"), (samples_path, "weights_samples")):
        layer = QgsVectorLayer(path, name, "ogr")
        assert layer.isValid()
        QgsProject.instance().addMapLayer(layer)
    tab.refresh_choices()
    for kind in ("calibration", "samples"):
        combo = tab.combos[kind]
        combo.setCurrentIndex(next(i for i in range(combo.count())
                                   if "(project)" in combo.itemText(i)))
    assert tab.combos["calibration"].currentData().startswith("layer:")
    assert [r[3] for r in tab.summary_rows()] == ["0.310", "0.540", "0.150", "1.000"]
    np.testing.assert_allclose(tab.plot.scatters["landsat"].getData()[1], cols["landsat"])

    # a table without the calibration columns: a message, no exception
    bad = write_csv(tmp_path / "bad.csv", ["a", "b"], [[1, 2]])
    tab.open_file("calibration", bad)
    assert "no column source, weight" in tab.status.text()


def test_dock_without_pyqtgraph_explains_how_to_install(qgis_iface, monkeypatch):
    from qgis.PyQt.QtWidgets import QLabel

    from glacier_velocity.ui.dock import GlacierVelocityDock

    monkeypatch.setitem(sys.modules, "pyqtgraph", None)  # import pyqtgraph -> ImportError
    d = GlacierVelocityDock(qgis_iface)
    assert not d.available and isinstance(d.widget(), QLabel)
    assert "python3-pyqtgraph" in d.widget().text()
    assert d.toolbar_actions() == []
    d.close_tools()
    d.deleteLater()


def test_error_bars_from_band_metadata_on_a_stack_in_another_utm_zone(dock, tmp_path):
    from qgis.core import QgsCoordinateReferenceSystem

    from glacier_velocity.core.io.dates import Interval
    from glacier_velocity.core.io.grid import Grid
    from glacier_velocity.core.io.products import write_stack

    grid = Grid.from_bounds(300000.0, 3330000.0, 100.0, 4, 5, 32646)
    intervals = [Interval.month(2020, m) for m in (1, 2, 3)]
    arr = np.arange(60, dtype=np.float32).reshape(3, 4, 5) + 100
    path = write_stack(tmp_path / "err.tif", grid, arr, intervals, "sentinel2",
                       band_metadata=[{"V_ERROR": 3.0}, {}, {"V_ERROR": 5.0}])
    add_layer(path, "with errors")
    dock.canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:32645"))
    click(dock, to_canvas(dock.canvas, 300250.0, 3329850.0, 32646))  # row 1, col 2
    np.testing.assert_array_equal(plotted(dock, "with errors")[1], arr[:, 1, 2])
    bars = dock.timeseries.plot._bars
    assert bars.used == 1
    np.testing.assert_array_equal(bars.items[0].opts["height"], [6.0, 10.0])
    np.testing.assert_array_equal(bars.items[0].opts["y"], arr[[0, 2], 1, 2])


def test_components_of_another_zone_are_shown_in_the_canvas_axes(dock, zone_flow):
    """A vy stack of a flow due grid east in UTM 45N, clicked on a UTM 46N canvas, is plotted in
    the canvas's axes (≈ −5.2 m/yr, like the 46N stack of the same flow); a lone one is refused."""
    from qgis.core import QgsCoordinateReferenceSystem

    zone_flow.stack("vx"), zone_flow.stack("vy")
    lone = zone_flow.stack("vy", name="north_only.tif")
    truth46 = zone_flow.stack("vy", name="truth46_vy.tif", grid=zone_flow.grid46,
                              values=zone_flow.truth_vy)
    add_layer(zone_flow.path("flow_vy.tif"), "flow_vy")
    add_layer(truth46, "truth46_vy")
    add_layer(lone, "north_only")
    dock.canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:32646"))
    dock.pick_action.trigger()
    x, y = pixel_centre(zone_flow.path("flow_vy.tif"), 20, 20)
    click(dock, to_canvas(dock.canvas, x, y, 32645))
    _, turned = plotted(dock, "flow_vy")
    _, truth = plotted(dock, "truth46_vy")
    assert turned.size == 2 and -5.4 < turned.mean() < -5.0
    np.testing.assert_allclose(turned, truth, atol=100 * np.radians(0.1))
    assert "north_only.tif" in dock.timeseries.status.text()


# ---------------------------------------------------------------------------- display (issue 13)

def small_stack(tmp_path, name, values, sensor="landsat", errors=None):
    """A 3×4 stack in UTM 45N whose pixel (1, 2) holds ``values`` (one per month of 2020...)."""
    from glacier_velocity.core.io.dates import Interval
    from glacier_velocity.core.io.grid import Grid
    from glacier_velocity.core.io.products import write_stack

    grid = Grid.from_bounds(400000.0, 3300000.0, 30.0, 3, 4, 32645)
    n = len(values)
    intervals = [Interval.month(2020 + m // 12, m % 12 + 1) for m in range(n)]
    arr = np.full((n, 3, 4), 50.0, np.float32)
    arr[:, 1, 2] = values
    path = write_stack(tmp_path / f"{name}.tif", grid, arr, intervals, sensor)
    if errors is not None:
        err = np.full(arr.shape, np.nan, np.float32)
        err[:, 1, 2] = errors
        write_stack(tmp_path / f"{name}_error.tif", grid, err, intervals, sensor)
    return path, (400000.0 + 2.5 * 30.0, 3300000.0 - 1.5 * 30.0)  # centre of pixel (1, 2)


def settle(widget):
    from qgis.PyQt.QtCore import QCoreApplication

    for _ in range(3):
        QCoreApplication.processEvents()
    widget.plot.ci.layout.activate()


def test_legend_sits_below_the_data_and_within_a_third_of_the_plot(dock, tmp_path):
    from qgis.core import QgsCoordinateReferenceSystem, QgsPointXY

    dock.canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:32645"))
    rng = np.random.default_rng(3)
    for k in range(14):  # many stacks: more than fit in a third of the height
        path, point = small_stack(tmp_path, f"stack_{k:02d}", rng.normal(100, 10, 24))
        add_layer(path, f"stack_{k:02d}")
    ts = dock.timeseries
    click(dock, QgsPointXY(*point))
    settle(ts)
    plot = ts.plot
    data = plot.plotItem.vb.sceneBoundingRect()
    legend = plot.legend.sceneBoundingRect()
    assert legend.top() >= data.bottom()  # under the data (and its axis), never over it
    assert legend.height() <= plot.height() / 3 + 1
    assert plot.legend_columns > 1  # several columns before rows grow
    shown = plot.legend_labels()
    assert len(shown) <= 14 and (len(shown) == 14 or shown[-1].startswith("+ "))

    # one stack: a one-line legend, and the data take almost the whole height
    ts.set_ticked([ts.ticked_layers()[0].id()])
    assert ts.wait_idle()
    settle(ts)
    assert len(plot.legend_labels()) == 1
    assert plot.legend.sceneBoundingRect().height() < 0.1 * plot.height()
    assert plot.plotItem.vb.sceneBoundingRect().height() > 0.6 * plot.height()


def test_pins_are_marked_on_the_map_and_removed(dock, tmp_path):
    from qgis.core import QgsCoordinateReferenceSystem, QgsPointXY

    from glacier_velocity.ui.plot_widgets import PIN_SYMBOLS

    dock.canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:32645"))
    path, (x, y) = small_stack(tmp_path, "lan", np.linspace(80, 120, 12))
    add_layer(path, "lan")
    ts = dock.timeseries
    scene = dock.canvas.scene()
    points = [(x, y), (x - 30.0, y), (x, y + 30.0)]
    for px, py in points[:2]:
        click(dock, QgsPointXY(px, py))
        ts.pin()
    click(dock, QgsPointXY(*points[2]))
    markers = ts.pin_markers()
    assert len(markers) == 2 and all(m.scene() is scene for m in markers)
    for m, (px, py) in zip(markers, points):
        assert (m.center().x(), m.center().y()) == (px, py)
    assert markers[0].pin_icon != markers[1].pin_icon  # each pin its own shape...
    labels = ["lan · pin 1 (row 1, col 2)", "lan · pin 2 (row 1, col 1)"]
    symbols = [ts.plot.items[label].opts["symbol"] for label in labels]
    assert symbols == list(PIN_SYMBOLS[:2])  # ...and the same shape in the plot
    assert ts.plot.legend_labels() == ["lan", "pin 1: row 1, col 2 (dashed)",
                                       "pin 2: row 1, col 1 (dashed)"]  # one entry per pin
    ts.clear_pins()
    assert ts.pin_markers() == [] and all(m.scene() is None for m in markers)
    ts.pin()
    marker = ts.pin_markers()[0]
    dock.close_tools()  # closing the dock removes them too
    assert marker.scene() is None and ts.pin_markers() == []


def test_colours_stay_with_their_stack(dock, tmp_path, scene_tiny):
    from qgis.core import QgsCoordinateReferenceSystem, QgsPointXY, QgsProject

    from glacier_velocity.ui.plot_widgets import SENSOR_COLOURS, stack_colours

    _, manifest, _ = scene_tiny
    dock.canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:32645"))
    layers = add_stacks(manifest, ("landsat_v", "sentinel2_v", "uav_v"))
    extra = str(tmp_path / "landsat_filtered.tif")
    gdal.Translate(extra, manifest["paths"]["landsat_v"])
    ts = dock.timeseries
    row, col = glacier_pixel(manifest)
    point = QgsPointXY(*pixel_centre(manifest["paths"]["landsat_v"], row, col))

    def colours():
        ts.refresh_stacks()
        click(dock, point)
        return {label: item.opts["pen"].color().name() for label, item in ts.plot.items.items()
                if label in ("landsat_v", "sentinel2_v", "uav_v", "landsat_filtered")}

    first = colours()
    assert first == {"landsat_v": SENSOR_COLOURS["landsat"],
                     "sentinel2_v": SENSOR_COLOURS["sentinel2"], "uav_v": SENSOR_COLOURS["uav"]}
    # another Landsat stack put first in the tree, one stack removed: nobody changes colour
    QgsProject.instance().removeMapLayer(layers["sentinel2_v"].id())
    layer = add_layer(extra, "landsat_filtered")
    root = QgsProject.instance().layerTreeRoot()
    node = root.findLayer(layer.id())
    root.insertChildNode(0, node.clone())
    root.removeChildNode(node)
    second = colours()
    assert second["landsat_v"] == first["landsat_v"] and second["uav_v"] == first["uav_v"]
    assert second["landsat_filtered"] not in (first["landsat_v"], first["uav_v"])
    # the list shows the plot's colours; another view (the calibration tab) agrees
    icons = {ts.stack_list.item(i).text().split(" — ")[0]:
             ts.stack_list.item(i).icon().pixmap(12, 12).toImage().pixelColor(6, 6).name()
             for i in range(ts.stack_list.count())}
    assert icons == {k: second[k] for k in icons}
    other_view = stack_colours([("landsat_filtered", "landsat"), ("landsat_v", "landsat")])
    assert other_view == {k: second[k] for k in other_view}


def test_empty_plot_shows_a_message_not_axes(dock, tmp_path):
    from qgis.core import QgsCoordinateReferenceSystem, QgsPointXY

    ts = dock.timeseries
    plot = ts.plot
    assert plot.empty and plot.message.isVisible()
    assert not plot.plotItem.getAxis("bottom").isVisible()  # no "00.250 00.500" date ticks
    assert "No velocity stack is loaded" in plot.message.toPlainText()
    dock.canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:32645"))
    values = np.full(12, np.nan)
    path, (x, y) = small_stack(tmp_path, "gaps", values)
    add_layer(path, "gaps")
    ts.refresh_stacks()
    assert "Click on the map" in plot.message.toPlainText()
    click(dock, QgsPointXY(x, y))  # a pixel without any value
    assert plot.empty and "No ticked stack has a value" in plot.message.toPlainText()
    click(dock, QgsPointXY(x - 30.0, y))  # 50 m/yr there
    assert not plot.empty and not plot.message.isVisible()
    assert plot.plotItem.getAxis("bottom").isVisible()


def test_one_outlier_does_not_set_the_y_range_but_stays_visible(dock, tmp_path):
    from qgis.core import QgsCoordinateReferenceSystem, QgsPointXY

    dock.canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:32645"))
    values = 100 + 15 * np.sin(np.arange(36) / 12 * 2 * np.pi)
    values[20] = 360.0  # one wild value
    path, (x, y) = small_stack(tmp_path, "spiky", values)
    add_layer(path, "spiky")
    ts = dock.timeseries
    click(dock, QgsPointXY(x, y))
    plot = ts.plot
    (_, _), (lo, hi) = plot.plotItem.vb.viewRange()
    assert 110 < hi < 130 and 75 < lo < 90  # the seasonal cycle fills the plot
    assert plot.clipped == {"spiky": 1}
    edge = plot._clipped.items[0]
    ex, ey = edge.getData()
    t = ts.current[0].timestamps()
    assert ex.tolist() == [t[20]] and ey.tolist() == [hi]  # a marker on the top edge
    assert "360.0 m/yr" in plot.hover_at(t[20], hi)  # hovering it tells the real value


def test_error_bars_from_the_error_stack_beside(dock, tmp_path):
    from qgis.core import QgsCoordinateReferenceSystem, QgsPointXY

    dock.canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:32645"))
    errors = np.array([4.0, np.nan, 6.0, 8.0])
    path, (x, y) = small_stack(tmp_path, "fused", [100.0, 110.0, 120.0, 130.0], "fused", errors)
    add_layer(path, "fused")
    click(dock, QgsPointXY(x, y))
    bars = dock.timeseries.plot._bars
    assert bars.used == 1
    np.testing.assert_array_equal(bars.items[0].opts["height"], [8.0, 12.0, 16.0])
    assert "± 8.0" in dock.timeseries.plot.describe(dock.timeseries.current[0], 3)
