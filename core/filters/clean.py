"""The quality-filter chain on a whole pair, tile by tile, and the one-click clean (quality
filters and ramp removal on stable ground).

Order of the chain, each step on the survivors of the previous one: SNR threshold, speed
threshold, normalised median test, speckle (small coherent islands), directional filter, 3×3
median smoothing. Defaults that depend on the product are given as a share of the *pixel speed*
``P`` = one grid pixel of displacement over the pair's baseline (m/yr): the median-test noise
floor is 0.1 P (the original method's 0.1 px), the directional test needs vectors faster than
0.2 P, and the speckle filter links neighbours differing by at most max(0.1 P, 3 × the robust
scale of neighbour differences), so noisy products do not fall apart into islands.

Tiles are read with a halo wide enough for every neighbourhood step (the speckle filter needs
``max_size`` pixels and its reach: an island of at most that size touching a tile's core, and
the pixels it is compared with, stay inside the halo), so results do not depend on the tiling.
"""

import dataclasses
import os
from dataclasses import dataclass

import numpy as np

from . import quality as F
from ..errors import InputError
from ..arrays.nanstats import neighbours
from ..io.atomic import make_folder
from ..io.names import unique_name
from ..io.pairsource import PairSource
from ..io.products import PairWriter, error_bands, write_errors
from ..progress import ensure
from .ramp import fit_file_ramps
from ..io.raster import iter_tiles
from ..io.stable import stable_mask

DIRECTION_MODES = ("smoothed", "given", "none")


@dataclass
class FilterSettings:
    """Settings of the filter chain. ``None`` disables the SNR, speed and median-test steps
    (``speckle_size=0`` the speckle filter); ``None`` for ``nmt_epsilon``, ``speckle_diff`` and
    ``min_speed`` means automatic (see the module help). Speeds in m/yr, angles in degrees."""

    snr_min: float = F.DEFAULT_SNR
    max_speed: float = F.DEFAULT_MAX_SPEED
    nmt_threshold: float = F.DEFAULT_NMT_THRESHOLD
    nmt_epsilon: float = None  # auto: 0.1 pixel speed
    nmt_size: int = 3
    speckle_size: int = F.DEFAULT_SPECKLE_SIZE  # 0 disables
    speckle_diff: float = None  # auto: max(0.1 pixel speed, 3 x neighbour-difference scale)
    direction: str = "smoothed"  # 'smoothed' (from the field), 'given' (flow source), 'none'
    max_angle: float = F.DEFAULT_MAX_ANGLE
    min_speed: float = None  # auto: 0.2 pixel speed
    smooth_size: int = 9
    median: bool = True

    def halo(self):
        """Pixels of context a tile needs around its core."""
        h = self.nmt_size // 2 if self.nmt_threshold else 0
        h += self.speckle_size + F.SPECKLE_REACH if self.speckle_size else 0
        h += self.smooth_size // 2 if self.direction == "smoothed" else 0
        return h + (1 if self.median else 0)

    def resolved(self, source, sample=1024):
        """A copy with the automatic values computed for ``source`` (a PairSource)."""
        if self.direction not in DIRECTION_MODES:
            raise InputError(f"Unknown direction mode '{self.direction}': use one of "
                             f"{', '.join(DIRECTION_MODES)}.")
        p = source.pixel_speed()
        s = dataclasses.replace(self)
        if s.nmt_epsilon is None:
            s.nmt_epsilon = 0.1 * p
        if s.min_speed is None:
            s.min_speed = 0.2 * p
        if s.speckle_size and s.speckle_diff is None:
            rows, cols = source.grid.shape
            nr, nc = min(rows, sample), min(cols, sample)
            vx, vy, snr = source.read(((rows - nr) // 2, (cols - nc) // 2, nr, nc))
            vx, vy, _ = self._pointwise(vx, vy, snr)
            s.speckle_diff = max(0.1 * p, 3.0 * F.neighbour_difference_scale(vx, vy))
        return s

    def _pointwise(self, vx, vy, snr):
        masks = {}
        if self.snr_min is not None:
            vx, vy, masks["snr"] = F.snr_filter(vx, vy, snr, self.snr_min)
        if self.max_speed is not None:
            vx, vy, masks["speed"] = F.speed_filter(vx, vy, self.max_speed)
        return vx, vy, masks


def apply_filters(vx, vy, snr, settings, flow=None, cut=None, errors=None, rho=1.0):
    """Run the chain on arrays (m/yr) with *resolved* settings; ``flow`` is the reference bearing
    raster for direction mode 'given'. Returns ``(vx, vy, masks, errors)``, masks of removed
    pixels by filter name in chain order. With ``cut`` (a pair of slices, a tile's core in the
    arrays), the returned vx, vy are that part only, and the last step is computed for it alone.

    ``errors`` ``(vx_error, vy_error)`` (1σ, m/yr, arrays like vx) are carried along: NaN where a
    vector is removed, and through the 3×3 median by :func:`median_error` with the neighbours'
    error correlation ``rho``. The returned errors are None without them."""
    s = settings
    vx, vy, masks = s._pointwise(vx, vy, snr)
    if s.nmt_threshold is not None:
        vx, vy, masks["median test"] = F.normalised_median_test(vx, vy, s.nmt_epsilon,
                                                                 s.nmt_threshold, s.nmt_size)
    if s.speckle_size:
        vx, vy, masks["speckle"] = F.speckle_filter(vx, vy, s.speckle_diff, s.speckle_size)
    if s.direction == "smoothed":
        mx, my = F.smoothed_field(vx, vy, s.smooth_size)
        with np.errstate(invalid="ignore"):
            ref = np.where(np.hypot(mx, my) > s.min_speed, F.bearing(mx, my), np.nan)
        vx, vy, masks["direction"] = F.directional_filter(vx, vy, ref, s.max_angle, s.min_speed)
    elif s.direction == "given":
        if flow is None:
            raise InputError("The directional filter needs a flow direction (raster or flowlines).")
        vx, vy, masks["direction"] = F.directional_filter(vx, vy, flow, s.max_angle, s.min_speed)
    if errors is not None:
        kept = np.isfinite(vx) & np.isfinite(vy)
        errors = [np.where(kept, e, np.float32(np.nan)).astype(np.float32) for e in errors]
    if cut is not None:
        # the median needs one pixel around the core, no more
        (r0, r1), (c0, c1) = ((max(sl.start - 1, 0), min(sl.stop + 1, n))
                              for sl, n in zip(cut, vx.shape))
        inner = (slice(cut[0].start - r0, cut[0].stop - r0),
                 slice(cut[1].start - c0, cut[1].stop - c0))
        vx, vy = vx[r0:r1, c0:c1], vy[r0:r1, c0:c1]
        if errors is not None:
            errors = [e[r0:r1, c0:c1] for e in errors]
    else:
        inner = (slice(None), slice(None))
    if s.median:
        vx, vy = F.median3x3(vx), F.median3x3(vy)
        if errors is not None:
            errors = [median_error(e, rho) for e in errors]
    if errors is not None:
        errors = tuple(e[inner] for e in errors)
    return vx[inner], vy[inner], masks, errors


def neighbour_error_correlation(metadata):
    """Correlation of the errors of two neighbouring vectors of a pair product, from its
    correlation WINDOW (e.g. ``32x32``) and STEP (px) metadata: ``(1 − step/window)⁸``, the
    share of their windows' overlap raised to the 8th power (fitted on synthetic pairs of exact
    truth at window 32, steps 4, 8 and 16: measured 0.27, 0.13 and ~0; the texture noise that
    makes the error is shared far less than the pixels). 1 (fully correlated: the median does
    not average errors out) when the product does not say how it was correlated."""
    try:
        window = min(float(x) for x in str(metadata.get("WINDOW", "")).lower().split("x"))
        step = float(metadata.get("STEP", ""))
    except ValueError:
        return 1.0
    if not (window > 0 and step > 0):
        return 1.0
    return max(0.0, 1.0 - step / window) ** 8


def median_error(error, rho):
    """1σ (m/yr) of the NaN-aware 3×3 median of values whose errors are ``error`` (NaN where
    there is no value), the ``n`` kept neighbours' errors correlated by ``rho``: the median of
    their errors times ``√(c (1 + (n − 1) ρ) / n)``, ``c`` = π/2 (the median's variance against
    the mean's) from three values on, 1 below (the median of two is their mean), at most 1."""
    stack = np.stack(neighbours(error, 3))
    n = np.isfinite(stack).sum(axis=0).astype(np.float32)
    c = np.where(n >= 3, np.float32(np.pi / 2), np.float32(1.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        factor = np.minimum(np.sqrt(c * (1 + (n - 1) * np.float32(rho)) / n), 1.0)
    return (F.median3x3(error) * factor).astype(np.float32)


def clean_pair(source, output, settings=None, flow=None, stable=None, order=1, tile=1024,
               progress=None, drop=None):
    """Filter a pair (``source``: a PairSource) and, when a ``stable`` mask (bool, on the pair's
    grid) is given, remove robust ramps of ``order`` fitted on it; write a pair product (m/yr).

    The ramps are fitted first (on stable vectors under the speed threshold) and
    subtracted from each tile as it is read, so the neighbourhood and directional filters see
    corrected vectors: a ramp would otherwise turn slow vectors away from a given flow direction.
    ``flow`` is a RasterDirection/FlowlineDirection for direction mode 'given'. Returns
    ``(report, ramps)``: a :class:`filters.FilterReport` and ``(rx, ry)`` or None. ``drop``
    (bool on the pair's grid, e.g. the SAR layover/shadow of :mod:`core.filters.terrain`)
    removes vectors before every filter (reported as 'layover/shadow').
    """
    progress = ensure(progress)
    settings = (settings or FilterSettings()).resolved(source)
    if settings.direction == "given" and flow is None:
        raise InputError("The directional filter needs a flow direction (raster or flowlines).")
    grid = source.grid
    ramps = None
    if stable is not None:
        ramps = fit_file_ramps(source, stable, order, settings.max_speed, tile,
                               progress.sub(0.0, 0.2, "Fitting the ramps on stable ground"))
        progress = progress.sub(0.2, 1.0, "Filtering and writing the pair")
    meta = source.carried_metadata()
    meta["FILTERS"] = describe(settings)
    if ramps:
        meta.update(RAMP_VX=ramps[0].describe(), RAMP_VY=ramps[1].describe(),
                    RAMP_VX_SURFACE=ramps[0].to_text(), RAMP_VY_SURFACE=ramps[1].to_text())
    report = F.FilterReport(settings=meta["FILTERS"])
    tiles = list(iter_tiles(grid.shape, tile, settings.halo()))
    extra = error_bands(source)
    rho = neighbour_error_correlation(source.metadata)
    with PairWriter(output, grid, source.start, source.end, source.sensor, meta,
                    inputs=source.inputs(), extra_bands=extra) as w:
        for i, (read, core, cut) in enumerate(tiles):
            vx, vy, snr = source.read(read)
            if ramps:
                vx = vx - ramps[0].on_grid(grid, read)
                vy = vy - ramps[1].on_grid(grid, read)
            report.valid_before += int(np.count_nonzero(
                np.isfinite(vx[cut]) & np.isfinite(vy[cut])))
            if drop is not None:
                lost = drop[read[0]:read[0] + read[2], read[1]:read[1] + read[3]]
                report.add("layover/shadow", (lost & np.isfinite(vx))[cut])
                vx, vy = np.where(lost, np.nan, vx), np.where(lost, np.nan, vy)
            fx, fy, masks, errors = apply_filters(
                vx, vy, snr, settings, flow.window(read) if flow is not None else None, cut,
                source.read_errors(read) if extra else None, rho)
            for name, m in masks.items():
                report.add(name, m[cut])
            report.valid_after += int(np.count_nonzero(np.isfinite(fx)))
            w.write(fx, fy, snr[cut], core[0], core[1])
            write_errors(w, errors, core[0], core[1])
            progress.update((i + 1) / len(tiles))
        w.set_metadata({"VALID_BEFORE": report.valid_before, "VALID_AFTER": report.valid_after})
    return report, ramps


def clean_pairs(paths, folder, polygons=None, progress=None):
    """Clean every pair product of ``paths`` with :func:`clean_pair` (default settings) into
    ``folder``.

    Outputs keep the input file names (``_2``, ``_3``... added when two inputs share one). Ramps
    are removed on stable ground given as ``polygons`` (see :func:`core.io.stable.stable_mask`);
    without them, only the quality filters run. Returns one ``(output path, report, ramps)`` per
    input, in order.
    """
    progress = ensure(progress)
    make_folder(folder)
    masks, used, out = [], set(), []  # masks: (grid, stable mask) per distinct pair grid
    for k, path in enumerate(paths):
        source = PairSource(path)
        stable = None
        if polygons:
            stable = next((m for g, m in masks if g.same_as(source.grid)), None)
            if stable is None:
                stable = stable_mask(source.grid, polygons)
                masks.append((source.grid, stable))
        stem, ext = os.path.splitext(os.path.basename(str(path)))
        name = unique_name(stem, used)
        target = os.path.join(str(folder), name + (ext or ".tif"))
        report, ramps = clean_pair(source, target, stable=stable,
                                   progress=progress.sub(k / len(paths), (k + 1) / len(paths),
                                                         f"Cleaning pair {k + 1} of {len(paths)}"))
        out.append((target, report, ramps))
    return out


def describe(settings):
    """One line naming the steps and thresholds of resolved settings (for metadata and logs)."""
    s = settings
    parts = []
    if s.snr_min is not None:
        parts.append(f"snr>={s.snr_min:g}")
    if s.max_speed is not None:
        parts.append(f"speed<={s.max_speed:g} m/yr")
    if s.nmt_threshold is not None:
        parts.append(f"median test {s.nmt_size}x{s.nmt_size} r<={s.nmt_threshold:g} "
                     f"eps={s.nmt_epsilon:.3g} m/yr")
    if s.speckle_size:
        parts.append(f"speckle <={s.speckle_size} px at {s.speckle_diff:.3g} m/yr")
    if s.direction != "none":
        parts.append(f"direction ({s.direction}) +-{s.max_angle:g} deg above {s.min_speed:.3g} m/yr")
    if s.median:
        parts.append("median 3x3")
    return "; ".join(parts)
