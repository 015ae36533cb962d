"""What the dock reads from the QGIS project: velocity-stack layers, calibration tables, points
in each layer's CRS. The plot data themselves come from :mod:`..core.io.pixel_series`."""

import os

from qgis.core import (QgsCoordinateTransform, QgsCsException, QgsProject, QgsRasterLayer,
                       QgsVectorLayer)

from ..core.errors import InputError
from ..core.io.cubes import cube_source, source_file
from ..core.io.pixel_series import CALIBRATION_COLUMNS
from ..core.io.products import QUANTITIES, read_stack_info

_INFO_CACHE = {}  # (path, mtime, size) -> StackInfo or None


def layer_file(layer):
    """The file behind a GDAL raster layer, or None (web services, virtual layers...). A NetCDF
    cube's variable keeps its GDAL name (``NETCDF:"cube.nc":v``), which the stack readers take."""
    if not isinstance(layer, QgsRasterLayer) or layer.providerType() != "gdal":
        return None
    if cube_source(layer.source()):
        return layer.source() if os.path.exists(source_file(layer.source())) else None
    path = layer.source().split("|")[0]
    return path if os.path.isfile(path) else None


def is_error_stack(info):
    """Whether a stack holds the 1σ errors of another (SENSOR ``error`` or an ``ERROR_OF`` item,
    as the plugin writes them): it is drawn as its stack's error bars, not as a series."""
    return info.sensor == "error" or bool(info.metadata.get("ERROR_OF"))


def stack_info(path):
    """The :class:`StackInfo` of ``path`` when it is a velocity stack (every band described by a
    date interval START/END, QUANTITY v/vx/vy or none; not an error stack), else None. Cached
    per file version."""
    try:
        st = os.stat(source_file(path))
    except OSError:
        return None
    key = (path, st.st_mtime_ns, st.st_size)
    if key not in _INFO_CACHE:
        try:
            info = read_stack_info(path)
            _INFO_CACHE[key] = (info if info.quantity in QUANTITIES and not is_error_stack(info)
                                else None)
        except (InputError, RuntimeError):
            _INFO_CACHE[key] = None
    return _INFO_CACHE[key]


def stack_layers(project=None):
    """``[(layer, StackInfo)]`` of every velocity stack loaded in the project, in layer-tree order
    (layers outside the tree last)."""
    project = project or QgsProject.instance()
    order = [lyr.layerId() for lyr in project.layerTreeRoot().findLayers()]
    layers = list(project.mapLayers().values())
    layers.sort(key=lambda lyr: order.index(lyr.id()) if lyr.id() in order else len(order))
    out = []
    for layer in layers:
        path = layer_file(layer)
        info = stack_info(path) if path else None
        if info is not None:
            out.append((layer, info))
    return out


def to_layer_crs(point, source_crs, layer, project=None):
    """``point`` (a QgsPointXY in ``source_crs``) in the CRS of ``layer``; None when the
    transformation fails (a point outside the target CRS' domain)."""
    return to_crs(point, source_crs, layer.crs(), project)


def to_crs(point, source_crs, target_crs, project=None):
    """``point`` (in ``source_crs``) in ``target_crs`` (e.g. the canvas'); None when it cannot be
    transformed."""
    if not source_crs.isValid() or not target_crs.isValid() or source_crs == target_crs:
        return point
    transform = QgsCoordinateTransform(source_crs, target_crs, project or QgsProject.instance())
    try:
        return transform.transform(point)
    except QgsCsException:
        return None


def table_kind(layer):
    """'calibration', 'samples' or None for a vector layer, from its field names."""
    if not isinstance(layer, QgsVectorLayer):
        return None
    names = set(layer.fields().names())
    if {"source", "weight"} <= names and len(names & set(CALIBRATION_COLUMNS)) >= 4:
        return "calibration"
    if "uav" in names and any(n.startswith("v_") for n in names):
        return "samples"
    return None


def table_layers(kind, project=None):
    """Vector layers of the project that look like a calibration ``kind`` table."""
    project = project or QgsProject.instance()
    return [lyr for lyr in project.mapLayers().values() if table_kind(lyr) == kind]


def layer_rows(layer):
    """The attribute rows of a vector layer as dicts (NULL becomes None)."""
    names = layer.fields().names()
    rows = []
    for feat in layer.getFeatures():
        row = {}
        for name in names:
            value = feat[name]
            row[name] = None if value is None or _is_null(value) else value
        rows.append(row)
    return rows


def _is_null(value):
    is_null = getattr(value, "isNull", None)
    return bool(is_null()) if callable(is_null) else False
