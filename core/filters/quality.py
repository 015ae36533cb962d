"""Quality filters for velocity fields (arrays): SNR, speed, normalised median test, speckle
(small coherent islands), direction, and a NaN-aware 3×3 median.

All functions take float arrays in m/yr (vx east, vy north, NaN = no value) and return new
arrays; the rejecting filters also return the boolean mask of the pixels they removed (valid
before, NaN after), so callers report how many each filter took. Directions are bearings in
degrees clockwise from north, so a vector's bearing is ``atan2(vx, vy)``.
"""

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..arrays.nanstats import NMAD_FACTOR, nanmedian0, neighbours
from ..errors import InputError
from ..io.products import DEFAULT_MAX_SPEED

DEFAULT_SNR = 0.9
DEFAULT_NMT_THRESHOLD = 2.0
DEFAULT_MAX_ANGLE = 20.0
DEFAULT_SPECKLE_SIZE = 100  # pixels
SPECKLE_REACH = 2  # pixels around a speckle region searched for a disagreeing vector


@dataclass
class FilterReport:
    """Pixels removed by each filter of a chain (name -> count), in the order they ran."""

    removed: dict = field(default_factory=dict)
    valid_before: int = 0
    valid_after: int = 0
    settings: str = ""  # the steps and thresholds that ran

    def add(self, name, mask):
        self.removed[name] = self.removed.get(name, 0) + int(np.count_nonzero(mask))

    def lines(self):
        """Human-readable summary lines."""
        out = [f"filters: {self.settings}"] if self.settings else []
        out.append(f"valid vectors before: {self.valid_before}")
        for name, n in self.removed.items():
            share = 100.0 * n / self.valid_before if self.valid_before else 0.0
            out.append(f"{name}: removed {n} ({share:.2f} %)")
        out.append(f"valid vectors after: {self.valid_after}")
        return out


def _reject(vx, vy, bad):
    """Copies of vx, vy with ``bad`` set to NaN, and the mask of valid pixels removed."""
    removed = bad & np.isfinite(vx) & np.isfinite(vy)
    vx, vy = vx.copy(), vy.copy()
    vx[removed] = np.nan
    vy[removed] = np.nan
    return vx, vy, removed


def snr_filter(vx, vy, snr, threshold=DEFAULT_SNR):
    """Remove vectors whose SNR is below ``threshold``; pixels with unknown (NaN) SNR are kept."""
    with np.errstate(invalid="ignore"):
        bad = np.asarray(snr) < threshold
    return _reject(vx, vy, bad)


def speed_filter(vx, vy, max_speed=DEFAULT_MAX_SPEED):
    """Remove vectors faster than ``max_speed`` (m/yr)."""
    if max_speed <= 0:
        raise InputError(f"The speed threshold must be positive (m/yr); {max_speed} given.")
    with np.errstate(invalid="ignore"):
        bad = np.hypot(vx, vy) > max_speed
    return _reject(vx, vy, bad)


def normalised_median_residual(u, size=3):
    """Westerweel & Scarano (2005) residual of each pixel of ``u`` against its neighbours.

    Returns ``(|u - m|, r_m, n)``: the distance to the neighbours' median ``m``, the median of
    the neighbours' own distances to ``m`` (the local noise scale) and the number of valid
    neighbours. The normalised residual is ``|u - m| / (r_m + epsilon)``.
    """
    nb = neighbours(u, size, centre=False)
    med, n = nanmedian0(nb)
    spread, _ = nanmedian0([np.abs(a - med) for a in nb])
    return np.abs(u - med), spread, n


def normalised_median_test(vx, vy, epsilon, threshold=DEFAULT_NMT_THRESHOLD, size=3,
                           min_neighbours=2):
    """Remove vectors that differ from their neighbourhood (normalised median test on vx, vy).

    ``epsilon`` (m/yr) is the noise floor added to the local spread (about 0.1 image pixel of
    displacement in the original method); a vector is removed when the norm of its two
    normalised residuals exceeds ``threshold`` (2 is usual), or when fewer than
    ``min_neighbours`` neighbours in the ``size``×``size`` window are valid (isolated vectors
    cannot be checked and are mostly mismatches).
    """
    if epsilon <= 0:
        raise InputError(f"The median-test noise level epsilon must be positive; {epsilon} given.")
    dx, sx, n = normalised_median_residual(vx, size)
    dy, sy, _ = normalised_median_residual(vy, size)
    with np.errstate(invalid="ignore"):
        r = np.hypot(dx / (sx + epsilon), dy / (sy + epsilon))
        bad = (r > threshold) | (n < min_neighbours)
    return _reject(vx, vy, bad)


def neighbour_difference_scale(vx, vy):
    """Robust scale (m/yr) of the differences between horizontal and vertical neighbours of vx
    and vy: ``NMAD_FACTOR × median |Δ|`` over all valid neighbour pairs (0 if none; the differences
    of a smooth field centre on zero, so this is their NMAD about zero)."""
    diffs = [np.abs(np.diff(a, axis=ax)).ravel() for a in (vx, vy) for ax in (0, 1)]
    d = np.concatenate(diffs)
    d = d[np.isfinite(d)]
    return NMAD_FACTOR * float(np.median(d)) if d.size else 0.0


def _pairs(shape, dr, dc):
    """Slices ``(a, b)`` pairing every pixel with its neighbour at offset (dr >= 0, dc)."""
    rows, cols = shape
    a = (slice(0, rows - dr), slice(max(-dc, 0), cols - max(dc, 0)))
    b = (slice(dr, rows), slice(max(dc, 0), cols - max(-dc, 0)))
    return a, b


def speckle_filter(vx, vy, max_diff, max_size=DEFAULT_SPECKLE_SIZE, reach=SPECKLE_REACH):
    """Remove small islands of vectors that are coherent among themselves but jump from their
    surroundings (OpenCV's speckle filter, for velocities).

    Neighbouring valid pixels (4-connected) belong to one region when both |Δvx| and |Δvy| are
    at most ``max_diff`` (m/yr). A region of at most ``max_size`` pixels is removed when a valid
    pixel within ``reach`` pixels of it disagrees with it by more than ``max_diff``. Template
    matching with overlapping windows makes mismatches in such patches, which the 3×3 median test
    cannot see because their neighbours agree with them; the reach catches the fragments that
    earlier filters cut out of a patch. A small region with no valid pixel that near (a clear
    patch between clouds) has nothing to disagree with and is kept.
    """
    if max_diff <= 0:
        raise InputError(f"The speckle filter's maximum difference must be positive; {max_diff} "
                         "given.")
    rows, cols = vx.shape
    valid = np.isfinite(vx) & np.isfinite(vy)
    index = np.arange(rows * cols).reshape(rows, cols)

    def compare(dr, dc):
        a, b = _pairs(vx.shape, dr, dc)
        both = valid[a] & valid[b]
        with np.errstate(invalid="ignore"):
            close = (np.abs(vx[a] - vx[b]) <= max_diff) & (np.abs(vy[a] - vy[b]) <= max_diff)
        return index[a], index[b], both & close, both & ~close

    src, dst = [], []
    for dr, dc in ((0, 1), (1, 0)):
        ia, ib, link, _ = compare(dr, dc)
        src.append(ia[link])
        dst.append(ib[link])
    src, dst = np.concatenate(src), np.concatenate(dst)
    graph = coo_matrix((np.ones(src.size, np.int8), (src, dst)), shape=(rows * cols,) * 2)
    n_regions, labels = connected_components(graph, directed=False)
    sizes = np.bincount(labels, minlength=n_regions)
    small = sizes <= max_size
    disagrees = np.zeros(n_regions, bool)
    for dr in range(reach + 1):
        for dc in range(-reach, reach + 1):
            if dr == 0 and dc <= 0:
                continue
            ia, ib, _, jump = compare(dr, dc)
            ends = np.concatenate([ia[jump], ib[jump]])
            ends = ends[small[labels[ends]]]  # only small regions can be removed
            disagrees[labels[ends]] = True
    bad = (small & disagrees)[labels].reshape(rows, cols)
    return _reject(vx, vy, bad)


def angle_difference(bearing, reference):
    """Signed difference ``bearing - reference`` in degrees, wrapped to [-180, 180)."""
    return (np.asarray(bearing) - reference + 180.0) % 360.0 - 180.0


def bearing(vx, vy):
    """Bearing of vectors in degrees clockwise from north, in [0, 360)."""
    return np.degrees(np.arctan2(vx, vy)) % 360.0


def directional_filter(vx, vy, reference, max_angle=DEFAULT_MAX_ANGLE, min_speed=0.0):
    """Remove vectors pointing more than ``max_angle`` degrees away from ``reference`` (flow
    bearing, degrees clockwise from north).

    The test applies only where the reference is known (finite) and the vector is faster than
    ``min_speed`` (m/yr): the direction of a vector not much longer than the noise is noise.
    """
    if not 0 < max_angle < 180:
        raise InputError(f"The maximum angle must be between 0 and 180 degrees; {max_angle} given.")
    ref = np.asarray(reference, np.float32)
    if ref.shape != np.shape(vx):
        raise InputError(f"The flow direction ({ref.shape}) and the velocity field "
                         f"({np.shape(vx)}) have different shapes.")
    with np.errstate(invalid="ignore"):
        bad = (np.isfinite(ref) & (np.hypot(vx, vy) > min_speed)
               & (np.abs(angle_difference(bearing(vx, vy), ref)) > max_angle))
    return _reject(vx, vy, bad)


def median3x3(a):
    """NaN-aware 3×3 median smoothing; NaN pixels stay NaN (gaps are not filled)."""
    med, _ = nanmedian0(neighbours(a, 3))
    med[~np.isfinite(a)] = np.nan
    return med


def smoothed_field(vx, vy, size=9):
    """NaN-aware ``size``×``size`` box mean of vx and vy (a reference field for directions)."""
    out = []
    valid = np.isfinite(vx) & np.isfinite(vy)
    count = ndimage.uniform_filter(valid.astype(np.float32), size, mode="constant")
    for a in (vx, vy):
        total = ndimage.uniform_filter(np.where(valid, a, 0.0).astype(np.float32), size,
                                       mode="constant")
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append(np.where(count > 0.5 / size ** 2, total / count, np.nan).astype(np.float32))
    return out[0], out[1]
