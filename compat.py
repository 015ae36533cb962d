"""Everything that differs between QGIS 3.22 (Qt5) and newer QGIS (3.28-3.40, QGIS 4 / Qt6).

The rest of the plugin imports these names instead of touching versioned enums directly.
"""

from qgis.core import (Qgis, QgsColorRampShader, QgsField, QgsProcessing,
                       QgsProcessingParameterDefinition, QgsProcessingParameterFile,
                       QgsProcessingParameterNumber, QgsProcessingUtils, QgsRasterBandStats)
from qgis.PyQt.QtCore import QT_VERSION_STR

QT_MAJOR = int(QT_VERSION_STR.split(".")[0])
QGIS_VERSION_INT = Qgis.QGIS_VERSION_INT if hasattr(Qgis, "QGIS_VERSION_INT") else Qgis.versionInt()


def _enum(new_owner, new_name, old_owner, old_name):
    """The scoped enum value where it exists (newer QGIS), else the 3.22 one."""
    owner = getattr(new_owner, new_name.split(".")[0], None)
    if owner is not None:
        value = getattr(owner, new_name.split(".")[1], None)
        if value is not None:
            return value
    return getattr(old_owner, old_name)


# Processing source (vector) types
TYPE_VECTOR_POLYGON = _enum(Qgis, "ProcessingSourceType.VectorPolygon",
                            QgsProcessing, "TypeVectorPolygon")
TYPE_VECTOR_LINE = _enum(Qgis, "ProcessingSourceType.VectorLine", QgsProcessing, "TypeVectorLine")
TYPE_VECTOR_ANY = _enum(Qgis, "ProcessingSourceType.VectorAnyGeometry",
                        QgsProcessing, "TypeVectorAnyGeometry")
TYPE_RASTER = _enum(Qgis, "ProcessingSourceType.Raster", QgsProcessing, "TypeRaster")
TYPE_VECTOR_TABLE = _enum(Qgis, "ProcessingSourceType.Vector", QgsProcessing, "TypeVector")
TYPE_FILE = _enum(Qgis, "ProcessingSourceType.File", QgsProcessing, "TypeFile")  # any paths
FILE_BEHAVIOR_FILE = _enum(Qgis, "ProcessingFileParameterBehavior.File",
                           QgsProcessingParameterFile.Behavior, "File")
FILE_BEHAVIOR_FOLDER = _enum(Qgis, "ProcessingFileParameterBehavior.Folder",
                             QgsProcessingParameterFile.Behavior, "Folder")

# Number parameter types (scoped enums exist in 3.22 as QgsProcessingParameterNumber.Type)
NUMBER_INTEGER = _enum(Qgis, "ProcessingNumberParameterType.Integer",
                       QgsProcessingParameterNumber.Type, "Integer")
NUMBER_DOUBLE = _enum(Qgis, "ProcessingNumberParameterType.Double",
                      QgsProcessingParameterNumber.Type, "Double")

# Parameter flags (Qgis.ProcessingParameterFlag from 3.36; the class enum is gone in QGIS 4)
FLAG_ADVANCED = _enum(Qgis, "ProcessingParameterFlag.Advanced",
                      QgsProcessingParameterDefinition, "FlagAdvanced")
FLAG_OPTIONAL = _enum(Qgis, "ProcessingParameterFlag.Optional",
                      QgsProcessingParameterDefinition, "FlagOptional")

# Raster styling: Qgis.ShaderInterpolationMethod from 3.30, Qgis.RasterBandStatistic from 3.36
SHADER_LINEAR = _enum(Qgis, "ShaderInterpolationMethod.Linear", QgsColorRampShader.Type,
                      "Interpolated")
SHADER_DISCRETE = _enum(Qgis, "ShaderInterpolationMethod.Discrete", QgsColorRampShader.Type,
                        "Discrete")
STATS_MIN_MAX = (_enum(Qgis, "RasterBandStatistic.Min", QgsRasterBandStats, "Min")
                 | _enum(Qgis, "RasterBandStatistic.Max", QgsRasterBandStats, "Max"))
# The layer-type hint of outputs loaded on completion (None where QGIS has neither name: it then
# guesses the type from the path)
_HINTS = getattr(Qgis, "ProcessingLayerHint", None) or getattr(QgsProcessingUtils, "LayerHint", None)
LAYER_HINT_VECTOR = getattr(_HINTS, "Vector", None)
LAYER_HINT_RASTER = getattr(_HINTS, "Raster", None)


def no_geometry():
    """The WKB type of a table without geometry."""
    if hasattr(Qgis, "WkbType"):
        return Qgis.WkbType.NoGeometry
    from qgis.core import QgsWkbTypes
    return QgsWkbTypes.NoGeometry


def make_field(name, kind):
    """A ``QgsField`` of ``kind`` 'double', 'int' or 'str' (QMetaType on new QGIS, QVariant on 3.22)."""
    if QGIS_VERSION_INT >= 33800:
        from qgis.PyQt.QtCore import QMetaType
        types = {"double": QMetaType.Type.Double, "int": QMetaType.Type.Int,
                 "str": QMetaType.Type.QString}
    else:
        from qgis.PyQt.QtCore import QVariant
        types = {"double": QVariant.Double, "int": QVariant.Int, "str": QVariant.String}
    return QgsField(name, types[kind])


def pyqtgraph_env():
    """Tell pyqtgraph which Qt binding QGIS runs on (call before importing pyqtgraph)."""
    import os
    os.environ.setdefault("PYQTGRAPH_QT_LIB", "PyQt6" if QT_MAJOR >= 6 else "PyQt5")
