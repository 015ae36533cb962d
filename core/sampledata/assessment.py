"""Products of the chain against a sample scene's truth: the numbers issue 15's targets are about.

Every function reads GeoTIFF stacks (m/yr) and compares them, month by month (bands matched by
interval), with the scene's true monthly speed stack on a pixel mask (glaciers, stable ground).
Used by the demo, the chain benchmark and the tests, so that all of them report the same figures.
"""

import numpy as np

from ..io.products import read_stack

FAST_ICE = 100.0  # m/yr: "fast ice" of the gap-filling targets


def aligned(path, truth_info, truth):
    """``(info, data, true)`` of a stack and the truth on its months (matched by interval)."""
    info, data = read_stack(path)
    idx = [truth_info.intervals.index(iv) for iv in info.intervals]
    return info, data, truth[idx]


def errors_on(data, true, mask):
    """Figures of ``data − true`` on the pixel-months of ``mask`` (2-D or 3-D) where data is
    valid: {'rmse', 'bias', 'share' (valid share of the mask's pixel-months), 'n'}."""
    m = np.broadcast_to(mask, data.shape)
    ok = np.isfinite(data) & m
    err = data[ok] - true[ok]
    if err.size == 0:
        return {"rmse": float("nan"), "bias": float("nan"), "share": 0.0, "n": 0}
    return {"rmse": float(np.sqrt(np.mean(err ** 2))), "bias": float(np.mean(err)),
            "share": float(ok.sum() / max(m.sum(), 1)), "n": int(ok.sum())}


def against_truth(path, truth_info, truth, mask):
    """:func:`errors_on` for the stack at ``path``."""
    _, data, true = aligned(path, truth_info, truth)
    return errors_on(data, true, mask)


def fills(fused, filled, true, aux, glacier, fast=FAST_ICE):
    """The gap fills alone (valid after gap filling, not before) on the glaciers, beside the raw
    auxiliary (Sentinel-1) values they were made from: {'n', 'rmse', 'bias', 'fast_n',
    'fast_rmse', 'fast_bias', 'fast_rel_bias' (mean error / mean true speed), 'aux_rmse',
    'aux_fast_rmse'} — the fast ones on ice faster than ``fast`` m/yr."""
    new = np.broadcast_to(glacier, true.shape) & np.isnan(fused) & np.isfinite(filled)
    err = filled[new] - true[new]
    fastm = true[new] > fast
    aux_err = aux[new] - true[new]
    out = {"n": int(new.sum())}
    if out["n"] == 0:
        return out
    out.update(rmse=float(np.sqrt(np.mean(err ** 2))), bias=float(np.mean(err)),
               aux_rmse=float(np.sqrt(np.nanmean(aux_err ** 2))), fast_n=int(fastm.sum()))
    if fastm.any():
        out.update(fast_rmse=float(np.sqrt(np.mean(err[fastm] ** 2))),
                   fast_bias=float(np.mean(err[fastm])),
                   fast_rel_bias=float(np.mean(err[fastm]) / np.mean(true[new][fastm])),
                   aux_fast_rmse=float(np.sqrt(np.nanmean(aux_err[fastm] ** 2))))
    return out


def all_valid(stacks, true, glacier):
    """Mask of the glacier pixel-months where every stack of ``stacks`` is valid."""
    ok = np.broadcast_to(glacier, true.shape).copy()
    for s in stacks:
        ok &= np.isfinite(s)
    return ok


def annual_amplitude(series, t):
    """Amplitude (m/yr) of the annual sinusoid fitted with a mean and a linear trend to
    ``series`` at decimal years ``t`` (NaN steps left out)."""
    ok = np.isfinite(series)
    a = np.column_stack([np.ones(ok.sum()), t[ok] - t.mean(), np.sin(2 * np.pi * t[ok]),
                         np.cos(2 * np.pi * t[ok])])
    coef = np.linalg.lstsq(a, series[ok], rcond=None)[0]
    return float(np.hypot(coef[2], coef[3]))


def seasonal_amplitudes(data, true, labels, intervals):
    """{glacier id: (amplitude of the product, true amplitude)} of each glacier's mean speed
    series (m/yr), the product's means over its valid pixels, the truth's over the whole glacier."""
    from ..io.dates import decimal_year

    t = np.array([decimal_year(iv.start) + iv.days / 730.5 for iv in intervals])
    out = {}
    for gid in np.unique(labels[labels > 0]):
        on = labels == gid
        prod = np.array([np.nanmean(b[on]) if np.isfinite(b[on]).any() else np.nan
                         for b in data])
        tru = np.array([b[on].mean() for b in true])
        out[int(gid)] = (annual_amplitude(prod, t), annual_amplitude(tru, t))
    return out


def sigma_coverage(data, sigma, true, mask, z=1.96):
    """Share of the ``mask`` pixel-months (where data and sigma are valid) whose truth lies
    within ``z`` sigma of the product, and their number."""
    m = np.broadcast_to(mask, data.shape) & np.isfinite(data) & np.isfinite(sigma)
    inside = np.abs(data[m] - true[m]) <= z * sigma[m]
    return (float(inside.mean()) if inside.size else float("nan")), int(m.sum())
