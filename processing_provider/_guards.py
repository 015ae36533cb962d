"""What stands between bad input or a fault and the user (not an algorithm: skipped by discovery).

:class:`base.GlacierAlgorithm` calls these so that every algorithm behaves the same way:

- :func:`check_numbers` and :func:`check_destinations` run before any work: a number parameter that
  is not a finite number within its range (``ANGLE=nan``), or two outputs given the same file,
  fail at once with the parameter named and the range stated.
- :func:`check_raster_input` checks a raster input before it is used: readable, not truncated (its
  last block is read), with a CRS, overlapping the algorithm's first raster input; the message
  names the parameter and the user's file.
- :func:`error_message` is the one place that turns core, GDAL and operating-system errors into
  the text of a ``QgsProcessingException``: the file and the reason, no traceback, and QGIS's
  temporary copies of layers replaced by the user's own layer.
- :func:`write_rows` writes a table output atomically (a temporary file beside the destination,
  moved into place when every row is written) and checks every ``addFeature``.
"""

import math
import os

from qgis.core import (QgsFeature, QgsFeatureSink, QgsProcessingContext,
                       QgsProcessingOutputLayerDefinition, QgsProcessingParameterFolderDestination,
                       QgsProcessingParameterNumber)

from ..core.errors import InputError
from ..core.io.atomic import check_creatable, commit, discard, prepare_folder, temporary_path
from ..core.io.grid import Grid, require_overlap
from ..core.io.raster import check_readable

# Destination values that are not plain files (kept as QGIS writes them)
_NOT_FILES = ("TEMPORARY_OUTPUT", "memory:", "ogr:", "postgres:", "spatialite:", "mssql:",
              "oracle:", "hana:")


def _range_text(p):
    """The range of a number parameter in words, e.g. 'between 0 and 180'."""
    lo, hi = p.minimum(), p.maximum()
    lo_set, hi_set = lo > -1e300, hi < 1e300
    if lo_set and hi_set:
        return f"between {lo:g} and {hi:g}"
    if lo_set:
        return f"of at least {lo:g}"
    if hi_set:
        return f"of at most {hi:g}"
    return "that is a finite number"


def check_numbers(alg, parameters, context):
    """:class:`InputError` when a number parameter is not a finite number within its range."""
    for p in alg.parameterDefinitions():
        if not isinstance(p, QgsProcessingParameterNumber):
            continue
        raw = parameters.get(p.name())
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            continue
        value = alg.parameterAsDouble(parameters, p.name(), context)
        if not math.isfinite(value) or value < p.minimum() or value > p.maximum():
            raise InputError(f"{p.name()} ({p.description()}): {raw!s} is not valid; give a "
                             f"value {_range_text(p)}.")


def destination_file(parameters, name, context):
    """The file a destination parameter writes to, or '' when it is not a plain file (temporary
    layer, database, memory)."""
    value = parameters.get(name)
    if isinstance(value, QgsProcessingOutputLayerDefinition):
        text = value.sink.valueAsString(context.expressionContext(), "")
        value = text[0] if isinstance(text, tuple) else text
    value = str(value or "")
    if not value or value.startswith(_NOT_FILES) or "|" in value:
        return ""
    return value


def check_destinations(alg, parameters, context):
    """:class:`InputError` when an output cannot be created where it is asked for (a file stands
    where a folder is needed) or two output parameters are given the same file."""
    seen = {}
    for p in alg.destinationParameterDefinitions():
        path = destination_file(parameters, p.name(), context)
        if not path:
            continue
        # a Zarr cube is a folder given as a file destination (exportcube)
        is_folder = (isinstance(p, QgsProcessingParameterFolderDestination)
                     or path.rstrip("/").lower().endswith(".zarr"))
        check_creatable(path, f"output {p.name()}", folder=is_folder)
        key = os.path.realpath(path)
        if key in seen:
            raise InputError(f"{seen[key]} and {p.name()} are both '{path}': give each output "
                             "its own file.")
        seen[key] = p.name()


def check_raster_input(name, path, anchor=None):
    """:class:`InputError` naming parameter ``name`` and ``path`` when the raster cannot be read
    to its end, has no coordinate reference system, or does not overlap ``anchor`` (``(name,
    path, grid)`` of the algorithm's first raster input; any CRS). Returns ``(name, path, grid)``
    (grid None when the raster has none GDAL can give: the core names that problem)."""
    try:
        ds = check_readable(path, "raster")
    except InputError as exc:
        raise InputError(f"{name}: {exc}") from None
    if not ds.GetProjection():
        raise InputError(f"{name}: the raster '{path}' has no coordinate reference system: assign "
                         "one (Layer Properties > Source, or Raster > Projections > Assign "
                         "Projection) before using it.")
    try:
        grid = Grid.from_dataset(ds, path)
    except InputError:
        return name, path, None
    # geographic inputs (a stable mask in any CRS) are not compared: where metres are needed the
    # core says "not a projected CRS", the clearer message
    if (anchor is not None and anchor[2] is not None and grid.srs().IsProjected()
            and anchor[2].srs().IsProjected()):
        try:
            require_overlap(anchor[2], grid, anchor[1], path)
        except InputError as exc:
            raise InputError(f"{name} and {anchor[0]}: {exc}") from None
    return name, path, grid


def error_message(exc, user_names=None):
    """The message of a ``QgsProcessingException`` for ``exc``: what went wrong and with which
    file, in words. ``user_names`` maps QGIS's temporary copies of layers to the user's layers."""
    if isinstance(exc, MemoryError):
        text = f"Not enough memory: {exc}. Use smaller windows or a smaller search range."
    elif isinstance(exc, OSError):
        name = f" '{exc.filename}'" if getattr(exc, "filename", None) else ""
        text = f"A file{name} cannot be read or written: {exc.strerror or exc}."
    elif isinstance(exc, RuntimeError):  # GDAL's and netCDF4's exceptions name the file
        text = f"A file could not be read or written: {str(exc).strip()}"
    else:
        text = str(exc)
    for temp, user in (user_names or {}).items():
        text = text.replace(temp, user)
    return text


def _values(row, columns, kinds):
    values = []
    for col in columns:
        v = row.get(col)
        if v is None:
            values.append(None)
        elif kinds[col] == "int":
            values.append(int(v))
        elif kinds[col] == "double":
            v = float(v)
            values.append(None if v != v else v)  # NaN -> NULL
        else:
            values.append(str(v))
    return values


def _add_rows(sink, fields, rows, columns, kinds, where):
    """Add ``rows`` to ``sink``; a row that cannot be written is an :class:`InputError`."""
    for i, row in enumerate(rows):
        f = QgsFeature(fields)
        f.setAttributes(_values(row, columns, kinds))
        if not sink.addFeature(f, QgsFeatureSink.FastInsert):
            raise InputError(f"{where}: row {i + 1} cannot be written: "
                             f"{sink.lastError() or 'unknown error'}.")
    if hasattr(sink, "finalize"):  # QGIS >= 3.38: flushes and closes the writer
        sink.finalize()


def write_rows(alg, parameters, name, context, fields, geometry, crs, rows, columns, kinds):
    """Write ``rows`` (dicts) into the sink of parameter ``name``; return the output id.

    A file destination is written under a temporary name beside it and moved into place once
    every row is written, so a failure leaves no file (or the old one untouched). A row that
    cannot be written fails the run with the file and the row named.
    """
    final = destination_file(parameters, name, context)
    params = parameters
    temp = None
    if final:
        prepare_folder(final, f"table {name}")
        temp = temporary_path(final, hidden=False)  # QGIS names a GeoPackage table after it
        definition = QgsProcessingOutputLayerDefinition(temp)
        given = parameters.get(name)
        if isinstance(given, QgsProcessingOutputLayerDefinition):
            definition.createOptions = given.createOptions  # e.g. the file encoding
        params = dict(parameters, **{name: definition})
    sink, dest = alg.parameterAsSink(params, name, context, fields, geometry, crs)
    if sink is None:
        raise InputError(f"{name}: the table '{final or parameters.get(name)}' cannot be created.")
    complete = False
    try:
        _add_rows(sink, fields, rows, columns, kinds, f"{name}: '{final or dest}'")
        complete = True
    finally:
        del sink  # closes the file (QGIS < 3.38), before a failed one is removed
        if temp and not complete:
            discard(temp)
    if not final:
        return dest
    commit(temp, final)
    value = parameters.get(name)
    project = getattr(value, "destinationProject", None)
    if project is not None:  # the desktop loads the table from its final place
        details = QgsProcessingContext.LayerDetails(value.destinationName or name, project, name)
        context.addLayerToLoadOnCompletion(final, details)
    return final
