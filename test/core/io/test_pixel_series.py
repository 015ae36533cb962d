"""Plot data of the dock: pixel series read with 1×1 windows, CSV export, calibration tables."""

import datetime as dt
import math
import os

import numpy as np
import pytest
from osgeo import ogr

from glacier_velocity.core.io.dates import Interval
from glacier_velocity.core.errors import InputError
from glacier_velocity.core.io.grid import Grid
from glacier_velocity.core.io.pixel_series import (PixelSeries, StackPixelReader, connect_mask,
                                                   parse_calibration, parse_samples,
                                                   read_table_rows, samples_companion,
                                                   samples_table, series_table, write_csv,
                                                   write_series_csv)
from glacier_velocity.test.helpers import read_pixel_series, read_series_csv
from glacier_velocity.core.io.products import write_stack

GRID = Grid.from_bounds(500000.0, 4000000.0, 20.0, 6, 8, 32645)  # 6 rows x 8 cols, 20 m


def months(n, year=2020):
    return [Interval.month(year + m // 12, m % 12 + 1) for m in range(n)]


@pytest.fixture
def stack(tmp_path):
    """A 5-band stack whose value encodes band, row and col; band 3 is NoData at (2, 5)."""
    b, r, c = np.meshgrid(np.arange(5), np.arange(6), np.arange(8), indexing="ij")
    arr = (1000.0 * b + 10.0 * r + c).astype(np.float32)
    arr[2, 2, 5] = np.nan
    band_meta = [{"V_ERROR": 2.5}, {}, {"V_ERROR": 4.0}, {}, {}]
    path = write_stack(tmp_path / "s.tif", GRID, arr, months(5), "landsat",
                       band_metadata=band_meta)
    return str(path), arr


def centre(row, col):
    return GRID.transform[0] + (col + 0.5) * 20.0, GRID.transform[3] - (row + 0.5) * 20.0


def test_series_at_a_point_equals_the_stack_with_nan_gaps(stack):
    path, arr = stack
    s = read_pixel_series(path, *centre(2, 5), label="L")
    assert (s.row, s.col, s.label, s.sensor, s.quantity) == (2, 5, "L", "landsat", "v")
    np.testing.assert_array_equal(s.values, arr[:, 2, 5].astype(np.float64))
    assert np.isnan(s.values[2]) and s.valid == 4
    assert s.dates[0] == dt.date(2020, 1, 16) and s.dates[1] == dt.date(2020, 2, 15)
    assert s.timestamps()[0] == (dt.date(2020, 1, 16) - dt.date(1970, 1, 1)).days * 86400.0
    # errors only where the band metadata gives one
    assert s.errors[0] == 2.5 and s.errors[2] == 4.0 and np.isnan(s.errors[1])


def test_per_pixel_errors_from_an_error_stack_beside_or_named_in_metadata(stack, tmp_path):
    path, arr = stack
    err = np.full(arr.shape, np.nan, np.float32)
    err[:, 2, 5] = [1.0, 2.0, np.nan, 3.0, 4.0]  # no per-pixel error in band 3: metadata's 4.0
    write_stack(tmp_path / "s_error.tif", GRID, err / 365.25, months(5), "landsat",
                metadata={"UNITS": "m/day"})  # converted like the stack's values
    s = read_pixel_series(path, *centre(2, 5))
    np.testing.assert_allclose(s.errors, [1.0, 2.0, 4.0, 3.0, 4.0], rtol=1e-6)
    # a stack naming its error stack in metadata; an error stack of another shape is ignored
    named = write_stack(tmp_path / "fused.tif", GRID, arr, months(5), "fused",
                        metadata={"ERROR_STACK": "sigma.tif"})
    write_stack(tmp_path / "sigma.tif", GRID, err, months(5), "fused")
    np.testing.assert_allclose(read_pixel_series(named, *centre(2, 5)).errors[:2], [1.0, 2.0])
    other = write_stack(tmp_path / "other.tif", GRID, arr, months(5), "landsat")
    write_stack(tmp_path / "other_error.tif", GRID, err[:4], months(4), "landsat")
    assert read_pixel_series(other, *centre(2, 5)).errors is None


def test_pixel_edges_and_outside_points(stack):
    path, _ = stack
    reader = StackPixelReader(path)
    x0, y0 = GRID.transform[0], GRID.transform[3]
    assert reader.pixel(x0, y0) == (0, 0)  # top-left corner belongs to the first pixel
    assert reader.pixel(x0 + 8 * 20.0 - 1e-6, y0 - 6 * 20.0 + 1e-6) == (5, 7)
    assert reader.pixel(x0 + 8 * 20.0, y0) is None  # right edge: outside
    assert reader.pixel(x0 - 1.0, y0 - 1.0) is None
    assert reader.read(x0 - 100.0, y0) is None
    # a neighbouring pixel read with the same open reader
    s = reader.read(*centre(5, 0))
    np.testing.assert_array_equal(s.values, 1000.0 * np.arange(5) + 50.0)


def test_units_m_per_day_are_converted_and_errors_from_dataset_metadata(tmp_path):
    arr = np.full((2, 6, 8), 0.5, np.float32)
    path = write_stack(tmp_path / "d.tif", GRID, arr, months(2), "uav",
                       metadata={"UNITS": "m/day", "V_ERROR": "0.01"})
    s = read_pixel_series(path, *centre(1, 1))
    np.testing.assert_allclose(s.values, 0.5 * 365.25)
    np.testing.assert_allclose(s.errors, 0.01 * 365.25)


def test_connect_mask_breaks_at_nan_and_long_gaps():
    ivs = [Interval(dt.date(2019, 7, 1), dt.date(2019, 7, 31)),
           Interval(dt.date(2019, 8, 1), dt.date(2019, 8, 31)),
           Interval(dt.date(2020, 7, 1), dt.date(2020, 7, 31)),
           Interval(dt.date(2020, 8, 1), dt.date(2020, 8, 31)),
           Interval(dt.date(2020, 9, 1), dt.date(2020, 9, 30)),
           Interval(dt.date(2020, 10, 1), dt.date(2020, 10, 31))]
    s = PixelSeries("u", "", "uav", "v", ivs, np.array([1, 2, 3, 4, np.nan, 6.0]), 0, 0)
    assert connect_mask(s).tolist() == [True, False, True, False, False, False]


def _series(label, intervals, values, sensor="landsat"):
    return PixelSeries(label, "", sensor, "v", intervals, np.array(values, float), 0, 0)


def test_csv_export_round_trips_with_the_union_of_dates(tmp_path):
    a = _series("landsat", months(3), [1.5, np.nan, 3.25])
    b = _series("uav", [Interval(dt.date(2020, 2, 1), dt.date(2020, 2, 29)),
                        Interval(dt.date(2020, 6, 28), dt.date(2020, 7, 30))], [7.0, 8.125], "uav")
    c = _series("landsat", months(1), [9.0])  # a repeated label gets a suffix
    header, rows = series_table([a, b, c])
    assert header == ["date", "landsat", "uav", "landsat (2)"]
    assert [r[0] for r in rows] == ["2020-01-16", "2020-02-15", "2020-03-16", "2020-07-14"]
    path = write_series_csv(tmp_path / "out" / "series.csv", [a, b, c])
    dates, cols = read_series_csv(path)
    assert dates == [dt.date(2020, 1, 16), dt.date(2020, 2, 15), dt.date(2020, 3, 16),
                     dt.date(2020, 7, 14)]
    np.testing.assert_array_equal(cols["landsat"], [1.5, np.nan, 3.25, np.nan])
    np.testing.assert_array_equal(cols["uav"], [np.nan, 7.0, np.nan, 8.125])
    np.testing.assert_array_equal(cols["landsat (2)"], [9.0, np.nan, np.nan, np.nan])


CALIBRATION = [
    {"source": "landsat", "sensor": "landsat", "role": "primary", "weight": "0.3", "n": "120",
     "bias": "4.1", "rmse": "14.5", "r2": "0.91", "slope": "0.97"},
    {"source": "sentinel2", "sensor": "sentinel2", "role": "primary", "weight": "0.7", "n": "118",
     "bias": "-2.9", "rmse": "8.2", "r2": "0.96", "slope": "1.01"},
    {"source": "combined", "sensor": "", "role": "combined", "weight": "", "n": "115",
     "bias": "-0.8", "rmse": "6.9", "r2": "0.97", "slope": "0.99"},
]


def test_parse_calibration_and_its_legend():
    cal = parse_calibration(CALIBRATION)
    assert [s.source for s in cal.sources] == ["landsat", "sentinel2"]
    assert cal.weights == {"landsat": 0.3, "sentinel2": 0.7}
    assert cal.combined.n == 115 and math.isnan(cal.combined.weight)
    assert cal.sources[1].legend() == ("sentinel2 (primary) w=0.700 · n=118 · bias=-2.9 · "
                                       "RMSE=8.2 · R²=0.960")
    assert cal.combined.legend(sep="\n") == "combined\nn=115 · bias=-0.8 · RMSE=6.9 · R²=0.970"
    # per-class rows (weights per class of a categorical raster) are kept apart
    per_class = [dict(r, **{"class": "all"}) for r in CALIBRATION] + \
        [dict(r, **{"class": "2", "weight": w}) for r, w in zip(CALIBRATION, ("0.1", "0.9", "1"))]
    cal = parse_calibration(per_class)
    assert cal.weights == {"landsat": 0.3, "sentinel2": 0.7} and cal.combined.n == 115
    assert [f.weight for f in cal.classes["2"]] == [0.1, 0.9, 1.0]
    with pytest.raises(InputError, match="weight"):
        parse_calibration([{"source": "x"}])
    with pytest.raises(InputError, match="empty"):
        parse_calibration([])


def test_calibration_tables_from_csv_and_geopackage(tmp_path):
    header = list(CALIBRATION[0])
    csv_path = write_csv(tmp_path / "weights.csv", header, [[r[k] for k in header]
                                                            for r in CALIBRATION])
    samples = write_csv(tmp_path / "weights_samples.csv",
                        ["interval", "row", "col", "uav", "v_landsat", "v_sentinel2", "v_combined"],
                        [["2020-06-28/2020-07-30", 3, 4, 100.0, 104.0, "", 101.0],
                         ["2020-06-28/2020-07-30", 3, 5, 120.5, 118.0, 119.0, 118.7]])
    assert parse_calibration(read_table_rows(csv_path)).weights["sentinel2"] == 0.7
    assert samples_companion(csv_path) == samples
    s = parse_samples(read_table_rows(samples))
    np.testing.assert_array_equal(s.uav, [100.0, 120.5])
    np.testing.assert_array_equal(s.sources["sentinel2"], [np.nan, 119.0])
    np.testing.assert_array_equal(s.combined, [101.0, 118.7])
    assert list(s.sources) == ["landsat", "sentinel2"]
    header2, rows2 = samples_table(s)
    assert header2 == ["interval", "row", "col", "uav", "v_landsat", "v_sentinel2", "v_combined"]
    assert rows2[0] == ["2020-06-28/2020-07-30", "3", "4", "100.0", "104.0", "", "101.0"]
    with pytest.raises(InputError, match="uav"):
        parse_samples([{"v_landsat": 1}])

    # the same table as a GeoPackage table without geometry
    gpkg = str(tmp_path / "cal.gpkg")
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(gpkg)
    for name in ("weights", "weights_samples"):
        layer = ds.CreateLayer(name, geom_type=ogr.wkbNone)
        layer.CreateField(ogr.FieldDefn("source", ogr.OFTString))
        layer.CreateField(ogr.FieldDefn("weight", ogr.OFTReal))
        for r in CALIBRATION:
            f = ogr.Feature(layer.GetLayerDefn())
            f.SetField("source", r["source"])
            if r["weight"]:
                f.SetField("weight", float(r["weight"]))
            layer.CreateFeature(f)
    ds = None
    cal = parse_calibration(read_table_rows(f"{gpkg}|layername=weights"))
    assert cal.weights == {"landsat": 0.3, "sentinel2": 0.7}
    assert samples_companion(f"{gpkg}|layername=weights") == f"{gpkg}|layername=weights_samples"
    with pytest.raises(InputError, match="does not exist"):
        read_table_rows(os.path.join(tmp_path, "missing.csv"))


def _gpkg_table(path, name):
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    ds.CreateLayer(name, geom_type=ogr.wkbNone).CreateField(ogr.FieldDefn("uav", ogr.OFTReal))
    ds = None
    return str(path)


def test_samples_found_beside_the_calibration_table_as_calibrateweights_writes_them(tmp_path):
    # files the user named: a GeoPackage table whose samples are another GeoPackage beside it
    table = _gpkg_table(tmp_path / "weights.gpkg", "weights")
    samples = _gpkg_table(tmp_path / "weights_samples.gpkg", "weights_samples")
    _gpkg_table(tmp_path / "other.gpkg", "other")
    assert samples_companion(f"{table}|layername=weights") == samples
    # QGIS temporary outputs: OUTPUT.gpkg and OUTPUT_SAMPLES.gpkg, each in its own uuid folder;
    # the samples of the same run (nearest in time) are chosen, not an older run's
    temp = tmp_path / "processing_abc"
    run = {}
    for k, when in enumerate((1000.0, 5000.0)):
        for i, name in enumerate(("OUTPUT", "OUTPUT_SAMPLES")):
            folder = temp / f"{k}{i}".rjust(32, "a")  # a uuid without dashes
            folder.mkdir(parents=True)
            run[(k, name)] = path = _gpkg_table(folder / f"{name}.gpkg", name)
            os.utime(path, (when + i, when + i))
    assert samples_companion(f"{run[(1, 'OUTPUT')]}|layername=OUTPUT") == run[(1, "OUTPUT_SAMPLES")]
    assert samples_companion(run[(0, "OUTPUT")]) == run[(0, "OUTPUT_SAMPLES")]
    # a table in an ordinary folder with no samples beside it: none
    (tmp_path / "alone").mkdir()
    assert samples_companion(_gpkg_table(tmp_path / "alone" / "t.gpkg", "t")) is None
