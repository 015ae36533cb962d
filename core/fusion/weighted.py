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

Per-pixel uncertainty (``errors``, one 1 σ per stack in m/yr, e.g. each sensor's RMSE against the
UAV from the calibration): the fused value's 1 σ is ``sqrt(Σ w_k² σ_k²) / Σ w_k`` over the stacks
that contributed, i.e. the propagation of independent errors through the renormalised weighted
mean (``error_output``, one band per time step).

Per-pixel errors (``error_stacks``, each stack's 1 σ stack or None, e.g. the temporal filter's
``<stem>_error.tif``): a stack's σ at a pixel is then ``sqrt(σ_k² + e_k²)``, its calibration σ_k
(which holds what the stacks share: window smoothing, the UAV's own error) in quadrature with
the pixel's monthly error e_k (σ_k alone where e_k is NaN). With ``inverse_variance`` the
calibrated weights are scaled per pixel by ``σ_k² / (σ_k² + e_k²)``: a stack's noisy months
count less, its typical months keep the calibrated weight.
"""

import numpy as np

from ..errors import InputError
from ..io.grid import require_crs, require_overlap
from ..io.pixel_series import error_links
from ..io.products import StackWriter, read_stack_info
from ..io.raster import RasterWriter, all_or_none, open_raster
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


def parse_errors(text, count, what="ERRORS"):
    """Per-stack 1 σ errors (m/yr): a comma-separated string or a sequence of ``count`` positive
    numbers (not normalised)."""
    if isinstance(text, str):
        parts = [p for p in text.replace(";", ",").split(",") if p.strip()]
        try:
            e = np.array([float(p) for p in parts], np.float64)
        except ValueError:
            raise InputError(f"{what}: '{text}' is not a comma-separated list of numbers.") from None
    else:
        e = np.asarray(text, np.float64).ravel()
    if e.size != count or not np.all(np.isfinite(e)) or np.any(e <= 0):
        raise InputError(f"{what}: '{text}' must hold {count} positive errors (m/yr), one per "
                         "stack in SOURCES order, then the auxiliary.")
    return e


def format_subset_weights(subsets):
    """``{validity mask: weights}`` as 'mask:w1,w2,...;...' with the mask written as 0/1 per
    stack in weight order (e.g. '101:0.6,0,0.4': the weights where only the first and the third
    stack are valid)."""
    return ";".join("".join("1" if m else "0" for m in mask) + ":" + format_weights(w)
                    for mask, w in subsets.items())


def parse_subset_weights(text, count, what="SUBSET_WEIGHTS"):
    """Parse :func:`format_subset_weights`' text into ``{validity mask: weights}`` (may be
    empty); each set's weights are normalised over the stacks it holds."""
    out = {}
    for item in str(text or "").split(";"):
        if not item.strip():
            continue
        key, _, values = item.partition(":")
        key = key.strip()
        if len(key) != count or set(key) - {"0", "1"} or "1" not in key:
            raise InputError(f"{what}: '{key}' is not a mask of {count} digits 0/1 (one per "
                             "stack in weight order, 1 = valid).")
        mask = tuple(c == "1" for c in key)
        w = parse_weights(values, count, f"{what} ({key})")
        if np.any(w[~np.array(mask)] > 0):
            raise InputError(f"{what} ({key}): a stack outside the set has a weight.")
        out[mask] = w
    return out


def subset_pixel_weights(values, weights, subsets):
    """Per-pixel weights (k, rows, cols) of one time step: at each pixel the ``subsets`` weights
    of the set of stacks valid there ({validity mask: weights}), ``weights`` (k,) or (k, rows,
    cols) where that set is not listed. ``values`` as in :func:`fuse_band`."""
    shape = next(np.shape(v) for v in values if v is not None)
    k = len(values)
    code = np.zeros(shape, np.int64)
    for j, v in enumerate(values):
        if v is not None:
            code |= np.isfinite(v).astype(np.int64) << j
    w = np.asarray(weights, np.float32)
    out = np.broadcast_to(w[:, None, None] if w.ndim == 1 else w, (k,) + shape).copy()
    for mask, w in subsets.items():
        at = code == sum(1 << j for j, m in enumerate(mask) if m)
        if at.any():
            out[:, at] = np.asarray(w, np.float32)[:, None]
    return out


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


def fuse_band(values, weights, n_primary, errors=None):
    """Fuse one time step: ``values`` (k bands of rows x cols, m/yr, NaN gaps, None for a stack
    without this time step), ``weights`` (k,) or (k, rows, cols); the first ``n_primary`` stacks
    are primary. Returns ``(fused, count)``: the fused band (float32, NaN where no primary stack
    with a positive weight is valid) and the number of contributing stacks (float32, 0 there);
    with ``errors`` (k 1 σ values or bands, m/yr) ``(fused, count, error)``, the fused value's
    1 σ.
    Accumulates stack by stack, so memory holds the inputs and five bands."""
    shape = next(np.shape(v) for v in values if v is not None)
    num = np.zeros(shape, np.float32)
    den = np.zeros(shape, np.float32)
    var = np.zeros(shape, np.float32)
    count = np.zeros(shape, np.float32)
    primary = np.zeros(shape, bool)
    for k, v in enumerate(values):
        if v is None:
            continue
        w = np.asarray(weights[k], np.float32)
        ok = np.isfinite(v) & (w > 0)
        num += np.where(ok, v * w, np.float32(0))
        den += np.where(ok, w, np.float32(0))
        if errors is not None:
            var += np.where(ok, (w * np.asarray(errors[k], np.float32)) ** 2, np.float32(0))
        count += ok
        if k < n_primary:
            primary |= ok
    fused = np.full(shape, np.nan, np.float32)
    np.divide(num, den, out=fused, where=primary)
    count[~primary] = 0
    if errors is None:
        return fused, count
    error = np.full(shape, np.nan, np.float32)
    np.divide(np.sqrt(var), den, out=error, where=primary)
    return fused, count, error


def value_shares(values, weights, valid):
    """Each stack's share of the fused values of one time step: the mean over the ``valid``
    fused pixels of its renormalised weight there (shares sum to 1 where anything is fused)."""
    ws = []
    for k, v in enumerate(values):
        w = np.asarray(weights[k], np.float32)
        ws.append(np.zeros(valid.shape, np.float32) if v is None
                  else np.where(np.isfinite(v) & (w > 0), w, np.float32(0)))
    den = np.sum(ws, axis=0)
    if not valid.any():
        return [0.0] * len(ws)
    return [float(np.mean(w[valid] / den[valid])) for w in ws]


def overall_shares(items):
    """Each stack's share of all the fused values of a stack: the time steps' ``shares`` weighted
    by their ``valid_share`` (items of :func:`fused_step`, or read back by
    :func:`fused_value_shares`); None where nothing is fused."""
    fused = [i for i in items if i["valid_share"] > 0]
    if not fused:
        return None
    total = sum(i["valid_share"] for i in fused)
    return [sum(i["shares"][k] * i["valid_share"] for i in fused) / total
            for k in range(len(fused[0]["shares"]))]


def fused_value_shares(path):
    """:func:`overall_shares` of a fused stack, from its band metadata VALUE_SHARES and
    VALID_SHARE (in the order of its SOURCES metadata)."""
    ds = open_raster(path, "fused stack")
    items = []
    for b in range(1, ds.RasterCount + 1):
        m = ds.GetRasterBand(b).GetMetadata() or {}
        if "VALUE_SHARES" in m:
            items.append({"valid_share": float(m["VALID_SHARE"]),
                          "shares": [float(x) for x in m["VALUE_SHARES"].split(",")]})
    return overall_shares(items)


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
    first = infos[0]
    for info in infos[1:]:
        # a stack that does not overlap the first would contribute nothing, silently
        # (another CRS is fine: the reader reprojects, and turns vx/vy)
        require_overlap(first.grid, info.grid, first.path, info.path)
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


def pixel_errors(errors, error_bands):
    """Each stack's 1 σ of one time step: its calibration σ_k (``errors``) in quadrature with the
    pixel's monthly error band (``error_bands``, None or NaN: σ_k alone)."""
    out = []
    for sk, e in zip(errors, error_bands):
        sk = np.float32(sk)
        out.append(sk if e is None else
                   np.sqrt(sk ** 2 + np.where(np.isfinite(e), e, np.float32(0)) ** 2))
    return out


def fused_step(readers, interval, weights, n_primary, errors=None, subsets=None,
               error_readers=None, inverse_variance=False):
    """Fuse the stacks' bands of ``interval``: ``(fused, count, item, error)`` with ``item`` the
    summary ``{interval, stacks, valid_share, mean_sources, shares}`` of that time step and
    ``error`` the fused 1 σ band (None without ``errors``, see :func:`fuse_band`); ``subsets``
    the weights of sets of valid stacks (:func:`subset_pixel_weights`); ``error_readers`` (one
    per stack, None without an error stack) the per-pixel errors and ``inverse_variance`` their
    weights (module doc)."""
    bands = [r.read(interval) for r in readers]
    if subsets:
        weights = subset_pixel_weights(bands, weights, subsets)
    if error_readers is not None and errors is not None:
        sigma = pixel_errors(errors, [None if r is None else r.read(interval)
                                      for r in error_readers])
        if inverse_variance:
            weights = [np.asarray(weights[k], np.float32) * np.float32(errors[k]) ** 2 / s ** 2
                       for k, s in enumerate(sigma)]
        errors = sigma
    fused, count, *error = fuse_band(bands, weights, n_primary, errors)
    valid = np.isfinite(fused)
    item = {"interval": str(interval), "stacks": sum(x is not None for x in bands),
            "valid_share": float(valid.mean()),
            "mean_sources": float(count[valid].mean()) if valid.any() else 0.0,
            "shares": value_shares(bands, weights, valid)}
    return fused, count, item, (error[0] if error else None)


def fuse_stacks(primaries, output, weights, auxiliary=None, count_output=None, classes=None,
                class_weights=None, progress=None, errors=None, error_output=None,
                subset_weights=None, error_stacks=None, inverse_variance=False):
    """Fuse velocity stacks into ``output`` (and the contributing-stack counts into
    ``count_output``). ``weights``: array or weight string, primaries then auxiliary.
    ``errors`` (array or comma-separated string, one 1 σ in m/yr per stack in the same order)
    and ``error_output`` write the fused value's 1 σ stack.

    ``classes`` (categorical raster) with ``class_weights`` ({class value: weights}) gives pixels
    of those classes their own weights. ``subset_weights`` ({validity mask: weights} or its
    text, e.g. the calibration's, :func:`format_subset_weights`) gives the pixels where exactly
    such a set of stacks is valid that set's weights (over any other). ``error_stacks`` (one
    1 σ stack path or None per stack, with ``errors``) and ``inverse_variance``: the per-pixel
    errors and weights of the module doc. Stacks in another CRS
    are read with their components turned to the output grid's axes
    (:class:`core.io.reader.StackReader`). Returns a list of per-band dicts ``{interval,
    valid_share, mean_sources}``.
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
    if error_output and errors is None:
        raise InputError("ERRORS: the per-pixel error output needs one error (1 sigma, m/yr) per "
                         "stack.")
    if errors is not None:
        errors = parse_errors(errors, k)
    grid = infos[0].grid
    readers = [StackReader(info, grid) for info in infos]
    error_readers = None
    if error_stacks is not None and any(error_stacks):
        if errors is None:
            raise InputError("ERRORS: per-pixel error stacks are combined with one calibration "
                             "error (1 sigma, m/yr) per stack; give ERRORS.")
        if len(error_stacks) != k:
            raise InputError(f"error_stacks: {len(error_stacks)} error stack(s) for {k} "
                             "stack(s) (SOURCES, then AUXILIARY).")
        error_readers = [None if e is None else StackReader(read_stack_info(e, "error stack"), grid)
                         for e in error_stacks]
    intervals = union_intervals(infos)
    pixel_w = pixel_weights(w, grid, classes, class_weights)
    if isinstance(subset_weights, str):
        subset_weights = parse_subset_weights(subset_weights, k)
    names = ",".join(info.path for info in infos)
    meta = {"WEIGHTS": format_weights(w), "SOURCES": names,
            **({"SUBSET_WEIGHTS": format_subset_weights(subset_weights)} if subset_weights else {}),
            **({"ERROR_STACKS": ",".join(e or "" for e in error_stacks),
                "INVERSE_VARIANCE": str(bool(inverse_variance))} if error_readers else {}),
            "ROLES": ",".join(["primary"] * len(primaries) + (["auxiliary"] if auxiliary else []))}
    summary = []
    inputs = paths + ([classes] if classes else []) + [e for e in error_stacks or () if e]
    to_error, to_stack = error_links(output, error_output) if error_output else ({}, {})
    writer = StackWriter(output, grid, intervals, "fused", infos[0].quantity,
                         dict(meta, **to_error), inputs=inputs)
    err_writer = None
    if error_output:
        err_writer = StackWriter(error_output, grid, intervals, "error", infos[0].quantity,
                                 dict(meta, ERRORS=format_weights(errors), **to_stack),
                                 inputs=inputs + [output])
    counter = None
    if count_output:
        counter = RasterWriter(count_output, grid, len(intervals), [str(iv) for iv in intervals],
                               {"SENSOR": "fused", "QUANTITY": "count", "UNITS": "stacks",
                                "SOURCES": names}, inputs=inputs + [output])
    with all_or_none([writer, counter, err_writer]):
        for b, iv in enumerate(intervals):
            fused, count, item, error = fused_step(readers, iv, pixel_w, len(primaries), errors,
                                                   subset_weights, error_readers, inverse_variance)
            if err_writer is not None:
                err_writer.write(b, error)
            writer.write(b, fused)
            writer.set_band_metadata(b, {"STACKS": item["stacks"],
                                         "VALID_SHARE": f"{item['valid_share']:.4f}",
                                         "MEAN_SOURCES": f"{item['mean_sources']:.3f}",
                                         "VALUE_SHARES": format_weights(item["shares"])})
            if counter is not None:
                counter.write(b + 1, count)
            summary.append(item)
            progress.update((b + 1) / len(intervals))
    return summary
