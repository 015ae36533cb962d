"""Polygons (stable ground, glacier outlines) with OGR: rasterise onto grids, read, write.

Polygons in another CRS than the grid are reprojected on the fly by GDAL's rasteriser.
"""

import os

import numpy as np
from osgeo import gdal, ogr, osr

from ..errors import InputError

ogr.UseExceptions()


def open_vector(path, what="polygon layer"):
    """Open a vector file read-only; :class:`InputError` naming it when missing or unreadable."""
    path = str(path)
    layer_name = None
    if "|layername=" in path:  # QGIS-style 'file.gpkg|layername=x'
        path, layer_name = path.split("|layername=", 1)
        layer_name = layer_name.split("|")[0]
    if not os.path.exists(path):
        raise InputError(f"The {what} '{path}' does not exist.")
    try:
        ds = ogr.Open(path, 0)
    except RuntimeError as exc:
        raise InputError(f"The {what} '{path}' cannot be read: {exc}") from None
    if ds is None or ds.GetLayerCount() == 0:
        raise InputError(f"The {what} '{path}' holds no vector layer.")
    layer = ds.GetLayerByName(layer_name) if layer_name else ds.GetLayer(0)
    if layer is None:
        raise InputError(f"The {what} '{path}' has no layer '{layer_name}'.")
    return ds, layer


def _mem_raster(grid, dtype=gdal.GDT_Int32, init=0):
    ds = gdal.GetDriverByName("MEM").Create("", grid.cols, grid.rows, 1, dtype)
    ds.SetGeoTransform(grid.transform)
    if grid.crs_wkt:
        ds.SetProjection(grid.crs_wkt)
    ds.GetRasterBand(1).Fill(init)
    return ds


def rasterize_mask(path, grid, all_touched=False, what="polygon layer"):
    """Boolean mask of ``grid`` pixels whose centre lies inside any polygon of ``path``."""
    ds, layer = open_vector(path, what)
    mem = _mem_raster(grid, gdal.GDT_Byte)
    opts = ["ALL_TOUCHED=TRUE"] if all_touched else []
    gdal.RasterizeLayer(mem, [1], layer, burn_values=[1], options=opts)
    return mem.GetRasterBand(1).ReadAsArray().astype(bool)


def features_in_grid_crs(path, grid, what="polygon layer"):
    """Yield ``(attributes, geometry)`` of every feature of ``path``, reprojected to ``grid``'s CRS.

    Attributes are a dict of the layer's fields plus '_fid'; features without geometry are
    skipped. The geometry is a clone, free to modify.
    """
    ds, layer = open_vector(path, what)
    srs = layer.GetSpatialRef()
    transform = None
    if srs is not None and grid.crs_wkt:
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        target = grid.srs()
        if not srs.IsSame(target):
            transform = osr.CoordinateTransformation(srs, target)
    defn = layer.GetLayerDefn()
    names = [defn.GetFieldDefn(i).GetName() for i in range(defn.GetFieldCount())]
    layer.ResetReading()
    for feat in layer:
        geom = feat.GetGeometryRef()
        if geom is None:
            continue
        geom = geom.Clone()
        if transform is not None:
            geom.Transform(transform)
        attrs = {n: feat.GetField(n) for n in names}
        attrs["_fid"] = feat.GetFID()
        yield attrs, geom


def rasterize_ids(path, grid, what="glacier polygons"):
    """Label raster (int32): 1-based feature order for each polygon, 0 outside all polygons.

    Returns ``(labels, features)`` where ``features[k-1]`` is the attribute dict of label ``k``
    (with '_fid' and 'area_km2', the polygon's area in the grid's CRS units, km² for metres).
    """
    tmp = ogr.GetDriverByName("Memory").CreateDataSource("labels")
    out = tmp.CreateLayer("labels", grid.srs() if grid.crs_wkt else None, ogr.wkbMultiPolygon)
    out.CreateField(ogr.FieldDefn("label", ogr.OFTInteger))
    features = []
    for attrs, geom in features_in_grid_crs(path, grid, what):
        attrs["area_km2"] = geom.GetArea() / 1e6
        features.append(attrs)
        f = ogr.Feature(out.GetLayerDefn())
        f.SetGeometry(geom)
        f.SetField("label", len(features))
        out.CreateFeature(f)
    if not features:
        raise InputError(f"The {what} '{path}' holds no polygons.")
    mem = _mem_raster(grid, gdal.GDT_Int32)
    gdal.RasterizeLayer(mem, [1], out, options=["ATTRIBUTE=label"])
    return mem.GetRasterBand(1).ReadAsArray().astype(np.int32), features


def write_polygons(path, layer_name, crs_wkt, polygons, fields, overwrite_file=False):
    """Write polygons to a GeoPackage layer.

    ``polygons`` is a list of ``(rings, attributes)``: ``rings`` an ``(n, 2)`` array of x, y in
    ``crs_wkt`` (the exterior) or a list of them (exterior first, then holes); ``fields`` maps
    field name -> 'int', 'float' or 'str'.
    """
    drv = ogr.GetDriverByName("GPKG")
    if overwrite_file and os.path.exists(path):
        drv.DeleteDataSource(path)
    ds = ogr.Open(path, 1) if os.path.exists(path) else drv.CreateDataSource(path)
    srs = osr.SpatialReference()
    srs.ImportFromWkt(crs_wkt)
    if ds.GetLayerByName(layer_name) is not None:
        ds.DeleteLayer(layer_name)
    layer = ds.CreateLayer(layer_name, srs, ogr.wkbPolygon)
    kinds = {"int": ogr.OFTInteger, "float": ogr.OFTReal, "str": ogr.OFTString}
    for name, kind in fields.items():
        layer.CreateField(ogr.FieldDefn(name, kinds[kind]))
    for rings, attrs in polygons:
        poly = ogr.Geometry(ogr.wkbPolygon)
        for ring_xy in (rings if isinstance(rings, (list, tuple)) else [rings]):
            ring = ogr.Geometry(ogr.wkbLinearRing)
            for x, y in np.asarray(ring_xy, dtype=float):
                ring.AddPoint_2D(float(x), float(y))
            ring.CloseRings()
            poly.AddGeometry(ring)
        f = ogr.Feature(layer.GetLayerDefn())
        f.SetGeometry(poly)
        for name, value in attrs.items():
            f.SetField(name, value)
        layer.CreateFeature(f)
    ds = None
    return f"{path}|layername={layer_name}"


def mask_polygons(mask, grid, simplify=0.0):
    """The polygons of a boolean raster ``mask`` on ``grid``, largest first: each a list of rings
    ((n, 2) arrays of map x, y; exterior first, then holes), traced along pixel edges and
    simplified within ``simplify`` map units (0 = none)."""
    mem = _mem_raster(grid, gdal.GDT_Byte)
    mem.GetRasterBand(1).WriteArray(np.asarray(mask, np.uint8))
    srs = grid.srs() if grid.crs_wkt else None
    vds = ogr.GetDriverByName("Memory").CreateDataSource("")
    layer = vds.CreateLayer("mask", srs, ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("value", ogr.OFTInteger))
    gdal.Polygonize(mem.GetRasterBand(1), mem.GetRasterBand(1), layer, 0)
    polys = []
    for feature in layer:
        geom = feature.GetGeometryRef()
        if simplify > 0:
            geom = geom.SimplifyPreserveTopology(simplify)
        rings = [np.array(geom.GetGeometryRef(k).GetPoints())[:, :2]
                 for k in range(geom.GetGeometryCount())]
        polys.append((geom.GetArea(), rings))
    return [rings for _, rings in sorted(polys, key=lambda p: -p[0])]
