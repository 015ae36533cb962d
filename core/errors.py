"""Exceptions raised by the core.

``InputError`` is a ``ValueError`` so callers that only know Python's built-ins still catch it;
the Processing layer turns it into a ``QgsProcessingException`` with the same message.
"""


class InputError(ValueError):
    """Bad user input: the message names the file or parameter and the problem."""


class Cancelled(Exception):
    """The user cancelled a long computation (raised by :class:`core.progress.Progress`)."""
