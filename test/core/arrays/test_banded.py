"""The batched banded SPD kernel against dense numpy on random banded matrices."""

import numpy as np

from glacier_velocity.core.arrays import banded


def random_batch(K=11, b=3, n=4, seed=0):
    rng = np.random.default_rng(seed)
    dense = []
    band = np.zeros((K, b + 1, n))
    for p in range(n):
        A = np.zeros((3 * K, K))
        for r in A:
            s = rng.integers(0, K)
            r[s:s + b + 1] = rng.random(min(b + 1, K - s))
        M = A.T @ A + 0.05 * np.eye(K)
        dense.append(M)
        for k in range(K):
            for d in range(min(k, b) + 1):
                band[k, d, p] = M[k, k - d]
    return dense, band


def test_solve_inverse_band_and_trace_match_dense():
    dense, band = random_batch()
    L = banded.cholesky(band)
    rhs = np.random.default_rng(1).normal(size=(band.shape[0], 2, band.shape[2]))
    x = banded.solve(L, rhs)
    Z = banded.inverse_band(L)
    K, w, n = band.shape
    for p, M in enumerate(dense):
        inv = np.linalg.inv(M)
        np.testing.assert_allclose(M @ x[:, :, p], rhs[:, :, p], atol=1e-9)
        for k in range(K):
            for d in range(min(k, w - 1) + 1):
                assert abs(Z[k, d, p] - inv[k, k - d]) < 1e-9
        half = band[:, :, p:p + 1] * 0.5  # another symmetric banded matrix
        assert np.isclose(banded.band_dot(Z[:, :, p:p + 1], half)[0], np.trace(inv @ M) / 2)


def test_singular_pixel_is_nan_and_others_unharmed():
    dense, band = random_batch(n=3)
    band[:, :, 1] = 0.0  # a pixel without any data
    L = banded.cholesky(band)
    x = banded.solve(L, np.ones((band.shape[0], band.shape[2])))
    assert np.isnan(x[:, 1]).all()
    np.testing.assert_allclose(dense[0] @ x[:, 0], 1.0, atol=1e-9)
