"""Progress reporting and cancellation for long core computations.

Every long core function takes an optional ``progress`` argument (a :class:`Progress`). The
Processing layer wires it to ``QgsProcessingFeedback``; tests and scripts pass nothing. Stages of
long work (reading, pass k of n, writing) are named with :meth:`Progress.stage` or the ``stage`` of
:meth:`Progress.sub`: the Processing log shows them as lines.
"""

from .errors import Cancelled


class Progress:
    """Reports a fraction in [0, 1] and raises :class:`Cancelled` when asked to stop.

    ``callback(fraction)`` receives progress; ``is_cancelled()`` is polled by :meth:`check`
    and :meth:`update`; ``log(text)`` receives the names of stages. :meth:`sub` makes a child
    covering ``[start, end]`` of this range, so a step of a chain reports its own 0..1 without
    knowing about the chain.
    """

    def __init__(self, callback=None, is_cancelled=None, start=0.0, end=1.0, log=None):
        self._callback = callback
        self._is_cancelled = is_cancelled
        self._start = float(start)
        self._end = float(end)
        self._log = log

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

    def stage(self, text):
        """Name the stage starting now (a log line, e.g. 'Pass 2 of 3: …'), then check for
        cancellation."""
        if self._log is not None:
            self._log(text)
        self.check()

    def sub(self, start, end, stage=None):
        """A child progress mapping its 0..1 onto ``[start, end]`` of this one; ``stage`` names
        the part of the work it covers (see :meth:`stage`)."""
        span = self._end - self._start
        child = Progress(self._callback, self._is_cancelled,
                         self._start + start * span, self._start + end * span, self._log)
        if stage:
            child.stage(stage)
        return child


def ensure(progress):
    """``progress`` itself, or a silent :class:`Progress` when it is None."""
    return progress if progress is not None else Progress()
