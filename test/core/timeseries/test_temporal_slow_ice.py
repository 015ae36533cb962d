"""The full model's Sentinel-1 temporal filter (MIN_REFERENCE 60 m/yr, scripts/build_models.py):
on slow ice a SAR speed's noise exceeds half the reference, so the 0.5-1.5 x test removes correct
values there; left untested below 60 m/yr they are kept, and outliers on fast ice still go."""

import numpy as np

from glacier_velocity.core.timeseries.temporal import temporal_filter


def test_slow_ice_keeps_its_noisy_but_correct_values():
    rng = np.random.default_rng(1)
    months, n = 36, 2000
    years = np.repeat([2015, 2016, 2017], 12)
    true = np.where(np.arange(n) < n // 2, 30.0, 300.0)  # slow margin, fast trunk (m/yr)
    sigma = 25.0 / np.sqrt(2)  # Sentinel-1-like, per component
    v = np.hypot(true + rng.normal(0, sigma, (months, n)), rng.normal(0, sigma, (months, n)))
    v[5, n // 2:] *= 3.0  # one gross outlier month on the fast ice
    stack = v[:, None, :].astype(np.float32)
    slow, fast = slice(0, n // 2), slice(n // 2, n)
    _, removed = temporal_filter(stack, years)
    assert removed[:, 0, slow].mean() > 0.2  # a quarter of the correct slow values lost
    _, floored = temporal_filter(stack, years, min_reference=60.0)  # removed with the floor
    assert not floored[:, 0, slow].any()
    assert floored[5, 0, fast].all()  # the fast ice's outliers are still removed
    assert floored[:, 0, fast].mean() == removed[:, 0, fast].mean()
