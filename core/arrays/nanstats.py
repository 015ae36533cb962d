"""NaN-aware statistics over neighbourhoods and short sequences of arrays (NaN = no value).

Shared by the correlation engine (vector validation), the quality filters, the ramp fit, the monthly
stacks and the quality metrics; :func:`nmad` is the one robust spread of the plugin.
"""

import numpy as np

from ..errors import InputError

NMAD_FACTOR = 1.4826  # 1/Φ⁻¹(3/4): makes the median absolute deviation equal σ for Gaussian values


def nmad(x, centre=None):
    """Normalised median absolute deviation of the values ``x`` (all finite):
    ``1.4826 · median(|x − median(x)|)``, a standard deviation that outliers hardly move (equals σ
    for Gaussian values). ``centre``: the median of ``x`` when the caller already has it."""
    x = np.asarray(x)
    if centre is None:
        centre = np.median(x)
    return NMAD_FACTOR * float(np.median(np.abs(x - centre)))


def neighbours(a, size=3, centre=True):
    """The ``size``×``size`` neighbourhood of every pixel as a list of ``k`` shifted views of
    ``a`` (NaN outside the raster); ``centre=False`` leaves the pixel itself out."""
    if size < 3 or size % 2 == 0:
        raise InputError(f"The window size must be odd and at least 3; {size} given.")
    h = size // 2
    padded = np.pad(np.asarray(a, np.float32), h, constant_values=np.nan)
    rows, cols = a.shape
    return [padded[h + dr:h + dr + rows, h + dc:h + dc + cols]
            for dr in range(-h, h + 1) for dc in range(-h, h + 1) if centre or dr or dc]


# Optimal sorting networks (Knuth, TAOCP 5.3.4) for the 8 neighbours and the 3×3 window; other
# sizes use odd-even transposition (k rounds of neighbour exchanges).
_NETWORKS = {
    8: [(0, 2), (1, 3), (4, 6), (5, 7), (0, 4), (1, 5), (2, 6), (3, 7), (0, 1), (2, 3), (4, 5),
        (6, 7), (2, 4), (3, 5), (1, 4), (3, 6), (1, 2), (3, 4), (5, 6)],
    9: [(0, 3), (1, 7), (2, 5), (4, 8), (0, 7), (2, 4), (3, 8), (5, 6), (0, 2), (1, 3), (4, 5),
        (7, 8), (1, 4), (3, 6), (5, 7), (0, 1), (2, 4), (3, 5), (6, 8), (2, 3), (4, 5), (6, 7),
        (1, 2), (3, 4), (5, 6)],
}


def sorting_network(k):
    """Compare-exchange pairs ``(i, j)`` that sort ``k`` values."""
    if k in _NETWORKS:
        return _NETWORKS[k]
    return [(i, i + 1) for r in range(k) for i in range(r % 2, k - 1, 2)]


def nanmedian0(arrays):
    """Median over a short sequence of same-shape arrays (or along axis 0 of a stack), ignoring
    NaN (NaN where all are NaN); returns ``(median, count of valid values)``.

    Of the m missing values of a pixel, the first ⌊m/2⌋ become -inf and the others +inf, so the
    valid values sit in the middle once sorted and their median lies at fixed ranks (which ones
    depends only on the parity of m). Sorting uses a network of elementwise min/max
    (:func:`sorting_network`): no per-pixel sort calls and no copy of the stack.
    """
    k = len(arrays)
    missing = sum(np.isnan(a).astype(np.uint8) for a in arrays)
    low_share = missing // 2
    seen = np.zeros_like(missing)
    x = []
    for a in arrays:
        v = np.array(a, np.float32)  # a copy: the network sorts in place
        idx = np.flatnonzero(np.isnan(v))  # usually few: touch only those
        seen.flat[idx] += 1
        v.flat[idx] = np.where(seen.flat[idx] <= low_share.flat[idx], -np.inf, np.inf)
        x.append(v)
    spare = np.empty_like(x[0])
    for i, j in sorting_network(k):
        lo = np.minimum(x[i], x[j], out=spare)
        np.maximum(x[i], x[j], out=x[j])
        spare, x[i] = x[i], lo
    odd = (missing % 2).astype(bool)
    h = k // 2
    with np.errstate(invalid="ignore"):  # -inf + inf where nothing is valid: set NaN below
        if k % 2 == 0:
            med = np.where(odd, x[h - 1], 0.5 * (x[h - 1] + x[h]))
        else:
            med = np.where(odd, 0.5 * (x[max(h - 1, 0)] + x[h]), x[h])
    n = k - missing.astype(np.intp)
    med[n == 0] = np.nan
    return med, n
