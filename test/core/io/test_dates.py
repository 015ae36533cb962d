"""Date parsing from product names and metadata, intervals and baselines."""

import datetime as dt

import pytest

from glacier_velocity.core.io.dates import (Interval, acquisition_date, baseline_years, date_from_name,
                                         match_intervals,
                                         decimal_year, monthly_intervals, parse_date)
from glacier_velocity.core.errors import InputError
from glacier_velocity.core.io.grid import Grid
from glacier_velocity.core.io.raster import write_raster

D = dt.date


@pytest.mark.parametrize("name, expected", [
    ("LC08_L1TP_140041_20200703_20200913_02_T1_B8.TIF", D(2020, 7, 3)),
    ("S2A_MSIL1C_20190605T045701_N0207_R119_T45RUV_20190605T071237.SAFE", D(2019, 6, 5)),
    ("S1B_IW_GRDH_1SDV_20181107T120414_20181107T120439_013500_018FD1_ABCD.zip", D(2018, 11, 7)),
    ("/data/uav/ortho_2021-08-03_dem.tif", D(2021, 8, 3)),
    ("20200121.jpg", D(2020, 1, 21)),
    ("scene_12345678_20200121.tif", D(2020, 1, 21)),  # 12345678 is not a date: skipped
    ("no_date_here.tif", None),
])
def test_date_from_name(name, expected):
    assert date_from_name(name) == expected


def test_acquisition_date_order_and_errors(tmp_path):
    grid = Grid.from_bounds(0, 100, 10, 4, 4, 32645)
    plain = str(tmp_path / "image.tif")
    write_raster(plain, grid, [[1.0] * 4] * 4, metadata={"ACQUISITION_DATE": "2019-03-04"})
    assert acquisition_date(plain) == D(2019, 3, 4)
    assert acquisition_date(plain, given="2018-01-02") == D(2018, 1, 2)
    tiff = str(tmp_path / "tiff.tif")
    write_raster(tiff, grid, [[1.0] * 4] * 4, metadata={"TIFFTAG_DATETIME": "2017:05:06 10:00:00"})
    assert acquisition_date(tiff) == D(2017, 5, 6)
    bare = str(tmp_path / "bare.tif")
    write_raster(bare, grid, [[1.0] * 4] * 4)
    with pytest.raises(InputError, match="No acquisition date.*bare.tif"):
        acquisition_date(bare)
    with pytest.raises(InputError, match="not a valid date"):
        parse_date("2019-02-30")


def test_baseline_and_intervals():
    assert baseline_years(D(2020, 1, 1), D(2021, 1, 1)) == pytest.approx(366 / 365.25)
    with pytest.raises(InputError, match="baseline .* is 0 days"):
        baseline_years(D(2020, 1, 1), D(2020, 1, 1))
    with pytest.raises(InputError, match="-5 days"):
        baseline_years(D(2020, 1, 6), D(2020, 1, 1))
    iv = Interval.parse("2019-06-03/2019-07-05")
    assert str(iv) == "2019-06-03/2019-07-05" and iv.days == 32
    assert iv.overlap_days(Interval.month(2019, 6)) == 28
    assert iv.overlap_days(Interval.month(2019, 8)) == 0
    with pytest.raises(InputError, match="not a date interval"):
        Interval.parse("2019-06-03")
    months = monthly_intervals(D(2019, 11, 15), D(2020, 2, 1))
    assert [str(m) for m in months] == ["2019-11-01/2019-11-30", "2019-12-01/2019-12-31",
                                        "2020-01-01/2020-01-31", "2020-02-01/2020-02-29"]
    assert decimal_year(D(2020, 1, 1)) == 2020.0
    assert decimal_year(D(2020, 7, 2)) == pytest.approx(2020 + 183 / 366)


def test_match_intervals_largest_overlap():
    months = monthly_intervals(D(2020, 5, 1), D(2020, 9, 30))
    uav = [Interval(D(2020, 6, 28), D(2020, 7, 30)), Interval(D(2020, 8, 3), D(2020, 9, 2)),
           Interval(D(2021, 7, 1), D(2021, 7, 20))]
    assert match_intervals(uav, months) == [2, 3, -1]  # July, August, nothing in 2021
    # a 10-day interval straddling two months: more days in June
    assert match_intervals([Interval(D(2020, 6, 24), D(2020, 7, 3))], months) == [1]
    assert match_intervals([Interval(D(2020, 6, 24), D(2020, 7, 3))], months, 0.8) == [-1]
