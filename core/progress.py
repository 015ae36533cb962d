"""Progress reporting and cancellation for long core computations.

Every long core function takes an optional ``progress`` argument (a :class:`Progress`). The
Processing layer wires it to ``QgsProcessingFeedback``; tests and scripts pass nothing.
"""

from .errors import Cancelled


class Progress:
    """Reports a fraction in [0, 1] and raises :class:`Cancelled` when asked to stop.

    ``callback(fraction)`` receives progress; ``is_cancelled()`` is polled by :meth:`check`
    and :meth:`update`. :meth:`sub` makes a child covering ``[start, end]`` of this range, so
    a step of a chain reports its own 0..1 without knowing about the chain.
    """

    def __init__(self, callback=None, is_cancelled=None, start=0.0, end=1.0):
        self._callback = callback
        self._is_cancelled = is_cancelled
        self._start = float(start)
        self._end = float(end)

    def check(self):
        """Raise :class:`Cancelled` if the user asked to stop."""
        if self._is_cancelled is not None and self._is_cancelled():
            raise Cancelled("cancelled by the user")

    def update(self, fraction):
        """Report ``fraction`` (0..1) of this range done, then check for cancellation."""
        if self._callback is not None:
            f = min(max(float(fraction), 0.0), 1.0)
            self._callback(self._start + f * (self._end - self._start))
        self.check()

    def sub(self, start, end):
        """A child progress mapping its 0..1 onto ``[start, end]`` of this one."""
        span = self._end - self._start
        return Progress(self._callback, self._is_cancelled,
                        self._start + start * span, self._start + end * span)


def ensure(progress):
    """``progress`` itself, or a silent :class:`Progress` when it is None."""
    return progress if progress is not None else Progress()
