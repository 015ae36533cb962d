"""Calibration of the fusion weights against a UAV velocity stack (the reference).

Band matching: each UAV band (a survey interval) is paired, in every source stack, with the band
that shares the most days with it, provided the shared days are at least half of the UAV
interval's days (:func:`core.io.dates.match_intervals`; ties go to the band whose middle is nearest).
A UAV band without such a partner in every source is left out of the calibration.

Harmonisation: every matched source band is resampled onto the UAV grid with nearest neighbour
(:class:`core.io.reader.StackReader`: a plain read when the grids are the same; vx/vy stacks in
another CRS turned to the UAV grid's axes), band by band, so no value is smoothed or invented.

Weights: the samples are all (pixel, UAV band) where the UAV and every source are valid. The
least-squares weights solve ``min Σ (V_uav − Σ_k w_k V_k)²`` subject to ``w_k ≥ 0`` and
``Σ w_k = 1`` exactly (:func:`simplex_lsq`, a primal active-set method on the KKT system). The
inverse-variance option sets ``w_k ∝ 1 / mean((V_k − V_uav)²)``: the residual variance about the
UAV, bias included, so a biased sensor is down-weighted like a noisy one.

Statistics of a source (or of the weighted combination) against the UAV, on the same samples:
``n``; ``bias`` = mean(V − V_uav); ``rmse``; ``r2`` = squared Pearson correlation; ``slope`` of
the ordinary least-squares line V = a + slope · V_uav (1 when the source does not stretch speeds).
All velocities in m/yr.
"""

import os
from dataclasses import dataclass, field

import numpy as np

from ..io.dates import match_intervals
from ..io.names import unique_names
from ..io.pixel_series import (CALIBRATION_COLUMNS, CLASS_COLUMN, COMBINED, SAMPLE_COLUMNS,
                               sample_column)
from ..errors import InputError
from .weighted import format_subset_weights, format_weights, stack_infos
from ..progress import ensure
from ..io.reader import GridReader, StackReader

METHODS = ("least_squares", "inverse_variance")
MIN_SAMPLES_PER_WEIGHT = 10  # fewer matched samples than this per weight is refused
MAX_SAMPLE_ROWS = 20000


def simplex_lsq(X, y, tol=1e-12, max_iter=None):
    """``argmin ||y − X w||²`` subject to ``w ≥ 0`` and ``Σ w = 1`` (float64 weights).

    Primal active-set method for the convex quadratic program (Nocedal & Wright, Algorithm
    16.3): starts at the best single column (a feasible vertex), solves the KKT system of the
    equality-constrained problem on the free weights, steps to the nearest blocking bound, and
    frees the bound with the most negative Lagrange multiplier until all are non-negative.
    Singular systems (collinear sources) are solved in the least-squares sense.
    """
    X = np.asarray(X, np.float64)
    y = np.asarray(y, np.float64)
    n, k = X.shape
    scale = n * max(float(np.mean(y ** 2)), 1e-30)  # unit-free tolerances
    Q = X.T @ X / scale
    c = X.T @ y / scale
    w = np.zeros(k)
    w[int(np.argmin(np.diag(Q) - 2 * c))] = 1.0
    active = w == 0
    for _ in range(max_iter or 20 * k + 20):
        free = np.flatnonzero(~active)
        g = Q @ w - c
        m = free.size
        kkt = np.zeros((m + 1, m + 1))
        kkt[:m, :m] = Q[np.ix_(free, free)]
        kkt[:m, m] = kkt[m, :m] = 1.0
        rhs = np.concatenate([-g[free], [0.0]])
        p = np.linalg.lstsq(kkt, rhs, rcond=None)[0][:m]
        if np.max(np.abs(p)) <= 1e-10:
            nu = float(np.mean(g[free]))  # multiplier of Σw = 1
            lam = np.where(active, g - nu, np.inf)  # multipliers of the active bounds w_i >= 0
            i = int(np.argmin(lam))
            if lam[i] >= -tol:
                return w
            active[i] = False
            continue
        alpha, block = 1.0, -1
        for j, pj in zip(free, p):
            if pj < 0 and -w[j] / pj < alpha:
                alpha, block = -w[j] / pj, j
        w[free] += alpha * p
        if block >= 0:
            w[block] = 0.0
            active[block] = True
        w = np.maximum(w, 0.0)
        w /= w.sum()
    raise RuntimeError("The constrained least-squares weights did not converge.")


def inverse_variance_weights(X, y):
    """Weights ∝ 1 / mean((X_k − y)²), normalised to sum 1."""
    mse = np.mean((np.asarray(X, np.float64) - np.asarray(y, np.float64)[:, None]) ** 2, axis=0)
    inv = 1.0 / np.maximum(mse, 1e-12)
    return inv / inv.sum()


def subset_weights(X, y, n_primary, solve=simplex_lsq):
    """The weights to use where only some sources are valid: for every set of sources holding
    at least one primary (the first ``n_primary`` columns of ``X``), the weights ``solve`` finds
    on those columns alone (zero for the others), keyed by the set's validity mask (a tuple of
    bools). Where the calibrated sensors are all valid this is the global solution; where the
    best of them is missing (clouds over Sentinel-2), the others get the weights that fit the
    UAV best without it, instead of the global weights renormalised (a sensor the global fit
    gave no weight because a sharper one was there would otherwise never contribute)."""
    k = X.shape[1]
    out = {}
    for code in range(1, 2 ** k):
        mask = tuple(bool(code >> j & 1) for j in range(k))
        if not any(mask[:n_primary]):
            continue
        cols = [j for j in range(k) if mask[j]]
        w = np.zeros(k)
        w[cols] = solve(X[:, cols], y)
        out[mask] = w
    return out


def fit_stats(values, reference):
    """``{n, bias, rmse, r2, slope}`` of ``values`` against ``reference`` (1-D, both valid)."""
    v = np.asarray(values, np.float64)
    u = np.asarray(reference, np.float64)
    n = int(v.size)
    if n == 0:
        return {"n": 0, "bias": np.nan, "rmse": np.nan, "r2": np.nan, "slope": np.nan}
    d = v - u
    du, dv = u - u.mean(), v - v.mean()
    suu, svv, suv = float(du @ du), float(dv @ dv), float(du @ dv)
    r2 = suv ** 2 / (suu * svv) if suu > 0 and svv > 0 else np.nan
    slope = suv / suu if suu > 0 else np.nan
    return {"n": n, "bias": float(d.mean()), "rmse": float(np.sqrt(np.mean(d ** 2))),
            "r2": float(r2), "slope": float(slope)}


@dataclass
class Samples:
    """Matched samples: UAV band interval, UAV-grid row/col, UAV value, source values (n, k)."""

    interval: np.ndarray
    row: np.ndarray
    col: np.ndarray
    uav: np.ndarray
    values: np.ndarray
    classes: np.ndarray = None  # class value per sample (NaN outside any class), or None


@dataclass
class Calibration:
    """Result of :func:`calibrate`: weights, statistics and matched samples."""

    names: list
    sensors: list
    roles: list
    method: str
    weights: np.ndarray
    samples: Samples
    matches: list  # (UAV interval, [matched source interval per source])
    class_weights: dict = field(default_factory=dict)  # class value -> weights
    class_counts: dict = field(default_factory=dict)  # class value -> samples (incl. too few)
    subset_weights: dict = field(default_factory=dict)  # valid-set mask (tuple) -> weights

    @property
    def weight_string(self):
        return format_weights(self.weights)

    @property
    def error_string(self):
        """Each source's RMSE against the UAV (m/yr, bias included), comma-separated in weight
        order: the 1 σ per stack that the fusion propagates into its per-pixel error."""
        s = self.samples
        return format_weights([fit_stats(s.values[:, k], s.uav)["rmse"]
                               for k in range(len(self.names))])

    def stats_rows(self, weights=None, mask=None, label=None):
        """One row per source then 'combined' (see the module doc for the statistics)."""
        w = self.weights if weights is None else weights
        s = self.samples
        sel = slice(None) if mask is None else mask
        u, X = s.uav[sel], s.values[sel]
        rows = []
        for k, name in enumerate(self.names):
            rows.append(dict(source=name, sensor=self.sensors[k], role=self.roles[k],
                             weight=float(w[k]), **fit_stats(X[:, k], u)))
        rows.append(dict(source=COMBINED, sensor="", role=COMBINED, weight=float(np.sum(w)),
                         **fit_stats(X @ w, u)))
        if label is not None:
            for r in rows:
                r[CLASS_COLUMN] = label
        return rows

    def table_columns(self):
        """The calibration table's columns (io.pixel_series's format, which the dock reads)."""
        return list(CALIBRATION_COLUMNS) + ([CLASS_COLUMN] if self.samples.classes is not None
                                            else [])

    def table_rows(self):
        """The calibration table: global rows, then per-class rows when classes were given."""
        if self.samples.classes is None:
            return self.stats_rows()
        rows = self.stats_rows(label="all")
        for value, w in self.class_weights.items():
            rows += self.stats_rows(w, self.samples.classes == value, label=_class_label(value))
        return rows

    def sample_rows(self, max_rows=MAX_SAMPLE_ROWS, seed=0):
        """Matched samples as table rows (a seeded random subsample when there are more)."""
        s = self.samples
        idx = np.arange(s.uav.size)
        if idx.size > max_rows:
            idx = np.sort(np.random.default_rng(seed).choice(idx.size, max_rows, replace=False))
        combined = s.values @ self.weights
        rows = []
        for i in idx:
            row = dict(zip(SAMPLE_COLUMNS, (str(s.interval[i]), int(s.row[i]), int(s.col[i]),
                                            float(s.uav[i]))))
            for k, name in enumerate(self.names):
                row[sample_column(name)] = float(s.values[i, k])
            row[sample_column(COMBINED)] = float(combined[i])
            rows.append(row)
        return rows

    def sample_columns(self):
        return (list(SAMPLE_COLUMNS) + [sample_column(n) for n in self.names]
                + [sample_column(COMBINED)])

    def subset_weight_string(self):
        """The weights of every set of valid sources (:func:`subset_weights`) as the fusion's
        SUBSET_WEIGHTS text (:func:`core.fusion.weighted.format_subset_weights`)."""
        return format_subset_weights(self.subset_weights)

    def class_weight_string(self):
        """Per-class weights as 'class:w1,w2,...;class:...' (classes with enough samples)."""
        return ";".join(f"{_class_label(v)}:{format_weights(w)}"
                        for v, w in self.class_weights.items())


def _class_label(value):
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def collect_samples(reference, sources, classes=None, progress=None):
    """Match UAV bands with source bands and gather the samples valid in the UAV and every source.

    Returns ``(samples, matches, infos)`` (infos: the sources' :class:`StackInfo`);
    :class:`InputError` when the stacks hold different quantities (v, vx, vy), no UAV band
    overlaps a band of every source in time, or no pixel is valid in the UAV and every source.
    """
    progress = ensure(progress)
    ref, *infos = stack_infos([reference] + list(sources),
                              ["UAV reference stack"] + ["source stack"] * len(sources))
    idx = [match_intervals(ref.intervals, info.intervals) for info in infos]
    for info, m in zip(infos, idx):
        if all(j < 0 for j in m):
            raise InputError(
                f"No band of '{info.path}' ({info.intervals[0]} .. {info.intervals[-1]}) overlaps "
                f"a UAV interval of '{reference}' ({', '.join(map(str, ref.intervals))}) for at "
                "least half of the UAV interval: no temporal overlap to calibrate on.")
    bands = [i for i in range(ref.count) if all(m[i] >= 0 for m in idx)]
    if not bands:
        raise InputError(f"No UAV interval of '{reference}' is matched by a band of every source "
                         "(largest overlap, at least half the UAV interval): no common dates.")
    cls = None
    if classes:
        cls = GridReader(classes, ref.grid, "class raster").read(1)
    uav = StackReader(ref, ref.grid)
    readers = [StackReader(info, ref.grid) for info in infos]
    parts = {k: [] for k in ("interval", "row", "col", "uav", "values", "classes")}
    matches = []
    for b_i, i in enumerate(bands):
        u = uav.band(i + 1)
        ok = np.isfinite(u)
        vals = []
        for reader, m in zip(readers, idx):
            if not ok.any():
                break
            v = reader.band(m[i] + 1)
            ok &= np.isfinite(v)
            vals.append(v)
        matches.append((ref.intervals[i], [info.intervals[m[i]] for info, m in zip(infos, idx)]))
        progress.update((b_i + 1) / len(bands))
        if not ok.any():
            continue
        r, c = np.nonzero(ok)
        parts["interval"].append(np.full(r.size, str(ref.intervals[i]), object))
        parts["row"].append(r)
        parts["col"].append(c)
        parts["uav"].append(u[ok].astype(np.float64))
        parts["values"].append(np.stack([v[ok] for v in vals], axis=1).astype(np.float64))
        if cls is not None:
            parts["classes"].append(cls[ok].astype(np.float64))
    if not parts["uav"]:
        raise InputError(f"No pixel is valid in the UAV stack '{reference}' and in every source "
                         "on the matched dates: the stacks do not overlap in space (or are all "
                         "NoData there).")
    samples = Samples(*(np.concatenate(parts[k]) for k in ("interval", "row", "col", "uav",
                                                            "values")),
                      classes=np.concatenate(parts["classes"]) if cls is not None else None)
    return samples, matches, infos


# sensors that are never a calibration reference: a stack of one of them given as REFERENCE is
# almost surely a dialog's default (the first raster of the project), not the UAV stack
SATELLITE_SENSORS = ("landsat", "sentinel1", "sentinel2")


def check_reference(reference, sources):
    """Refuse a REFERENCE that is one of the sources or a satellite stack (SENSOR metadata)."""
    same = [s for s in sources if os.path.realpath(s) == os.path.realpath(reference)]
    if same:
        raise InputError(f"REFERENCE: '{reference}' is also one of the stacks to weight: give the "
                         "UAV velocity stack as REFERENCE.")
    sensor = stack_infos([reference], "REFERENCE")[0].sensor.strip().lower()
    if sensor in SATELLITE_SENSORS:
        raise InputError(f"REFERENCE: '{reference}' is a {sensor} stack (SENSOR={sensor}): the "
                         "reference of the calibration is the UAV velocity stack.")


def calibrate(reference, primaries, auxiliary=None, method="least_squares", classes=None,
              progress=None):
    """Calibrate fusion weights on a UAV stack; weights are in ``primaries`` order then auxiliary.

    ``classes`` is an optional categorical raster (any grid/CRS; NaN or NoData = no class): one
    weight vector per class value with enough samples is then solved as well.
    """
    if method not in METHODS:
        raise InputError(f"Unknown calibration method '{method}': use one of {', '.join(METHODS)}.")
    primaries = list(primaries)
    if not primaries:
        raise InputError("SOURCES: give at least one primary velocity stack.")
    sources = primaries + ([auxiliary] if auxiliary else [])
    check_reference(reference, sources)
    samples, matches, infos = collect_samples(reference, sources, classes, progress)
    k = len(sources)
    need = MIN_SAMPLES_PER_WEIGHT * k
    if samples.uav.size < need:
        raise InputError(f"Only {samples.uav.size} pixels are valid in the UAV stack and every "
                         f"source on matched dates; at least {need} are needed for {k} weights.")
    solve = simplex_lsq if method == "least_squares" else inverse_variance_weights
    weights = solve(samples.values, samples.uav)
    class_weights, class_counts = {}, {}
    if samples.classes is not None:
        for value in np.unique(samples.classes[np.isfinite(samples.classes)]):
            sel = samples.classes == value
            class_counts[float(value)] = int(sel.sum())
            if sel.sum() >= need:
                class_weights[float(value)] = solve(samples.values[sel], samples.uav[sel])
    roles = ["primary"] * len(primaries) + (["auxiliary"] if auxiliary else [])
    subsets = subset_weights(samples.values, samples.uav, len(primaries), solve)
    return Calibration(unique_names(sources), [i.sensor for i in infos], roles, method, weights,
                       samples, matches, class_weights, class_counts, subsets)
