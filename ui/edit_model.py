"""'Edit a copy in the modeler…' in the Processing toolbox's context menu of the shipped models.

QGIS 3.22 offers "Edit Model…" only for the Models provider's own models, so the plugin adds its
own entry through the toolbox's provider context-menu list. The modeler gets a copy without a file
path: saving it asks where (the user's models folder, where it becomes the user's own model) and
never overwrites the shipped file, which a plugin upgrade would replace anyway.
"""

from qgis.core import QgsApplication, QgsProcessingModelAlgorithm

from ..processing_provider.provider import PROVIDER_ID


class EditShippedModelAction:
    """A toolbox context action: the attributes and methods the Processing toolbox calls on the
    entries of ``ProviderContextMenuActions.actions``."""

    name = "Edit a Copy in the Modeler…"
    is_separator = False

    def __init__(self):
        self.itemData = None  # noqa: N815 (the toolbox's name)
        self.dialog = None

    def setData(self, itemData, toolbox):  # noqa: N802, N803 (the toolbox's names)
        self.itemData = itemData

    def icon(self):
        return QgsApplication.getThemeIcon("/processingModel.svg")

    def isEnabled(self):  # noqa: N802
        alg = self.itemData
        return (isinstance(alg, QgsProcessingModelAlgorithm) and alg.provider() is not None
                and alg.provider().id() == PROVIDER_ID)

    def execute(self):
        """Open the modeler on a copy of the model (returns the dialog)."""
        from processing.modeler.ModelerDialog import ModelerDialog

        copy = QgsProcessingModelAlgorithm()
        copy.loadVariant(self.itemData.toVariant())
        copy.setSourceFilePath("")
        self.dialog = ModelerDialog.create(copy)
        self.dialog.show()
        self.dialog.activate()
        return self.dialog


def _toolbox_actions():
    """The toolbox's provider context-action registry, or None without the Processing plugin."""
    try:
        from processing.gui.ProviderActions import ProviderContextMenuActions
    except ImportError:
        return None
    return ProviderContextMenuActions


def register(action):
    """Add ``action`` to the toolbox's context menu (nothing without the Processing plugin)."""
    registry = _toolbox_actions()
    if registry is not None:
        registry.registerProviderContextMenuActions([action])


def deregister(action):
    registry = _toolbox_actions()
    if registry is not None and action in registry.actions:
        registry.deregisterProviderContextMenuActions([action])
