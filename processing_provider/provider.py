"""The Glacier Velocity Processing provider (id ``glaciervelocity``).

Algorithms are discovered: every module of this package (other than ``provider`` and ``base``)
is imported and each :class:`GlacierAlgorithm` subclass with an ``ALG_ID`` is registered. Adding
an algorithm is adding one file; nothing else needs editing.
"""

import importlib
import inspect
import os
import pkgutil

from qgis.core import QgsProcessingProvider

from .base import GlacierAlgorithm, icon

PROVIDER_ID = "glaciervelocity"
_SKIP = {"provider", "base"}


def algorithm_classes():
    """All algorithm classes of this package, sorted by id."""
    found = {}
    for info in pkgutil.iter_modules([os.path.dirname(__file__)]):
        if info.name in _SKIP or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__package__}.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, GlacierAlgorithm) and cls.ALG_ID and cls.__module__ == module.__name__:
                found[cls.ALG_ID] = cls
    return [found[k] for k in sorted(found)]


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
