"""Temporal robust filter of a velocity stack: per pixel and calendar year, values far from the
year's α-trimmed mean become NaN.

The reference of a pixel in a year is the α-trimmed mean of that year's values: sorted, the
⌊α·n⌋ lowest and ⌊α·n⌋ highest of the n valid values are dropped and the rest averaged
(α = 0 is the mean, α → 0.5 the median; α = 0.33 keeps the middle third). A value above
``upper`` × reference or below ``lower`` × reference is removed. The year of a band is the
year of its interval's middle. Meant for speed stacks (positive); the same removals can be
applied to the matching vx and vy stacks. ``min_reference`` (m/yr) leaves pixel-years whose
reference is slower untested: on stable ground the speed is noise, and ratios of noise are
meaningless (default 0: test everything).

Per-pixel errors: the input's error stack (named by its ``ERROR_STACK`` metadata or
``<stem>_error.tif`` beside it, :func:`core.io.pixel_series.error_stack_path`) is carried into the
output's own (``<output stem>_error.tif`` by default, linked the same way): a kept value keeps its
1 σ, a removed one becomes NaN (the filter removes, it never changes a value).
"""

from contextlib import ExitStack

import numpy as np

from ..errors import InputError
from ..io.pixel_series import default_error_path, error_links, error_stack_path
from ..io.products import StackFile, StackWriter
from ..progress import ensure
from ..io.raster import iter_tiles

DEFAULT_ALPHA = 0.33
DEFAULT_LOWER = 0.5
DEFAULT_UPPER = 1.5


def alpha_trimmed_mean(values, alpha=DEFAULT_ALPHA):
    """NaN-aware α-trimmed mean along axis 0 (NaN where no value)."""
    if not 0 <= alpha < 0.5:
        raise InputError(f"alpha must be in [0, 0.5); {alpha} given.")
    s = np.sort(values, axis=0)  # NaN last
    n = np.count_nonzero(np.isfinite(s), axis=0)
    k = np.floor(alpha * n).astype(np.int64)
    rank = np.arange(s.shape[0]).reshape((-1,) + (1,) * (s.ndim - 1))
    keep = (rank >= k) & (rank < n - k)
    count = keep.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(keep, s, 0.0).sum(axis=0) / count
    return np.where(count > 0, out, np.nan).astype(np.float32)


def temporal_filter(stack, years, alpha=DEFAULT_ALPHA, lower=DEFAULT_LOWER, upper=DEFAULT_UPPER,
                    min_reference=0.0):
    """Filter a ``(time, rows, cols)`` stack; ``years`` gives each band's calendar year.

    Returns ``(filtered, removed)``, ``removed`` the boolean mask of values set to NaN.
    """
    if not 0 < lower < 1 < upper:
        raise InputError(f"The bounds must satisfy 0 < lower < 1 < upper; {lower} and {upper} "
                         "given.")
    years = np.asarray(years)
    if years.shape != (stack.shape[0],):
        raise InputError(f"{years.size} band years given for a stack of {stack.shape[0]} bands.")
    removed = np.zeros(stack.shape, bool)
    for y in np.unique(years):
        sel = years == y
        part = stack[sel]
        ref = alpha_trimmed_mean(part, alpha)
        with np.errstate(invalid="ignore"):
            tested = np.isfinite(ref) & (ref > max(min_reference, 0.0))
            bad = tested[None] & ((part > upper * ref[None]) | (part < lower * ref[None]))
        removed[sel] = bad
    out = stack.copy()
    out[removed] = np.nan
    return out, removed


def temporal_filter_file(path, output, alpha=DEFAULT_ALPHA, lower=DEFAULT_LOWER,
                         upper=DEFAULT_UPPER, min_reference=0.0, companions=(), tile=256,
                         progress=None, error_output=None):
    """Filter the stack ``path`` into ``output``; ``companions`` are ``(input, output)`` stacks
    on the same grid and dates (vx, vy) that get the same removals. When ``path`` has an error
    stack, it is carried into ``error_output`` (default ``<output stem>_error.tif``; module doc).
    Returns ``(removed, valid)``: counts of values removed and of values valid before."""
    progress = ensure(progress)
    with ExitStack() as opened:  # closes the files opened so far when one of them fails
        stack = opened.enter_context(StackFile(path))
        info = stack.info
        if info.quantity != "v":
            raise InputError(f"'{path}' is a {info.quantity} stack: the ratio test needs speeds "
                             "(v); filter the v stack and give vx and vy as companions.")
        error = error_stack_path(path, info)
        if error:  # a companion like vx and vy, checked with them
            error_output = error_output or default_error_path(output)
            companions = list(companions) + [(error, error_output)]
        comp_stacks = [opened.enter_context(StackFile(cin)) for cin, _ in companions]
        for (cin, _), c in zip(companions, comp_stacks):
            if not c.info.grid.same_as(info.grid) or c.info.intervals != info.intervals:
                raise InputError(f"'{cin}' does not have the grid and band dates of '{path}'.")
        years = [iv.mid.year for iv in info.intervals]
        meta = {"TEMPORAL_FILTER": f"alpha={alpha:g} lower={lower:g} upper={upper:g} "
                                   f"min_reference={min_reference:g}"}
        inputs = [path] + [c for c, _ in companions]
        removed = valid = 0
        to_error, to_stack = error_links(output, error_output) if error else ({}, {})
        writers = [opened.enter_context(StackWriter(output, info.grid, info.intervals, info.sensor,
                                                    "v", dict(meta, **to_error), inputs=inputs))]
        writers += [opened.enter_context(StackWriter(
            cout, c.info.grid, c.info.intervals, c.info.sensor, c.info.quantity,
            dict(meta, **to_stack) if cin == error else meta, inputs=inputs))
            for (cin, cout), c in zip(companions, comp_stacks)]
        tiles = list(iter_tiles(info.grid.shape, tile))
        for t, (window, _, _) in enumerate(tiles):  # all bands of a tile: 120 x 256² ~ 31 MB
            arr = stack.read(window)
            filtered, bad = temporal_filter(arr, years, alpha, lower, upper, min_reference)
            removed += int(bad.sum())
            valid += int(np.isfinite(arr).sum())
            outs = [filtered]
            for comp in comp_stacks:
                c = comp.read(window)
                c[bad] = np.nan
                outs.append(c)
            for w, a in zip(writers, outs):
                for b in range(a.shape[0]):
                    w.write(b, a[b], window[0], window[1])
            progress.update((t + 1) / len(tiles))
    return removed, valid
