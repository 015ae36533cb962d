"""importitslive and exportcube through Processing; an exported NetCDF cube used as a stack by a
trend algorithm and plotted by the dock exactly like the GeoTIFF stack it came from."""

import datetime as dt
import os

import numpy as np
import pytest
from osgeo import osr
from qgis.core import QgsProcessingException, QgsRasterLayer

from glacier_velocity.core.io.cubes import subdataset_name
from glacier_velocity.core.io.products import read_pair_product, read_stack
from glacier_velocity.core.io.raster import read_band
from glacier_velocity.core.sampledata.itslive import write_cube

pytest.importorskip("netCDF4")
pytest.importorskip("xarray")

GT = (400000.0, 120.0, 0.0, 3300000.0, 0.0, -120.0)


def test_import_cube_with_extent_in_wgs84(run_alg, tmp_path):
    rng = np.random.default_rng(2)
    n = 12
    vx, vy = rng.normal(100, 30, (n, 30, 30)), rng.normal(0, 10, (n, 30, 30))
    starts = [dt.datetime(2020, 1, 1) + dt.timedelta(days=10 * i) for i in range(n)]
    ends = [s + dt.timedelta(days=16) for s in starts]
    cube = write_cube(str(tmp_path / "cube.nc"), vx, vy, starts, ends, ["2A", "1A"] * 6, GT)
    # rows 5-14, columns 8-19 of the cube, 30 m inside, as a lon/lat extent
    utm, wgs = osr.SpatialReference(), osr.SpatialReference()
    utm.ImportFromEPSG(32645)
    wgs.ImportFromEPSG(4326)
    for s in (utm, wgs):
        s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    ct = osr.CoordinateTransformation(utm, wgs)
    lon0, lat0, _ = ct.TransformPoint(GT[0] + 8 * 120 + 30, GT[3] - 15 * 120 + 30)
    lon1, lat1, _ = ct.TransformPoint(GT[0] + 20 * 120 - 30, GT[3] - 5 * 120 - 30)
    res = run_alg("importitslive", {
        "INPUT": cube, "EXTENT": f"{lon0},{lon1},{lat0},{lat1} [EPSG:4326]",
        "START_DATE": "2020-01-15", "SENSORS": [0, 2], "OUTPUT": str(tmp_path / "pairs")})
    names = sorted(os.path.basename(p) for p in res["OUTPUT_PAIRS"])
    expected = sorted(f"sentinel2_{starts[i]:%Y%m%d}_{ends[i]:%Y%m%d}.tif"
                      for i in range(0, n, 2) if starts[i] >= dt.datetime(2020, 1, 15))
    assert names == expected and len(names) == 5
    info, data = read_pair_product(os.path.join(res["OUTPUT"], names[0]))
    assert info.grid.shape == (10, 12) and info.grid.transform[0] == GT[0] + 8 * 120
    np.testing.assert_array_equal(data["vx"], np.round(vx[2, 5:15, 8:20]).astype(np.float32))


def test_import_errors_name_the_file(run_alg, tmp_path):
    bad = tmp_path / "notes.nc"
    bad.write_text("not a netcdf file")
    with pytest.raises(QgsProcessingException, match="notes.nc"):
        run_alg("importitslive", {"INPUT": str(bad), "OUTPUT": str(tmp_path / "o")})


def test_exported_cube_is_a_stack_for_trends(run_alg, scene_tiny, tmp_path):
    _, manifest, _ = scene_tiny
    stack = manifest["paths"]["sentinel2_v"]
    cube = run_alg("exportcube", {"INPUT": stack, "OUTPUT": str(tmp_path / "s2.nc")})["OUTPUT"]
    assert cube == str(tmp_path / "s2.nc")
    np.testing.assert_array_equal(read_stack(subdataset_name(cube, "v"))[1], read_stack(stack)[1])
    # a project layer, as in the desktop (Add Raster Layer picks the variable v): QGIS 3.22 does
    # not resolve a NETCDF:"...":v string given as a parameter value by itself
    layer = QgsRasterLayer(subdataset_name(cube, "v"), "s2 cube")
    assert layer.isValid() and layer.bandCount() == 120
    out = {}
    for name, source in (("tif", stack), ("nc", layer)):
        out[name] = str(tmp_path / f"trend_{name}.tif")
        run_alg("pixeltrend", {"INPUT": source, "METHOD": 0, "ALPHA": 0.05, "MIN_YEARS": 5,
                               "OUTPUT_TREND": out[name],
                               "OUTPUT_P": str(tmp_path / f"p_{name}.tif"),
                               "OUTPUT_SIGNIFICANT": str(tmp_path / f"sig_{name}.tif")})
    np.testing.assert_array_equal(read_band(out["nc"]), read_band(out["tif"]))


def test_dock_plots_a_cube_layer_like_its_stack(qgis_iface, qgis_new_project, scene_tiny,
                                                tmp_path):
    from qgis.core import QgsProject

    from glacier_velocity.core.io.itslive import export_stacks
    from glacier_velocity.ui.dock import GlacierVelocityDock

    _, manifest, _ = scene_tiny
    stack = manifest["paths"]["landsat_v"]
    cube = export_stacks(str(tmp_path / "landsat.nc"), {"v": stack})
    for source, name in ((stack, "tif"), (subdataset_name(cube, "v"), "cube")):
        layer = QgsRasterLayer(source, name)
        assert layer.isValid(), source
        QgsProject.instance().addMapLayer(layer)
    dock = GlacierVelocityDock(qgis_iface)
    try:
        ts = dock.timeseries
        ts.refresh_stacks()
        assert ts.stack_list.count() == 2
        info, arr = read_stack(stack)
        row, col = 40, 55
        x0, dx, _, y0, _, dy = info.grid.transform
        from qgis.core import QgsCoordinateReferenceSystem, QgsPointXY

        ts.show_point(QgsPointXY(x0 + (col + 0.5) * dx, y0 + (row + 0.5) * dy),
                      QgsCoordinateReferenceSystem("EPSG:32645"))
        assert ts.wait_idle()
        xs, ys = {}, {}
        for name in ("tif", "cube"):
            x, y = ts.plot.items[name].getData()
            xs[name], ys[name] = np.asarray(x, float), np.asarray(y, float)
        np.testing.assert_array_equal(ys["cube"], arr[:, row, col].astype(float))
        np.testing.assert_array_equal(ys["cube"], ys["tif"])
        np.testing.assert_array_equal(xs["cube"], xs["tif"])
    finally:
        dock.close_tools()
        dock.deleteLater()
