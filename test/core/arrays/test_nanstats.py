"""NaN-aware statistics of the arrays kernel."""

import numpy as np
import pytest

from glacier_velocity.core.arrays import nanstats as N


@pytest.mark.parametrize("k", [2, 5, 8, 9, 24])
def test_nanmedian_matches_numpy(k):
    rng = np.random.default_rng(k)
    stack = rng.normal(size=(k, 30, 40)).astype(np.float32)
    stack[rng.random(stack.shape) < 0.3] = np.nan
    stack[:, 0, 0] = np.nan
    stack[:, 0, 1] = np.nan
    stack[k // 2, 0, 1] = 1.5  # one valid value
    ours, n = N.nanmedian0(stack)
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        ref = np.nanmedian(stack, axis=0)
    np.testing.assert_allclose(ours, ref, rtol=1e-6)
    assert np.isnan(ours[0, 0]) and n[0, 0] == 0 and ours[0, 1] == 1.5


@pytest.mark.parametrize("k", [8, 9, 6])
def test_sorting_networks_sort_every_input(k):
    """0-1 principle: a network that sorts every 0/1 sequence sorts everything."""
    bits = ((np.arange(2 ** k)[:, None] >> np.arange(k)) & 1).T.astype(np.float32)
    x = list(bits)
    for i, j in N.sorting_network(k):
        x[i], x[j] = np.minimum(x[i], x[j]), np.maximum(x[i], x[j])
    assert np.all(np.diff(np.stack(x), axis=0) >= 0)


def test_nmad_is_sigma_for_gaussian_values_and_ignores_outliers():
    rng = np.random.default_rng(3)
    x = rng.normal(5.0, 2.0, 200000)
    assert N.nmad(x) == pytest.approx(2.0, rel=0.01)
    x[:20000] = 1e4  # 10 % gross outliers: σ becomes ~3000, the NMAD 2.29
    assert N.nmad(x) == pytest.approx(2.0, rel=0.2)
    assert N.nmad(np.array([1.0, 2.0, 4.0]), centre=2.0) == pytest.approx(1.4826)
