"""Atomic outputs, the last-block check, unit and band-order checks, and the memory guard."""

import os
import subprocess
import sys

import numpy as np
import pytest
from osgeo import gdal

from glacier_velocity.core.arrays.memory import human_bytes, require_memory
from glacier_velocity.core.correlation.engine import (CorrelatorOptions, windows_per_batch,
                                                      working_memory)
from glacier_velocity.core.errors import Cancelled, InputError
from glacier_velocity.core.io.atomic import (HOST, atomic_file, check_creatable, remove_leftovers,
                                             temporary_path)
from glacier_velocity.core.io.dates import Interval
from glacier_velocity.core.io.grid import Grid, require_overlap
from glacier_velocity.core.io.products import (StackWriter, read_stack_info, write_stack)
from glacier_velocity.core.io.raster import RasterWriter, all_or_none, check_readable, write_raster

GRID = Grid.from_bounds(500000, 4000000, 30, 20, 30, 32645)
MONTHS = [Interval.month(2020, m) for m in (1, 2, 3)]


def _dead_pid():
    """The id of a process that has ended."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.tif"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"):
        with RasterWriter(str(path), GRID, 1) as w:
            w.write(1, np.ones(GRID.shape))
            assert os.path.exists(w.temp) and os.path.basename(w.temp).startswith(".out.gvpart-")
            raise RuntimeError("boom")
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["out.tif"]
    # a complete write replaces it, and the old file's overviews and statistics go
    (tmp_path / "out.tif.ovr").write_bytes(b"old pyramids")
    (tmp_path / "out.tif.aux.xml").write_bytes(b"old statistics")
    write_raster(str(path), GRID, np.full(GRID.shape, 2.0))
    assert gdal.Open(str(path)).ReadAsArray()[0, 0] == 2.0 and os.listdir(tmp_path) == ["out.tif"]


def test_all_or_none_keeps_no_output_of_a_cancelled_run(tmp_path):
    a, b = str(tmp_path / "a.tif"), str(tmp_path / "b.tif")
    writers = [StackWriter(a, GRID, MONTHS), RasterWriter(b, GRID, 1)]
    with pytest.raises(Cancelled):
        with all_or_none(writers):
            writers[0].write(0, np.ones(GRID.shape))
            raise Cancelled("cancelled by the user")
    assert os.listdir(tmp_path) == []
    writers = [StackWriter(a, GRID, MONTHS), RasterWriter(b, GRID, 1)]
    with all_or_none(writers):
        writers[1].write(1, np.ones(GRID.shape))
    assert sorted(os.listdir(tmp_path)) == ["a.tif", "b.tif"]


def test_leftovers_of_dead_runs_are_removed_live_ones_kept(tmp_path):
    dead = tmp_path / f".out.gvpart-{_dead_pid()}.tif"
    dead.write_bytes(b"x")
    (tmp_path / f".out.gvpart-{_dead_pid()}.tif.aux.xml").write_bytes(b"x")
    mine = tmp_path / os.path.basename(temporary_path(tmp_path / "other.tif"))
    mine.write_bytes(b"x")
    keep = tmp_path / "out.tif"
    keep.write_bytes(b"x")
    assert len(remove_leftovers(str(tmp_path))) == 2
    assert sorted(os.listdir(tmp_path)) == sorted([mine.name, "out.tif"])
    # any writer into the folder does it
    dead.write_bytes(b"x")
    write_raster(str(tmp_path / "new.tif"), GRID, np.zeros(GRID.shape))
    assert not dead.exists()
    # a killed run's temporary folder (a Zarr cube, an import's staging folder) goes too
    staging = tmp_path / f".import.gvpart-{_dead_pid()}"
    (staging / "sub").mkdir(parents=True)
    (staging / "sub" / "pair.tif").write_bytes(b"x")
    assert remove_leftovers(str(tmp_path)) == [staging.name] and not staging.exists()
    # a cluster worker's file on another computer: its process id means nothing here
    remote = tmp_path / f".out.gvpart-{_dead_pid()}-anotherhost.tif"
    remote.write_bytes(b"x")
    dead_here = tmp_path / f".out.gvpart-{_dead_pid()}-{HOST}.tif"
    dead_here.write_bytes(b"x")
    assert remove_leftovers(str(tmp_path)) == [dead_here.name] and remote.exists()
    assert temporary_path(tmp_path / "a.tif").endswith(f".a.gvpart-{os.getpid()}-{HOST}.tif")


def test_atomic_file_and_creatable_checks(tmp_path):
    target = tmp_path / "sub" / "x.json"
    with pytest.raises(ValueError):
        with atomic_file(str(target)) as tmp:
            open(tmp, "w").close()
            raise ValueError("half-way")
    assert os.listdir(tmp_path / "sub") == []
    with atomic_file(str(target)) as tmp, open(tmp, "w") as f:
        f.write("{}")
    assert target.read_text() == "{}"
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(InputError, match="is a file, not a folder"):
        check_creatable(str(a_file / "deeper" / "out.tif"))
    with pytest.raises(InputError, match="is a file, not a folder"):
        check_creatable(str(a_file), folder=True)
    with pytest.raises(InputError, match="is a folder"):
        check_creatable(str(tmp_path))
    with pytest.raises(InputError, match="is a file"):
        RasterWriter(str(a_file / "out.tif"), GRID, 1)


def test_truncated_raster_is_named_as_such(tmp_path):
    path = str(tmp_path / "full.tif")
    rng = np.random.default_rng(0)
    write_raster(path, Grid.from_bounds(500000, 4000000, 30, 600, 600, 32645),
                 rng.random((2, 600, 600)))
    check_readable(path)
    data = open(path, "rb").read()
    cut = str(tmp_path / "cut.tif")
    with open(cut, "wb") as f:
        f.write(data[:len(data) * 2 // 3])
    with pytest.raises(InputError, match="damaged or truncated"):
        check_readable(cut)


def test_unknown_units_and_band_order_are_refused(tmp_path):
    arr = np.ones((3,) + GRID.shape, np.float32)
    path = write_stack(str(tmp_path / "s.tif"), GRID, arr, MONTHS)
    assert read_stack_info(path).units == "m/yr"
    ds = gdal.Open(path, gdal.GA_Update)
    ds.SetMetadataItem("UNITS", "furlongs/fortnight")
    ds = None
    with pytest.raises(InputError, match="unknown units 'furlongs/fortnight'"):
        read_stack_info(path)
    for descs, match in (([MONTHS[0], MONTHS[0], MONTHS[2]], "same date interval"),
                         ([MONTHS[1], MONTHS[0], MONTHS[2]], "chronological order")):
        p = write_stack(str(tmp_path / f"{match[:4]}.tif"), GRID, arr, MONTHS)
        ds = gdal.Open(p, gdal.GA_Update)
        for i, iv in enumerate(descs):
            ds.GetRasterBand(i + 1).SetDescription(str(iv))
        ds = None
        with pytest.raises(InputError, match=match):
            read_stack_info(p)


def test_overlap_is_checked_across_crs():
    utm46 = Grid(GRID.transform, GRID.shape, Grid.from_bounds(0, 0, 1, 1, 1, 32646).crs_wkt)
    with pytest.raises(InputError, match="do not overlap"):
        require_overlap(GRID, utm46, "a", "b")  # same numbers, 6 degrees further east
    # the same place in UTM 46N: overlaps
    from osgeo import osr
    src, dst = osr.SpatialReference(), osr.SpatialReference()
    src.ImportFromEPSG(32645)
    dst.ImportFromEPSG(32646)
    for s in (src, dst):
        s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    x, y, _ = osr.CoordinateTransformation(src, dst).TransformPoint(500300.0, 3999700.0)
    there = Grid.from_bounds(x - 300, y + 300, 30, 20, 20, 32646)
    assert require_overlap(GRID, there, "a", "b")


def test_memory_guard_gives_the_figure():
    huge = CorrelatorOptions(window=(32, 32), search=100000)
    assert working_memory(huge) > 1e12  # one coarse window of 400 000 px
    with pytest.raises(InputError, match=r"SEARCH would need about [\d.]+ TiB"):
        require_memory(working_memory(huge), "SEARCH")
    assert working_memory(CorrelatorOptions(window=(32, 32))) < 2 ** 30
    # large windows go in small batches: memory per batch stays bounded; 32 x 32 windows go in
    # cache-sized batches of 256
    assert windows_per_batch((1024, 1024)) == 1 and windows_per_batch((32, 32)) == 256
    assert windows_per_batch((32, 32), channels=2) == 128
    assert human_bytes(596 * 2 ** 30) == "596 GiB"
