"""The plugin object: registers the Processing provider, and in the GUI adds the dock and menus."""

import sys

from qgis.core import QgsApplication
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import QAction

from .processing_provider.base import icon
from .processing_provider.provider import GlacierVelocityProvider

MENU = "&Glacier Velocity"


class GlacierVelocityPlugin:
    """Created by :func:`classFactory`; ``iface`` is None when run by ``qgis_process``."""

    def __init__(self, iface):
        self.iface = iface
        self.provider = None  # keep a reference, or models lose the algorithms
        self.dock = None
        self.actions = []  # (action, in_menu): every action added, to remove in unload()
        self.edit_model = None  # the toolbox's "Edit a copy in the modeler" entry

    def initProcessing(self):  # noqa: N802 (QGIS's name)
        if self.provider is None:
            self.provider = GlacierVelocityProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802
        self.initProcessing()
        if self.iface is None:
            return
        from .ui.dock import GlacierVelocityDock
        from .ui.edit_model import EditShippedModelAction, register

        self.edit_model = EditShippedModelAction()
        register(self.edit_model)

        self.dock = GlacierVelocityDock(self.iface)
        self.iface.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        self.dock.hide()
        show = QAction(icon(), "Velocity time series and calibration…", self.iface.mainWindow())
        show.setCheckable(True)
        show.toggled.connect(self.dock.setVisible)
        self.dock.visibilityChanged.connect(show.setChecked)
        self.iface.addPluginToMenu(MENU, show)
        self.iface.addToolBarIcon(show)
        self.actions.append((show, True))
        for extra in self.dock.toolbar_actions():
            self.iface.addToolBarIcon(extra)
            self.actions.append((extra, False))

    def unload(self):
        for action, in_menu in self.actions:
            if in_menu:
                self.iface.removePluginMenu(MENU, action)
            self.iface.removeToolBarIcon(action)
        self.actions = []
        if self.edit_model is not None:
            from .ui.edit_model import deregister

            deregister(self.edit_model)
            self.edit_model = None
        if self.dock is not None:
            self.dock.close_tools()
            if self.iface is not None:
                self.iface.removeDockWidget(self.dock)
            self.dock.deleteLater()
            self.dock = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
        _hand_modules_to_unloader()


def _hand_modules_to_unloader():
    """Let QGIS's unloader remove every module of the plugin from ``sys.modules``.

    QGIS (Plugin Manager, ZIP upgrade, ``reloadPlugin``) deletes only the modules its import hook
    recorded in ``qgis.utils._plugin_modules``; parent packages imported on the way
    (``core.fusion`` for ``core.fusion.weighted``) are never recorded, and a stale one would serve
    old code after an upgrade. Outside a tracked session (qgis_process, tests) nothing changes;
    qgis.utils is not imported here (importing it installs QGIS's import hook as a side effect).
    """
    utils = sys.modules.get("qgis.utils")
    tracked = getattr(utils, "_plugin_modules", {}).get(__package__)
    if tracked is not None:
        tracked.update(m for m in sys.modules if m.split(".")[0] == __package__)
