"""The one shape every Glacier Velocity algorithm has, and the I/O helpers they share.

A subclass sets ``ALG_ID``, ``DISPLAY_NAME``, ``GROUP`` (a key of :data:`GROUPS`), ``HELP`` and
``PARAM_HELP`` (one explanation per parameter name, appended to the help text so that
``qgis_process help`` and the toolbox explain every parameter) and ``OUTPUT_KINDS`` (the look of
a raster output when QGIS loads it: output name -> a kind of :mod:`.styles`; only outputs that
are not velocities need one, as undeclared ones go by name: ``…_ERROR`` errors, ``…_COUNT``
counts, others velocities). Help is plain text written as paragraphs: one line per paragraph
(blank line between), one line per list item (``- ``); the toolbox shows every line as a paragraph
and reads ``<word>`` as HTML, so :func:`rich_help` escapes it. A subclass defines
``initAlgorithm`` and ``process(parameters, context, feedback)`` (NOT ``run``:
``QgsProcessingAlgorithm.run`` is QGIS's own method and must not be overridden). The base class
checks number parameters and output paths before any work, turns core ``InputError``/
``ValueError``, GDAL and OS errors into ``QgsProcessingException`` naming the file and the reason
(see ``_guards``), wires core progress/cancel to the feedback object, and styles the outputs
QGIS loads (:mod:`.styles`).

``processAlgorithm`` runs in a worker thread: nothing here touches widgets or ``iface``.
"""

import html
import os

from qgis.core import (QgsCoordinateReferenceSystem, QgsFields, QgsProcessingAlgorithm,
                       QgsProcessingException, QgsProcessingParameterFeatureSink,
                       QgsProcessingParameterRasterDestination,
                       QgsProcessingParameterString)
from qgis.PyQt.QtGui import QIcon

from ..compat import FLAG_ADVANCED, TYPE_VECTOR_TABLE, make_field, no_geometry
from ..core.errors import Cancelled
from ..core.progress import Progress
from . import styles
from ._guards import (check_destinations, check_numbers, check_raster_input, error_message,
                      write_rows)

ICON_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "icons")

GROUPS = {
    "correlation": "Correlation",
    "filters": "Filters",
    "timeseries": "Time series",
    "fusion": "Fusion",
    "uncertainty": "Uncertainty",
    "trends": "Trends",
    "sampledata": "Sample data",
    "io": "Import and export",
}


def icon(name="glacier_velocity.svg"):
    """A plugin icon, loaded by file path (no compiled resources)."""
    return QIcon(os.path.join(ICON_DIR, name))


def rich_help(*texts):
    """Help texts as the toolbox shows them: one paragraph or list item per line, HTML-escaped."""
    lines = [line.strip() for text in texts for line in text.split("\n")]
    return "\n".join(html.escape(line, quote=False) for line in lines if line)


def advanced(param):
    """``param`` flagged as advanced (shown under "Advanced Parameters")."""
    param.setFlags(param.flags() | FLAG_ADVANCED)
    return param


class GlacierAlgorithm(QgsProcessingAlgorithm):
    """Base class: identity, help, error translation, progress/cancel and I/O helpers."""

    ALG_ID = ""
    DISPLAY_NAME = ""
    GROUP = ""
    HELP = ""
    PARAM_HELP = {}
    _user_names = None  # per run (processAlgorithm): QGIS's copies of layers -> the user's layers
    _first_raster = None  # per run: the first single raster input, which the others overlap
    OUTPUT_KINDS = {}  # output name -> styles kind (VELOCITY, TREND, PVALUE...)

    # ---------------------------------------------------------------- identity
    def name(self):
        return self.ALG_ID

    def displayName(self):
        return self.DISPLAY_NAME

    def group(self):
        return GROUPS[self.GROUP]

    def groupId(self):
        return self.GROUP

    def icon(self):
        return icon()

    def createInstance(self):
        return type(self)()

    def shortHelpString(self):
        lines = ["Parameters:"]
        for p in self.parameterDefinitions():
            lines.append(f"- {p.name()} ({p.description()}): {self.PARAM_HELP.get(p.name(), '')}")
        for o in self.outputDefinitions():
            if self.parameterDefinition(o.name()) is None:  # outputs that are not destinations
                lines.append(f"- {o.name()} (output: {o.description()}): "
                             f"{self.PARAM_HELP.get(o.name(), '')}")
        return rich_help(self.HELP, *lines)

    # ---------------------------------------------------------------- running
    def processAlgorithm(self, parameters, context, feedback):
        self._user_names, self._first_raster = {}, None  # a fresh run (see the class attributes)
        try:
            check_numbers(self, parameters, context)
            check_destinations(self, parameters, context)
            results = self.process(parameters, context, feedback)
            styles.attach_outputs(context, results, self.output_kinds())
            return results
        except Cancelled:
            message = "Cancelled by the user."
        except (ValueError, RuntimeError, OSError, MemoryError) as exc:
            # core InputError, GDAL and file-system errors: the file and the reason, no traceback
            message = error_message(exc, self._user_names)
        # raised outside the handlers, so that it keeps no reference to the failed work's frames
        # (their open GDAL datasets, outliving the application, crash QGIS at exit)
        raise QgsProcessingException(message)

    def output_kinds(self):
        """Output name -> styles kind of every raster output: ``OUTPUT_KINDS``, else by name
        (:func:`.styles.default_kind`)."""
        kinds = {d.name(): styles.default_kind(d.name())
                 for d in self.destinationParameterDefinitions()
                 if isinstance(d, QgsProcessingParameterRasterDestination)}
        kinds.update(self.OUTPUT_KINDS)
        return kinds

    def process(self, parameters, context, feedback):
        """The algorithm's work: read parameters, call the core, return the outputs dict."""
        raise NotImplementedError

    @staticmethod
    def progress(feedback):
        """A core :class:`Progress` that reports to ``feedback`` (fraction to the progress bar,
        stages of the work as log lines) and stops when it is cancelled."""
        if feedback is None:
            return Progress()
        return Progress(lambda f: feedback.setProgress(100.0 * f), feedback.isCanceled,
                        log=feedback.pushInfo)

    # ---------------------------------------------------------------- parameters
    def add_string(self, name, description):
        """An optional string parameter."""
        self.addParameter(QgsProcessingParameterString(name, description, optional=True))

    def add_table(self, name, description, optional=False):
        """A table output (feature sink without geometry); an optional one is off by default."""
        self.addParameter(QgsProcessingParameterFeatureSink(
            name, description, TYPE_VECTOR_TABLE, optional=optional, createByDefault=not optional))

    # ---------------------------------------------------------------- inputs
    def optional_number(self, parameters, name, context):
        """The value of an optional number parameter, or None when it is left empty."""
        value = parameters.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return self.parameterAsDouble(parameters, name, context)

    def positive_or_none(self, parameters, name, context):
        """A threshold parameter's value, or None when it is 0 (switched off)."""
        value = self.parameterAsDouble(parameters, name, context)
        return value if value > 0 else None

    def raster_path(self, parameters, name, context, required=True):
        """File path of a raster-layer parameter (None when optional and empty)."""
        layer = self.parameterAsRasterLayer(parameters, name, context)
        if layer is None:
            if required:
                raise QgsProcessingException(f"{name}: no raster layer given or it cannot be read.")
            return None
        checked = check_raster_input(name, layer.source(), self._first_raster)
        self._first_raster = self._first_raster or checked
        return layer.source()

    def raster_paths(self, parameters, name, context):
        """File paths of a multiple-layer parameter, in the order given."""
        layers = self.parameterAsLayerList(parameters, name, context)
        for k, lyr in enumerate(layers):
            check_raster_input(f"{name} (layer {k + 1})", lyr.source())
        return [lyr.source() for lyr in layers]

    def vector_path(self, parameters, name, context, feedback, required=True):
        """A GDAL-readable path ('file.gpkg|layername=x' or 'file.shp') of a vector parameter."""
        if not required and not parameters.get(name):
            return None
        path = self.parameterAsCompatibleSourceLayerPath(
            parameters, name, context, ["gpkg", "shp"], "gpkg", feedback)
        if not path:
            if required:
                raise QgsProcessingException(f"{name}: no vector layer given or it cannot be read.")
            return None
        self.remember_user_name(parameters, name, context, path)
        return path

    def remember_user_name(self, parameters, name, context, path):
        """Note the user's layer behind ``path`` when QGIS handed over a temporary copy of it, so
        that messages name the user's layer (see ``processAlgorithm``)."""
        layer = self.parameterAsVectorLayer(parameters, name, context)
        user = layer.source() if layer is not None else str(parameters.get(name) or "")
        copy = path.split("|")[0]
        if user and copy != user.split("|")[0]:
            self._user_names = dict(self._user_names or {}, **{copy: user})

    # ---------------------------------------------------------------- outputs
    def optional_output(self, parameters, name, context):
        """The path of an optional destination, or None when the user left it unset."""
        if not parameters.get(name):
            return None
        return self.parameterAsOutputLayer(parameters, name, context) or None

    def write_table(self, parameters, name, context, rows, columns=None):
        """Write a list of dict rows to a table (feature sink without geometry); return its id.

        Column types come from the first non-None value of each column: int, float or text.
        """
        columns = list(columns or (rows[0].keys() if rows else []))
        kinds = {}
        for col in columns:
            value = next((r.get(col) for r in rows if r.get(col) is not None), None)
            if isinstance(value, bool) or isinstance(value, int):
                kinds[col] = "int"
            elif isinstance(value, float):
                kinds[col] = "double"
            elif value is not None and hasattr(value, "dtype"):
                kinds[col] = "int" if value.dtype.kind in "iub" else "double"
            else:
                kinds[col] = "str" if value is not None else "double"
        fields = QgsFields()
        for col in columns:
            fields.append(make_field(col, kinds[col]))
        return write_rows(self, parameters, name, context, fields, no_geometry(),
                          QgsCoordinateReferenceSystem(), rows, columns, kinds)
