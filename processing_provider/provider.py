"""The Glacier Velocity Processing provider (id ``glaciervelocity``).

Algorithms are discovered: every module of this package (other than ``provider`` and ``base``)
is imported and each :class:`GlacierAlgorithm` subclass with an ``ALG_ID`` is registered. Adding
an algorithm is adding one file; nothing else needs editing. The graphical models shipped in
``models/*.model3`` (built by ``scripts/build_models.py``) are registered too, under their names.
"""

import glob
import inspect
import os
import pkgutil

from qgis.core import QgsMessageLog, QgsProcessingModelAlgorithm, QgsProcessingProvider

from .base import GlacierAlgorithm, icon

PROVIDER_ID = "glaciervelocity"
_SKIP = {"provider", "base"}
MODELS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models")


def algorithm_classes():
    """All algorithm classes of this package, sorted by id."""
    found = {}
    for info in pkgutil.iter_modules([os.path.dirname(__file__)]):
        if info.name in _SKIP or info.name.startswith("_"):
            continue
        # through builtins.__import__, i.e. QGIS's import hook: only modules it sees are removed from
        # sys.modules when the plugin is unloaded (importlib.import_module bypasses the hook, and a
        # reload would then find the old modules, whose classes derive from the old base class)
        module = __import__(f"{__package__}.{info.name}", fromlist=["__name__"])
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, GlacierAlgorithm) and cls.ALG_ID and cls.__module__ == module.__name__:
                found[cls.ALG_ID] = cls
    return [found[k] for k in sorted(found)]


class ShippedModel(QgsProcessingModelAlgorithm):
    """A shipped model: its name (``model_name`` in the file) is its id, e.g.
    ``glaciervelocity:imagepairstotrends``, and the toolbox shows the title kept in its help
    (key ``TITLE``); QGIS's own models show their name for both."""

    def displayName(self):  # noqa: N802 (QGIS's name)
        return self.helpContent().get("TITLE") or self.name()

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        # qgis_process and processing.run pass only the inputs given, and QGIS's model then hands
        # each child nothing for the others, so the child took its own default: Sentinel-1 was
        # correlated with 32 px windows instead of the model's 64. The model's defaults fill them.
        filled = dict(parameters)
        for d in self.parameterDefinitions():
            if filled.get(d.name()) is None and not d.isDestination() and d.defaultValue() is not None:
                filled[d.name()] = d.defaultValue()
        return super().processAlgorithm(filled, context, feedback)

    def createInstance(self):  # noqa: N802 (run() works on a copy made here, so it keeps the fill)
        model = ShippedModel()
        model.loadVariant(self.toVariant())
        model.setSourceFilePath(self.sourceFilePath())
        return model


def shipped_models():
    """The models of ``models/*.model3``, loaded (a file that cannot be read is logged)."""
    models = []
    for path in sorted(glob.glob(os.path.join(MODELS_DIR, "*.model3"))):
        model = ShippedModel()
        if model.fromFile(path):
            model.setSourceFilePath(path)
            models.append(model)
        else:
            # the default level is a warning
            QgsMessageLog.logMessage(f"Could not read the model {path}", "Glacier Velocity")
    return models


class GlacierVelocityProvider(QgsProcessingProvider):
    """Registers every Glacier Velocity algorithm."""

    def id(self):
        return PROVIDER_ID

    def name(self):
        return "Glacier Velocity"

    def longName(self):
        return "Glacier Velocity: calibrated, gap-free glacier surface velocities"

    def icon(self):
        return icon()

    def loadAlgorithms(self):
        for cls in algorithm_classes():
            self.addAlgorithm(cls())
        for model in shipped_models():
            self.addAlgorithm(model)
