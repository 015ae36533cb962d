"""Temporal inversion of overlapping velocity pairs into a regular series, many pixels at once.

Model, per pixel and per component (vx, vy; never the speed): the unknowns are the mean
velocities ``v_k`` (m/yr) of the output intervals ``[edge_k, edge_k+1)`` (days). A pair from day
``s`` to day ``e`` measures the displacement over its baseline divided by it, i.e. the
time-weighted mean ``Σ_k a_jk v_k`` with ``a_jk = overlap days of pair j and interval k / (e - s)``
(:func:`design`). Estimate: minimise

    Σ_j w_j (y_j - Σ_k a_jk v_k)²  +  λ² / σ_ref² · Σ_k (v_k+1 - v_k)²

with ``w_j = r_j / σ_j²``: ``σ_j`` the pair's velocity error (m/yr; displacement noise / baseline;
one per pair, or per pair and pixel from its per-vector errors)
and ``r_j`` the robust weight of the pair at that pixel (Tukey's biweight, c = 4.685, or Huber's,
c = 1.345, on the residual in units of ``σ_j`` times one robust scale for the whole batch, so a
pixel whose pairs all disagree loses them all instead of trusting their spread). ``σ_ref`` is the
median pair error, which makes the regularisation coefficient ``λ`` dimensionless: a change of
``σ_ref`` between consecutive intervals costs as much as ``λ²`` pairs off by their error.
``λ`` is chosen by generalised cross-validation (:func:`choose_regularisation`) unless given.

The normal matrix is banded (a pair of at most ``b + 1`` intervals couples intervals at most
``b`` apart): it is assembled for all pixels of a batch by one matrix product, factorised and
solved with the vectorised banded Cholesky of :mod:`core.arrays.banded`. The 1σ error of each
interval is ``sqrt(s² · (N⁻¹)_kk)``: the diagonal of the inverse normal matrix times the variance
factor ``s²`` of the pixel's weighted residuals (shrunk towards 1, the pairs' stated errors, when
few pairs remain). An interval that no kept pair overlaps is empty (NaN): the regularisation
bridges it inside the solve but no value is reported there. A pixel that keeps less than
:data:`MIN_KEPT_SHARE` of its pairs after robust reweighting is empty.
"""

import datetime as dt

import numpy as np
from scipy import sparse

from ..arrays import banded
from ..errors import InputError
from ..io.dates import Interval

ROBUST = ("tukey", "huber", "none")
ROBUST_C = {"tukey": 4.685, "huber": 1.345}
MAX_ITERATIONS = 8
GCV_ITERATIONS = 4  # robust iterations of each candidate scored by GCV
MIN_KEPT_SHARE = 0.5
# GCV candidates of the dimensionless coefficient λ (see the module docstring)
CANDIDATES = tuple(float(x) for x in np.logspace(-1.2, 1.8, 11))
PRIOR_DOF = 4.0  # pseudo-residuals at the stated errors that steady the variance factor
RIDGE = 1e-8  # keeps pixels without any pair factorisable (they are masked anyway)


# ---------------------------------------------------------------------------- time axis

def interval_edges(first, last, spacing_days=None):
    """``(edges, intervals)`` of the output series covering the days ``first``..``last``
    (dates): calendar months, or steps of ``spacing_days`` from ``first``. ``edges`` are date
    ordinals (K + 1), ``intervals`` the bands' :class:`Interval` (inclusive last day)."""
    if spacing_days:
        if spacing_days < 1:
            raise InputError(f"SPACING_DAYS must be at least 1 day; {spacing_days} given.")
        step = int(round(spacing_days))
        count = max(1, -(-((last - first).days + 1) // step))
        edges = [first.toordinal() + k * step for k in range(count + 1)]
    else:
        y, m = first.year, first.month
        edges = []
        while True:
            edges.append(dt.date(y, m, 1).toordinal())
            if edges[-1] > last.toordinal():
                break
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    edges = np.array(edges, np.int64)
    intervals = [Interval(dt.date.fromordinal(int(a)), dt.date.fromordinal(int(b) - 1))
                 for a, b in zip(edges[:-1], edges[1:])]
    return edges, intervals


def design(starts, ends, edges):
    """``A`` (pairs × intervals): the share of each pair's baseline in each interval. ``starts``,
    ``ends`` are date ordinals; a pair covers the days ``start .. end - 1``."""
    s = np.asarray(starts, np.float64)[:, None]
    e = np.asarray(ends, np.float64)[:, None]
    lo, hi = edges[None, :-1].astype(np.float64), edges[None, 1:].astype(np.float64)
    overlap = np.clip(np.minimum(e, hi) - np.maximum(s, lo), 0.0, None)
    return overlap / (e - s)


def bandwidth(A):
    """The half-bandwidth of ``AᵀA``: the most intervals apart two intervals of one pair are."""
    nz = A > 0
    first = nz.argmax(axis=1)
    last = A.shape[1] - 1 - nz[:, ::-1].argmax(axis=1)
    return int(np.max(last - first)) if len(A) else 0


class Design:
    """The design of one inversion: ``A`` and what the batched solve needs from it, as sparse
    matrices (a pair touches a few intervals only).

    ``G`` (``K (b + 1)`` × pairs) holds, per pair, the band entries ``a_jk a_j,k-d`` of its outer
    product, so that the band of ``Aᵀ W A`` for all pixels is one product ``G @ W``; ``reg`` is the
    band of ``DᵀD`` (first differences).
    """

    def __init__(self, A):
        self.A = np.ascontiguousarray(A, np.float64)
        P, K = self.A.shape
        self.K = K
        self.b = bandwidth(self.A)
        w = self.b + 1
        G = np.zeros((K, w, P))
        for d in range(w):
            G[d:, d, :] = (self.A[:, d:] * self.A[:, :K - d]).T
        self.G = sparse.csr_matrix(G.reshape(K * w, P).astype(np.float32))
        self.A_sparse = sparse.csr_matrix(self.A.astype(np.float32))
        self.At_sparse = self.A_sparse.T.tocsr()
        self.touches = sparse.csr_matrix((self.A > 0).T.astype(np.float32))  # K × pairs
        reg = np.zeros((K, w))
        reg[:, 0] = 2.0
        reg[0, 0] = reg[-1, 0] = 1.0
        if K == 1:
            reg[0, 0] = 0.0
        if w > 1:
            reg[1:, 1] = -1.0
        self.reg = reg


def _robust_weights(u, method):
    c = np.float32(ROBUST_C[method])
    with np.errstate(invalid="ignore", divide="ignore"):
        if method == "tukey":
            return np.where(u < c, (1 - (u / c) ** 2) ** 2, np.float32(0))
        return np.where(u <= c, np.float32(1), c / u)


def robust_scale(u):
    """One robust scale of standardised residuals: 1.4826 × their median absolute value (they
    are centred by the fit)."""
    u = u[np.isfinite(u)]
    return max(1.4826 * float(np.median(u)), 1e-6) if u.size else 1.0


def invert_pixels(design_, yx, yy, sigma, lam, sigma_ref, robust="tukey", scale=None,
                  iterations=MAX_ITERATIONS):
    """Invert pairs ``yx``, ``yy`` (pairs × pixels, m/yr, NaN = missing) with errors ``sigma``
    (m/yr: one per pair, or pairs × pixels, each vector's own) and coefficient ``lam``
    (dimensionless).

    ``scale`` fixes the robust scale (else it is estimated from these pixels at each iteration).
    Returns a dict of ``(K, n)`` arrays ``vx``, ``vy``, ``sigma`` (1σ of each component, m/yr;
    NaN where empty) and ``n_pairs`` (kept pairs overlapping each interval), and per pixel
    ``chi2``, ``dof``, ``trace`` (effective parameters), ``kept``, ``valid``; ``weights`` (pairs ×
    pixels, final) and the residuals ``rx``, ``ry`` (NaN where missing). Pair-sized arrays are
    float32, the normal equations float64.
    """
    if robust not in ROBUST:
        raise InputError(f"Unknown robust reweighting '{robust}': use one of {', '.join(ROBUST)}.")
    K, w = design_.K, design_.b + 1
    P, n = yx.shape
    valid = np.isfinite(yx) & np.isfinite(yy)
    inv_sig = (1.0 / np.asarray(sigma, np.float64)).astype(np.float32)
    inv_sig = inv_sig.reshape(P, -1)  # (P, 1) or (P, n)
    base = np.where(valid, inv_sig ** 2, np.float32(0))
    Y = np.empty((P, 2, n), np.float32)
    Y[:, 0] = np.where(valid, yx, 0)
    Y[:, 1] = np.where(valid, yy, 0)
    w_ref = 1.0 / sigma_ref ** 2
    reg = (lam ** 2 * w_ref * design_.reg + RIDGE * w_ref * (np.arange(w) == 0))[:, :, None]
    weight = np.ones_like(base)
    for it in range(iterations + 1):
        W = base * weight
        normal = (design_.G @ W).reshape(K, w, n).astype(np.float64)
        L = banded.cholesky(normal + reg)
        rhs = (design_.At_sparse @ (Y * W[:, None, :]).reshape(P, 2 * n)).reshape(K, 2, n)
        X = banded.solve(L, rhs.astype(np.float64))  # (K, 2, n)
        R = Y - (design_.A_sparse @ X.reshape(K, 2 * n).astype(np.float32)).reshape(P, 2, n)
        u = np.sqrt(0.5 * (R[:, 0] ** 2 + R[:, 1] ** 2)) * inv_sig
        if robust == "none" or it == iterations:
            break
        s = robust_scale(u[valid]) if scale is None else scale
        new = np.where(valid, _robust_weights(u / np.float32(s), robust), np.float32(0))
        changed = np.count_nonzero(np.abs(new - weight) > 0.01)
        weight = new.astype(np.float32, copy=False)
        if changed <= 1e-3 * max(np.count_nonzero(valid), 1):
            break
    W = base * weight
    kept_mask = W > 0
    kept = kept_mask.sum(axis=0)
    n_valid = valid.sum(axis=0)
    Z = banded.inverse_band(L)
    trace = banded.band_dot(Z, normal)
    R[:, :, ~valid.any(axis=0)] = 0
    chi2 = np.einsum("pn,pn->n", W, R[:, 0] ** 2 + R[:, 1] ** 2, dtype=np.float64)
    dof = 2.0 * (kept - trace)
    s2 = (chi2 + 2 * PRIOR_DOF) / (np.maximum(dof, 0.0) + 2 * PRIOR_DOF)
    n_pairs = design_.touches @ kept_mask.astype(np.float32)
    empty = (n_pairs == 0) | ~(kept >= np.maximum(MIN_KEPT_SHARE * n_valid, 1))[None, :]
    empty |= ~np.isfinite(L[:, 0])
    sd = np.sqrt(s2[None, :] * Z[:, 0])
    R[~np.broadcast_to(valid[:, None, :], R.shape)] = np.nan
    return {"vx": np.where(empty, np.nan, X[:, 0]), "vy": np.where(empty, np.nan, X[:, 1]),
            "sigma": np.where(empty, np.nan, sd), "n_pairs": np.where(empty, 0, n_pairs),
            "chi2": chi2, "dof": dof, "trace": trace, "kept": kept, "valid": n_valid,
            "weights": W, "rx": R[:, 0], "ry": R[:, 1]}


def gcv_score(result):
    """Pooled generalised cross-validation score of one solve: ``m · χ² / (m − tr H)²`` over all
    its pixels, ``m`` the number of kept observations (two components per pair)."""
    m = 2.0 * float(result["kept"].sum())
    tr = 2.0 * float(np.nansum(result["trace"]))
    if m - tr <= 0:
        return np.inf
    return m * float(np.nansum(result["chi2"])) / (m - tr) ** 2


def choose_regularisation(design_, yx, yy, sigma, sigma_ref, robust="tukey",
                          candidates=CANDIDATES, progress=None):
    """``(λ, scale, scores)``: the coefficient of the candidates with the lowest pooled GCV score
    over a sample of pixels (pairs × pixels arrays, as :func:`invert_pixels`), the robust scale
    found with it, and every candidate's score."""
    if not np.isfinite(yx).any():
        raise InputError("No pixel has valid pair values to choose the regularisation from.")
    scores = []
    for i, lam in enumerate(candidates):
        res = invert_pixels(design_, yx, yy, sigma, lam, sigma_ref, robust,
                            iterations=GCV_ITERATIONS)
        scores.append(gcv_score(res))
        if progress is not None:
            progress.update((i + 1) / len(candidates))
    best = int(np.argmin(scores))
    lam = candidates[best]
    res = invert_pixels(design_, yx, yy, sigma, lam, sigma_ref, robust)
    u = np.sqrt(0.5 * (res["rx"] ** 2 + res["ry"] ** 2)) / np.asarray(sigma).reshape(
        len(yx), -1)
    return lam, robust_scale(u[np.isfinite(u)]), list(zip(candidates, scores))
