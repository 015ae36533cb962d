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


def trend_classes(rows, glaciers):
    """{glacier id: (class found, class expected, right)} of the glacier trend table ``rows``
    (dicts with 'id' and 'class', e.g. read from glaciertrend's OUTPUT_TABLE) against the scene's
    glacier records (manifest 'glaciers': 'gid', 'expected_class'). 'accelerating' matches
    'significantly accelerating' (and so on); glaciers missing from the table (below MIN_AREA)
    are left out."""
    expected = {int(g["gid"]): g["expected_class"] for g in glaciers}
    out = {}
    for r in rows:
        gid = int(float(r["id"]))
        if gid in expected:
            found = r["class"]
            right = (found == expected[gid] if expected[gid].startswith("no ")
                     else found == f"significantly {expected[gid]}")
            out[gid] = (found, expected[gid], right)
    return out


def assess_chain(truth_path, labels, stacks, fused, filled, aux, filled_error=None,
                 trend_rows=None, glaciers=None):
    """Issue 15's figures of one chain run against the truth.

    ``stacks``: {sensor: monthly stack path} (each judged on its own valid pixels); ``fused``,
    ``filled`` (gap-filled), ``aux`` (the Sentinel-1 stack the fills were made from) and
    ``filled_error`` (its 1 σ stack) paths; ``labels`` the glacier ids on the truth grid.
    Returns a dict: 'sensors' {sensor: errors}, 'fused', 'filled' (errors), 'all_valid'
    {product: rmse on the pixel-months where every sensor is valid}, 'fills' (:func:`fills`),
    'amplitudes' {gid: (product, truth)}, 'sigma_coverage' (share, n) on the glaciers, and
    with ``trend_rows`` (the glacier trend table) and ``glaciers`` (the manifest's records)
    'trend_classes' (:func:`trend_classes`).
    """
    tinfo, truth = read_stack(truth_path)
    glacier = labels > 0
    out = {"sensors": {s: against_truth(p, tinfo, truth, glacier) for s, p in stacks.items()}}
    info, f, true = aligned(fused, tinfo, truth)
    g = read_stack(filled)[1]
    a = aligned(aux, tinfo, truth)[1] if aux else None
    out["fused"], out["filled"] = errors_on(f, true, glacier), errors_on(g, true, glacier)
    sensor_data = {s: aligned(p, tinfo, truth)[1] for s, p in stacks.items()}
    if all(d.shape == true.shape for d in sensor_data.values()):
        every = all_valid(sensor_data.values(), true, glacier)
        out["all_valid"] = {k: errors_on(d, true, every)["rmse"]
                            for k, d in dict(sensor_data, filled=g).items()}
        out["all_valid_n"] = int(every.sum())
    if a is not None and a.shape == true.shape:
        out["fills"] = fills(f, g, true, a, glacier)
    out["amplitudes"] = seasonal_amplitudes(g, true, labels, info.intervals)
    if filled_error:
        out["sigma_coverage"] = sigma_coverage(g, read_stack(filled_error)[1], true, glacier)
    if trend_rows is not None and glaciers is not None:
        out["trend_classes"] = trend_classes(trend_rows, glaciers)
    return out


def format_assessment(res, names=None):
    """Markdown lines of :func:`assess_chain`'s figures beside issue 15's targets."""
    names = names or {}
    lines = ["| product | RMSE on glaciers (m/yr) | bias | glacier pixel-months valid |",
             "|---|---|---|---|"]
    for s, e in res["sensors"].items():
        lines.append(f"| {names.get(s, s)} | {e['rmse']:.1f} | {e['bias']:+.1f} | "
                     f"{100 * e['share']:.1f} % |")
    for label, key in (("fused", "fused"), ("fused + gap-filled", "filled")):
        e = res[key]
        lines.append(f"| **{label}** | {e['rmse']:.1f} | {e['bias']:+.1f} | "
                     f"{100 * e['share']:.1f} % |")
    best = min(res["sensors"], key=lambda s: res["sensors"][s]["rmse"])
    lines += ["", f"Best single sensor: {names.get(best, best)} ({res['sensors'][best]['rmse']:.1f} "
              f"m/yr on its own valid pixels); fused + gap-filled {res['filled']['rmse']:.1f} "
              "(target: at most the best sensor's)."]
    if "all_valid" in res:
        av = res["all_valid"]
        best_av = min(v for k, v in av.items() if k != "filled")
        lines.append(f"On the {res['all_valid_n']} glacier pixel-months where every sensor is "
                     "valid: " + ", ".join(f"{names.get(k, k)} {v:.1f}" for k, v in av.items())
                     + f" m/yr: {100 * (1 - av['filled'] / best_av):.0f} % below the best sensor "
                     "(target ≥ 15 %).")
    lines.append(f"Glacier coverage after gap filling {100 * res['filled']['share']:.1f} % "
                 "(target ≥ 97 %).")
    fl = res.get("fills", {})
    if fl.get("n"):
        lines.append(f"Fills alone: {fl['n']} glacier pixel-months, RMSE {fl['rmse']:.1f} m/yr, "
                     f"mean error {fl['bias']:+.1f} (raw Sentinel-1 there {fl['aux_rmse']:.1f})."
                     + (f" On ice faster than {FAST_ICE:g} m/yr ({fl['fast_n']}): mean error "
                        f"{fl['fast_bias']:+.1f} m/yr = {100 * fl['fast_rel_bias']:+.1f} % of the "
                        f"true speed (target within ±3 %), RMSE {fl['fast_rmse']:.1f} against raw "
                        f"Sentinel-1 {fl['aux_fast_rmse']:.1f} (target: at most)."
                        if fl.get("fast_n") else ""))
    amps = {gid: pt for gid, pt in res["amplitudes"].items() if pt[1] > 0}
    within = sum(abs(p / t - 1) <= 0.1 for p, t in amps.values())
    lines.append(f"Seasonal amplitude within 10 % of the truth for {within} of {len(amps)} "
                 "glaciers (gap-filled / true, m/yr): " + "; ".join(
                     f"glacier {gid} {p:.1f} / {t:.1f} ({100 * (p / t - 1):+.0f} %)"
                     for gid, (p, t) in amps.items()) + ".")
    if "sigma_coverage" in res:
        share, n = res["sigma_coverage"]
        lines.append(f"Truth within ±1.96 σ of the gap-filled error for {100 * share:.1f} % of "
                     f"{n} glacier pixel-months (target 95 ± 3 %).")
    if res.get("trend_classes"):
        tc = res["trend_classes"]
        right = sum(r for *_, r in tc.values())
        lines.append(f"Glacier trend classes right: {right} of {len(tc)} ("
                     + "; ".join(f"glacier {gid} {found}, expected {exp}"
                                 for gid, (found, exp, _) in tc.items()) + ").")
    return lines
