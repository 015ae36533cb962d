"""Weighted multi-sensor fusion of velocity stacks (m/yr), band by band.

Per pixel and time step the fused value is the weighted mean of the stacks valid there, the
weights renormalised over them: ``F = Σ_valid w_k V_k / Σ_valid w_k``. A stack whose weight is 0
never contributes. A pixel gets a fused value only where at least one *primary* stack (e.g.
Landsat, Sentinel-2) is valid; the *auxiliary* stack (Sentinel-1) then adds its weighted value,
and elsewhere only serves the gap filling (:mod:`core.fusion.gapfill`).

Time steps: the union of the stacks' band intervals, chronological; a stack contributes to a time
step through its band with exactly that interval (monthly stacks share calendar months). The
output is on the grid of the first primary stack; other stacks are resampled onto it with nearest
neighbour, band by band (vx/vy stacks in another CRS turned to its axes, see
:mod:`core.io.reader`). Memory holds one band of each stack at a time.
"""

import numpy as np

from ..errors import InputError
from ..io.grid import require_crs
from ..io.products import StackWriter, read_stack_info
from ..io.raster import RasterWriter
from ..io.reader import GridReader, StackReader
from ..progress import ensure


def format_weights(weights):
    """Weights as the comma-separated string algorithms exchange (e.g. '0.25,0.6,0.15')."""
    return ",".join(f"{float(w):.8g}" for w in weights)


def parse_weights(text, count, what="WEIGHTS"):
    """Parse a comma-separated weight string for ``count`` stacks; normalised to sum 1."""
    parts = [p for p in str(text or "").replace(";", ",").split(",") if p.strip()]
    try:
        w = np.array([float(p) for p in parts], np.float64)
    except ValueError:
        raise InputError(f"{what}: '{text}' is not a comma-separated list of numbers.") from None
    if w.size != count:
        raise InputError(f"{what}: '{text}' holds {w.size} weight(s) but {count} stack(s) are "
                         "given (one weight per source, in SOURCES order, then the auxiliary).")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise InputError(f"{what}: '{text}': weights must be non-negative numbers, not all zero.")
    return w / w.sum()


def parse_class_weights(text, count, what="CLASS_WEIGHTS"):
    """Parse 'class:w1,w2,...;class:...' into ``{class value: weights}`` (may be empty)."""
    out = {}
    for item in str(text or "").split(";"):
        if not item.strip():
            continue
        if ":" not in item:
            raise InputError(f"{what}: '{item}' is not 'class:w1,w2,...'.")
        key, values = item.split(":", 1)
        try:
            value = float(key)
        except ValueError:
            raise InputError(f"{what}: class '{key}' is not a number.") from None
        out[value] = parse_weights(values, count, f"{what} (class {key.strip()})")
    return out


def union_intervals(infos):
    """The chronological union of the band intervals of several stacks."""
    return sorted({iv for info in infos for iv in info.intervals})


def fuse_band(values, weights, n_primary):
    """Fuse one time step: ``values`` (k bands of rows x cols, m/yr, NaN gaps, None for a stack
    without this time step), ``weights`` (k,) or (k, rows, cols); the first ``n_primary`` stacks
    are primary. Returns ``(fused, count)``: the fused band (float32, NaN where no primary stack
    with a positive weight is valid) and the number of contributing stacks (float32, 0 there).
    Accumulates stack by stack, so memory holds the inputs and four bands."""
    shape = next(np.shape(v) for v in values if v is not None)
    num = np.zeros(shape, np.float32)
    den = np.zeros(shape, np.float32)
    count = np.zeros(shape, np.float32)
    primary = np.zeros(shape, bool)
    for k, v in enumerate(values):
        if v is None:
            continue
        w = np.asarray(weights[k], np.float32)
        ok = np.isfinite(v) & (w > 0)
        num += np.where(ok, v * w, np.float32(0))
        den += np.where(ok, w, np.float32(0))
        count += ok
        if k < n_primary:
            primary |= ok
    fused = np.full(shape, np.nan, np.float32)
    np.divide(num, den, out=fused, where=primary)
    count[~primary] = 0
    return fused, count


def stack_infos(paths, what):
    """Headers of velocity stacks (dates and CRS required), all of one quantity. ``what`` names
    the stacks in errors: one text for all, or one per path."""
    whats = [what] * len(paths) if isinstance(what, str) else list(what)
    infos = []
    for p, w in zip(paths, whats):
        info = read_stack_info(p, w)
        require_crs(info.grid, p)
        infos.append(info)
    quantities = {i.quantity for i in infos}
    if len(quantities) > 1:
        raise InputError(f"The stacks hold different quantities ({', '.join(sorted(quantities))}): "
                         "combine stacks of one quantity (v, vx or vy).")
    return infos


def pixel_weights(weights, grid, classes=None, class_weights=None):
    """The weights (k,) of the stacks, or (k, rows, cols) on ``grid`` when ``class_weights``
    ({class value: weights}) give the pixels of those classes of the ``classes`` raster (any
    grid, resampled by nearest neighbour) their own weights."""
    if not class_weights:
        return weights
    if not classes:
        raise InputError("CLASSES: per-class weights need the class raster.")
    k = len(weights)
    cls = GridReader(classes, grid, "class raster").read(1)
    out = np.broadcast_to(weights[:, None, None], (k,) + grid.shape).astype(np.float32)
    for value, cw in class_weights.items():
        if len(cw) != k:
            raise InputError(f"CLASS_WEIGHTS: class {value:g} has {len(cw)} weights for {k} "
                             "stacks.")
        out[:, cls == value] = np.asarray(cw, np.float32)[:, None]
    return out


def fused_step(readers, interval, weights, n_primary):
    """Fuse the stacks' bands of ``interval``: ``(fused, count, item)`` with ``item`` the
    summary ``{interval, stacks, valid_share, mean_sources}`` of that time step."""
    bands = [r.read(interval) for r in readers]
    fused, count = fuse_band(bands, weights, n_primary)
    valid = np.isfinite(fused)
    item = {"interval": str(interval), "stacks": sum(x is not None for x in bands),
            "valid_share": float(valid.mean()),
            "mean_sources": float(count[valid].mean()) if valid.any() else 0.0}
    return fused, count, item


def fuse_stacks(primaries, output, weights, auxiliary=None, count_output=None, classes=None,
                class_weights=None, progress=None):
    """Fuse velocity stacks into ``output`` (and the contributing-stack counts into
    ``count_output``). ``weights``: array or weight string, primaries then auxiliary.

    ``classes`` (categorical raster) with ``class_weights`` ({class value: weights}) gives pixels
    of those classes their own weights. Stacks in another CRS are read with their components
    turned to the output grid's axes (:class:`core.io.reader.StackReader`). Returns a list of
    per-band dicts ``{interval, valid_share, mean_sources}``.
    """
    progress = ensure(progress)
    primaries = list(primaries)
    if not primaries:
        raise InputError("SOURCES: give at least one primary velocity stack.")
    paths = primaries + ([auxiliary] if auxiliary else [])
    infos = stack_infos(paths, "velocity stack")
    k = len(paths)
    w = parse_weights(weights, k) if isinstance(weights, str) else np.asarray(weights, np.float64)
    if w.shape != (k,):
        raise InputError(f"WEIGHTS: {w.size} weight(s) for {k} stack(s).")
    grid = infos[0].grid
    readers = [StackReader(info, grid) for info in infos]
    intervals = union_intervals(infos)
    pixel_w = pixel_weights(w, grid, classes, class_weights)
    names = ",".join(info.path for info in infos)
    meta = {"WEIGHTS": format_weights(w), "SOURCES": names,
            "ROLES": ",".join(["primary"] * len(primaries) + (["auxiliary"] if auxiliary else []))}
    summary = []
    inputs = paths + ([classes] if classes else [])
    writer = StackWriter(output, grid, intervals, "fused", infos[0].quantity, meta, inputs=inputs)
    counter = None
    if count_output:
        counter = RasterWriter(count_output, grid, len(intervals), [str(iv) for iv in intervals],
                               {"SENSOR": "fused", "QUANTITY": "count", "UNITS": "stacks",
                                "SOURCES": names}, inputs=inputs + [output])
    try:
        for b, iv in enumerate(intervals):
            fused, count, item = fused_step(readers, iv, pixel_w, len(primaries))
            writer.write(b, fused)
            writer.set_band_metadata(b, {"STACKS": item["stacks"],
                                         "VALID_SHARE": f"{item['valid_share']:.4f}",
                                         "MEAN_SOURCES": f"{item['mean_sources']:.3f}"})
            if counter is not None:
                counter.write(b + 1, count)
            summary.append(item)
            progress.update((b + 1) / len(intervals))
    finally:
        writer.close()
        if counter is not None:
            counter.close()
    return summary
