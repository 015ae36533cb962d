"""Glacier Velocity QGIS plugin.

QGIS calls :func:`classFactory` (with ``iface=None`` under ``qgis_process``). Nothing QGIS-specific is
imported at package level, so ``glacier_velocity.core`` stays importable without QGIS.
"""


def classFactory(iface):  # noqa: N802 (QGIS's name)
    from .plugin import GlacierVelocityPlugin

    return GlacierVelocityPlugin(iface)
