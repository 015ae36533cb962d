"""Symmetric positive-definite banded systems, many at once (one per pixel), vectorised.

A batch of ``n`` matrices of order ``K`` and half-bandwidth ``b`` is stored in lower band form
``band[k, d, p] = M_p[k, k - d]`` for ``d = 0..b`` (entries with ``k - d < 0`` are ignored), shape
``(K, b + 1, n)``: the pixel axis is last and contiguous, so every step of the recursions below
is one numpy operation over all pixels. Loops run over the ``K × b`` band entries, never over
pixels; the cost per pixel is ``O(K b²)`` instead of ``O(K³)`` for a dense factorisation.

A matrix that is not positive definite (a pixel without data and no regularisation) gives NaN
for that pixel only; callers mask such pixels.
"""

import numpy as np


def cholesky(band):
    """The Cholesky factor ``L`` (``M = L Lᵀ``) of each matrix, in the same lower band form."""
    K, w, _ = band.shape
    b = w - 1
    L = np.zeros_like(band)
    with np.errstate(invalid="ignore", divide="ignore"):
        for k in range(K):
            m = min(k, b)
            s = band[k, 0] - np.einsum("dp,dp->p", L[k, 1:m + 1], L[k, 1:m + 1])
            L[k, 0] = np.sqrt(np.where(s > 0, s, np.nan))
            for i in range(k + 1, min(k + b, K - 1) + 1):
                d = i - k
                # L[i, j] L[k, j] over the columns j < k both rows reach: j >= i - b
                m = min(k, b - d)
                t = band[i, d] - np.einsum("dp,dp->p", L[i, d + 1:d + 1 + m], L[k, 1:1 + m])
                L[i, d] = t / L[k, 0]
    return L


def solve(L, rhs):
    """Solve ``M x = rhs`` from the factor of :func:`cholesky`; ``rhs`` is ``(K, n)`` or
    ``(K, r, n)`` (``r`` right-hand sides per pixel)."""
    K, w = L.shape[:2]
    b = w - 1
    y = np.empty_like(rhs)
    for k in range(K):  # forward: L y = rhs
        acc = rhs[k].copy()
        for d in range(1, min(k, b) + 1):
            acc -= L[k, d] * y[k - d]
        y[k] = acc / L[k, 0]
    x = np.empty_like(rhs)
    for k in range(K - 1, -1, -1):  # backward: Lᵀ x = y
        acc = y[k].copy()
        for d in range(1, min(K - 1 - k, b) + 1):
            acc -= L[k + d, d] * x[k + d]
        x[k] = acc / L[k, 0]
    return x


def inverse_band(L):
    """The entries of ``M⁻¹`` inside the band (same lower band form), from the factor, by the
    Takahashi recursion: the diagonal gives the variances of the solution, the band is enough for
    traces such as ``tr(M⁻¹ B)`` with ``B`` of the same bandwidth."""
    K, w, n = L.shape
    b = w - 1
    Z = np.zeros_like(L)

    def z(i, j):  # Z[i, j] for |i - j| <= b, from the lower band
        return Z[i, i - j] if i >= j else Z[j, j - i]

    with np.errstate(invalid="ignore", divide="ignore"):
        for j in range(K - 1, -1, -1):
            top = min(j + b, K - 1)
            inv = 1.0 / L[j, 0]
            for i in range(top, j - 1, -1):
                acc = np.zeros(n, L.dtype)
                for m in range(j + 1, top + 1):
                    acc += L[m, m - j] * z(m, i)
                value = ((inv if i == j else 0.0) - acc) * inv
                Z[i, i - j] = value
    return Z


def band_dot(a, b):
    """``Σ_kl A[k, l] B[k, l]`` per pixel for two symmetric matrices in lower band form (the
    off-diagonal entries count twice)."""
    total = np.einsum("kdp,kdp->p", a[:, 1:], b[:, 1:])
    return 2.0 * total + np.einsum("kp,kp->p", a[:, 0], b[:, 0])
