"""Pixel-wise decadal trends of velocity stacks, with significance tests that stay honest.

Units: velocities m/yr; every trend, confidence bound and slope is **m/yr per decade**; times are
the middle of each band's date interval as decimal years.

Why not plain OLS on the monthly values: its residuals hold the seasonal cycle and the
autocorrelated noise (a fast month is followed by a fast month), while its t test assumes 120
independent residuals. Its p-values are wrong both ways: too timid when the seasonal cycle
dominates the noise (it then misses most real trends), too liberal when the autocorrelated noise
dominates (trend-free series declared significant two to three times as often as alpha). See
``bench/bench_trends.py``. The methods offered instead:

``ols_annual`` (default)
    Annual means, then OLS with a Student t test (n_years - 2 degrees of freedom). Averaging
    twelve months removes the seasonal cycle and nearly all the month-to-month correlation
    (adjacent annual means of AR(1) phi = 0.6 noise still correlate by ~0.09, which makes the
    test slightly liberal: ~6.7 % false positives at alpha = 0.05 on 20,000 simulated series).
    The most powerful of the three, and its p-values are continuous, which matters for the
    false-discovery control over many pixels (rank tests on ten years cannot go below p ~ 1e-4).
``sen_annual``
    Annual means, then the Theil-Sen slope (median of pairwise slopes) with the Mann-Kendall test
    (Kendall's tau against time; normal approximation with continuity correction, no tie
    correction as velocities are continuous) and Sen's rank-based confidence interval. Robust to
    a year spoiled by outliers; slightly less powerful.
``seasonal_mk``
    The seasonal Kendall slope (median of the within-calendar-month slopes between years) with the
    correlated seasonal Mann-Kendall test of Hirsch & Slack (1984): the variance of S includes the
    covariances between months estimated from ranks, so dependence between months does not
    inflate significance. Needs about ten years or more.
``ols_monthly``
    Plain OLS on the monthly values with an i.i.d. t test: the miscalibrated baseline, kept for
    the benchmark only.

Annual means: each year-month (the mean of the bands whose middle falls in that calendar month)
minus the pixel's mean for that calendar month (its climatology), averaged over the year's valid
months, plus the pixel's overall level. Removing the climatology first means a year missing its
winter months is not biased upward by the seasonal cycle. A year counts when it has at least
``min_months`` valid calendar months (default 4); a pixel is computable when it has at least
``min_years`` counting years (default 5, at least 3). The annual time is the mean time of the
year's valid months.

Per-pixel errors (an error stack: the 1σ of every band, m/yr): the OLS methods become weighted
least squares with weights 1/σ² of the values they fit: for ``ols_annual`` the annual means',
each then the inverse-variance weighted mean of its months' anomalies (a year-month cell's mean
of bands has the variance ``Σ σ² / n²``, the annual mean ``1 / Σ 1/σ_m²``; the climatology's own
error, shared by all years, left out), for ``ols_monthly`` the bands'. The Theil-Sen slopes use
the weighted annual means too. A pixel where a value it fits has no σ stays
unweighted. The significance stays honest: the slope's standard error is scaled by the weighted
residuals (the t test of weighted least squares, exact when the errors are right up to one
factor), and for ``ols_annual`` the annual means' variance the stated errors miss (interannual
changes the pairs do not see) is estimated per pixel and added to the weights' variances
(Paule-Mandel, :func:`excess_variance`), so understated errors cannot make a trend significant.
The trend's σ (``sigma``, m/yr per decade) is the one the stated errors (and that excess
variance) give (:func:`annual_slope_sigma`; for ``ols_monthly`` ``√(1 / Σ w (t −
t̄)²)``); the rank methods (``sen_annual``,
``seasonal_mk``) take no weights, their ``sigma`` is the weighted fit's.

Many pixels: the significance mask controls the false discovery rate over all computable pixels
(Benjamini-Hochberg): among pixels declared significant, at most a share alpha are expected false.
"""

import numpy as np
from scipy import stats

from ..cluster import parse_scheduler, run_tasks
from ..errors import InputError
from ..io.products import StackFile
from ..progress import ensure
from ..io.raster import RasterWriter, all_or_none

METHODS = {
    "ols_annual": "OLS on annual means, Student t test",
    "sen_annual": "Theil-Sen on annual means, Mann-Kendall test",
    "seasonal_mk": "seasonal Kendall slope, correlated seasonal Mann-Kendall test "
                   "(Hirsch & Slack 1984)",
    "ols_monthly": "plain OLS on monthly values, i.i.d. t test (miscalibrated baseline)",
}
USER_METHODS = ("ols_annual", "sen_annual", "seasonal_mk")
DEFAULT_METHOD = "ols_annual"
DEFAULT_MIN_YEARS = 5
DEFAULT_MIN_MONTHS = 4
DECADE = 10.0
# Pixel results of :func:`series_trends` and rasters of :func:`pixel_trends`.
RESULT_KEYS = ("trend", "ci_low", "ci_high", "p", "ols", "sen", "n_years", "sigma", "mean")
OUTPUT_KEYS = RESULT_KEYS[:-1] + ("significant",)
_PAIR_BUDGET = 4_000_000  # elements of pairwise-slope arrays held at once (bounded memory)


# ---------------------------------------------------------------------------- calendar

class Calendar:
    """Where each band of a stack falls: year, calendar month, year-month cell and decimal time.

    Built from the bands' date intervals (the middle date decides year and month).
    """

    def __init__(self, intervals):
        if not intervals:
            raise InputError("The stack has no bands.")
        mids = [iv.mid for iv in intervals]
        self.times = np.array([iv.decimal_year for iv in intervals], np.float64)
        self.first_year = min(d.year for d in mids)
        self.years = np.arange(self.first_year, max(d.year for d in mids) + 1)
        self.year_index = np.array([d.year - self.first_year for d in mids])
        self.month = np.array([d.month - 1 for d in mids])
        self.cell = self.year_index * 12 + self.month  # year-month cell of each band
        n_cells = len(self.years) * 12
        counts = np.bincount(self.cell, minlength=n_cells)
        # time of each year-month cell: its bands' mean time, else the middle of the month
        nominal = (self.years[:, None] + (np.arange(12)[None, :] + 0.5) / 12.0).ravel()
        sums = np.bincount(self.cell, weights=self.times, minlength=n_cells)
        self.cell_times = np.where(counts > 0, sums / np.maximum(counts, 1), nominal)
        self.one_band_per_cell = bool(counts.max() == 1)

    @property
    def n_years(self):
        return len(self.years)


def _check_options(method, alpha, min_years, min_months):
    if method not in METHODS:
        raise InputError(f"METHOD: unknown trend method '{method}'; use one of "
                         f"{', '.join(METHODS)}.")
    if not 0.0 < alpha < 0.5:
        raise InputError(f"ALPHA: the significance level must be between 0 and 0.5, not {alpha}.")
    if int(min_years) < 3:
        raise InputError(f"MIN_YEARS: a trend test needs at least 3 years, not {min_years}.")
    if not 1 <= int(min_months) <= 12:
        raise InputError(f"MIN_MONTHS: a year's valid months must be 1..12, not {min_months}.")


def nanmean_count(a, axis):
    """``(mean, count)`` of the finite values along ``axis`` (mean NaN where count is 0)."""
    ok = np.isfinite(a)
    count = ok.sum(axis=axis)
    total = np.where(ok, a, 0.0).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan), count


def year_month_means(values, cal, variances=None):
    """``(years, 12, P)`` float64 means of the bands in each year-month cell (NaN when none).

    ``values`` is ``(bands, P)`` m/yr with NaN NoData. With ``variances`` (the bands', (m/yr)²,
    NaN = unknown) also the means' variances ``Σ σ² / n²`` (NaN where a band with a value has
    none), as a second item.
    """
    values = np.asarray(values)
    n_cells = cal.n_years * 12
    if cal.one_band_per_cell:  # the usual monthly stack: a scatter, no averaging
        out = np.full((n_cells, values.shape[1]), np.nan)
        out[cal.cell] = values
        var = None
        if variances is not None:
            var = np.full(out.shape, np.nan)
            var[cal.cell] = np.where(np.isfinite(values), variances, np.nan)
    else:
        onehot = np.zeros((n_cells, len(cal.cell)), np.float64)
        onehot[cal.cell, np.arange(len(cal.cell))] = 1.0
        ok = np.isfinite(values)
        with np.errstate(invalid="ignore", divide="ignore"):
            count = onehot @ ok
            out = np.where(count > 0, (onehot @ np.where(ok, values, 0.0)) / count, np.nan)
            var = None
            if variances is not None:
                missing = onehot @ (ok & ~np.isfinite(variances))
                var = np.where((count > 0) & (missing == 0),
                               (onehot @ np.where(ok, variances, 0.0)) / count ** 2, np.nan)
    if var is None:
        return out.reshape(cal.n_years, 12, -1)
    return out.reshape(cal.n_years, 12, -1), var.reshape(cal.n_years, 12, -1)


def climatology(ym):
    """Mean of each calendar month over the years, ``(12, P)``, from :func:`year_month_means`."""
    return nanmean_count(ym, 0)[0]


def annual_means(ym, cal, min_months=DEFAULT_MIN_MONTHS, ym_var=None):
    """Deseasonalised annual means from year-month means ``(years, 12, P)``.

    Returns ``(z, t, level)``: ``z`` (years, P) annual means in m/yr (level + mean anomaly of the
    year's valid months; NaN where the year has fewer than ``min_months`` valid months), ``t``
    (years, P) the mean decimal time of those months, ``level`` (P,) the mean of the climatology.
    With ``ym_var`` (the year-month means' variances, :func:`year_month_means`) the months
    of a year and the climatology are averaged with weights 1/σ² (time too); the annual means'
    variances ``1 / Σ 1/σ²`` and the month weights ``(years, 12, P)`` are returned as fourth and
    fifth items; a pixel where a valid month has no variance is averaged without weights and gets
    NaN variances.
    """
    ok = np.isfinite(ym)
    n_months = ok.sum(1)
    cell_t = np.broadcast_to(cal.cell_times.reshape(cal.n_years, 12)[:, :, None], ym.shape)
    w = ok.astype(np.float64)
    weighted = None
    if ym_var is not None:
        has = ok & np.isfinite(ym_var) & (ym_var > 0)
        weighted = ~(ok & ~has).any((0, 1)) & has.any((0, 1))
        with np.errstate(divide="ignore", invalid="ignore"):
            w = np.where(weighted[None, None] & has, 1.0 / ym_var, w)
        w = np.where(ok, w, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):  # the climatology weighted alike
        clim = np.where(w.sum(0) > 0, (w * np.where(ok, ym, 0.0)).sum(0) / w.sum(0), np.nan)
    level = nanmean_count(clim, 0)[0]
    sw = w.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        anomaly = (w * np.where(ok, ym - clim[None], 0.0)).sum(1) / sw
        if ym_var is None:
            t = (w * np.where(ok, cell_t, 0.0)).sum(1) / sw
        else:
            # the time the anomalies measure: each month's time minus its climatology's (the
            # trend inside the climatology), so z is exactly linear in t when months weigh
            # differently from year to year
            t_clim = (w * np.where(ok, cell_t, 0.0)).sum(0) / w.sum(0)
            t = ((w * np.where(ok, cell_t - t_clim[None], 0.0)).sum(1) / sw
                 + nanmean_count(t_clim, 0)[0][None])
    good = n_months >= min_months
    z = np.where(good, anomaly + level[None], np.nan)
    t = np.where(good, t, np.nan)
    if ym_var is None:
        return z, t, level
    with np.errstate(divide="ignore"):
        var = np.where(good & weighted[None], 1.0 / sw, np.nan)
    return z, t, level, var, w


def excess_variance(z, t, z_var, iterations=30):
    """``τ²`` per column (Paule-Mandel): the variance of the annual means that their stated
    variances ``z_var`` miss (e.g. interannual changes the pairs do not see), so that the
    weighted fit's residuals ``Σ (z − fit)² / (σ² + τ²)`` match their degrees of freedom
    (0 when the stated variances already explain them). ``z``, ``t``, ``z_var``: ``(years, P)``."""
    ok = np.isfinite(z) & np.isfinite(t) & np.isfinite(z_var)
    df = ok.sum(0) - 2.0
    tau2 = np.zeros(z.shape[1])
    zz, tt = np.where(ok, z, 0.0), np.where(ok, t, 0.0)
    for _ in range(iterations):
        w = np.where(ok, 1.0 / (np.where(ok, z_var, 1.0) + tau2), 0.0)
        sw = np.maximum(w.sum(0), 1e-300)
        dt = np.where(ok, tt - (w * tt).sum(0) / sw, 0.0)
        dz = np.where(ok, zz - (w * zz).sum(0) / sw, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            slope = np.nan_to_num((w * dt * dz).sum(0) / (w * dt * dt).sum(0))
        q = (w * (dz - slope * dt) ** 2).sum(0)
        tau2 = np.maximum(0.0, tau2 + np.where(df > 0, (q - df) / sw, 0.0))
    return tau2


def annual_slope_sigma(w_years, t, w_months, ym_var, tau2=0.0):
    """1σ of the weighted least-squares slope of the :func:`annual_means` (per unit of t),
    propagated exactly from the year-month variances ``ym_var`` (independent): the slope is a
    linear combination ``Σ a_ym x_ym`` of the year-month means, through both the years' weighted
    means and the climatology they subtract (an error of the climatology reaches every year,
    with each year's own weights). ``w_years``/``t`` ``(years, P)``: the fit's weights (0 for
    years left out) and times; ``w_months`` the month weights of :func:`annual_means`;
    ``tau2`` the annual means' excess variance (:func:`excess_variance`), independent per year."""
    sw = w_years.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        tm = (w_years * np.nan_to_num(t)).sum(0) / sw
        dt = np.where(w_years > 0, np.nan_to_num(t) - tm, 0.0)
        c = w_years * dt / (w_years * dt * dt).sum(0)  # slope = Σ_y c_y z_y
        share = w_months / w_months.sum(1, keepdims=True)  # a month's share of its year
        share = np.nan_to_num(share)
        g = (c[:, None] * share).sum(0)  # (12, P): the climatology's weight in the slope
        clim_share = np.nan_to_num(w_months / w_months.sum(0, keepdims=True))
        a = c[:, None] * share - g[None] * clim_share
        return np.sqrt((a * a * np.where(w_months > 0, ym_var, 0.0)).sum((0, 1))
                       + tau2 * (c * c).sum(0))


# ---------------------------------------------------------------------------- estimators

def ols_trend(z, t, alpha=0.05, weights=None):
    """OLS slope of ``z`` on ``t`` along axis 0 with a Student t test (i.i.d. residuals).

    ``z``, ``t``: ``(n, P)`` with NaN where missing. Returns ``(slope, ci_low, ci_high, p, n)``,
    slopes in z-units per unit of t; NaN where fewer than 3 points. ``weights`` ``(n, P)``
    (e.g. 1/σ²) make it weighted least squares, its standard error scaled by the weighted
    residuals; ``sxx = Σ w (t − t̄)²`` is then returned too, a sixth item (the slope's variance
    is ``1 / sxx`` when the weights are the inverse variances).
    """
    ok = np.isfinite(z) & np.isfinite(t)
    n = ok.sum(0)
    w = np.where(ok, 1.0 if weights is None else weights, 0.0)
    sw = np.maximum(w.sum(0), 1e-300)
    zt = np.where(ok, z, 0.0)
    tt = np.where(ok, t, 0.0)
    tm = (w * tt).sum(0) / sw
    zm = (w * zt).sum(0) / sw
    dt = np.where(ok, tt - tm, 0.0)
    dz = np.where(ok, zt - zm, 0.0)
    sxx = (w * dt * dt).sum(0)
    sxy = (w * dt * dz).sum(0)
    syy = (w * dz * dz).sum(0)
    df = n - 2
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = sxy / sxx
        rss = np.maximum(syy - slope * sxy, 0.0)
        se = np.sqrt(rss / np.maximum(df, 1) / sxx)
        tstat = np.abs(slope) / se
    good = (df >= 1) & (sxx > 0)
    dfc = np.maximum(df, 1)
    p = np.where(se > 0, 2.0 * stats.t.sf(np.nan_to_num(tstat), dfc), np.where(slope != 0, 0.0, 1.0))
    # ppf is slow: evaluate it once per distinct number of degrees of freedom
    dfs, inverse = np.unique(dfc, return_inverse=True)
    half = stats.t.ppf(1.0 - alpha / 2.0, dfs)[inverse].reshape(dfc.shape) * se
    nan = np.full(slope.shape, np.nan)
    out = (np.where(good, slope, nan), np.where(good, slope - half, nan),
           np.where(good, slope + half, nan), np.where(good, p, nan), n)
    return out if weights is None else out + (np.where(good, sxx, nan),)


def _order_stat(sorted_slopes, index):
    """Pick ``sorted_slopes[index[p], p]`` for every column p."""
    return np.take_along_axis(sorted_slopes, index[None], 0)[0]


def _rank_interval(slopes, var_s, alpha):
    """Median and Sen's rank-based confidence interval of pairwise ``slopes`` (pairs, P).

    ``var_s`` is the variance of the Kendall S statistic (scipy.stats.theilslopes's rule for
    the order statistics).
    """
    srt = np.sort(slopes, axis=0)  # NaN sorts last
    n = np.isfinite(slopes).sum(0)
    last = np.maximum(n - 1, 0)
    med = 0.5 * (_order_stat(srt, last // 2) + _order_stat(srt, n // 2))
    c = stats.norm.ppf(1.0 - alpha / 2.0) * np.sqrt(np.maximum(var_s, 0.0))
    upper = np.clip(np.round((n + c) / 2.0).astype(int), 0, last)
    lower = np.clip(np.round((n - c) / 2.0).astype(int) - 1, 0, last)
    bad = n == 0
    return (np.where(bad, np.nan, med), np.where(bad, np.nan, _order_stat(srt, lower)),
            np.where(bad, np.nan, _order_stat(srt, upper)))


def _mk_p(s, var_s):
    """Two-sided normal p of Kendall's S with continuity correction (1 when Var(S) is 0)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (s - np.sign(s)) / np.sqrt(var_s)
    return np.where(var_s > 0, 2.0 * stats.norm.sf(np.abs(np.nan_to_num(z))), 1.0)


def _chunks(n_pixels, per_pixel):
    """Pixel slices so that ``per_pixel`` elements x chunk stays within the memory budget."""
    step = max(1, _PAIR_BUDGET // max(per_pixel, 1))
    return [slice(a, min(a + step, n_pixels)) for a in range(0, n_pixels, step)]


def sen_trend(z, t, alpha=0.05):
    """Theil-Sen slope of ``z`` on ``t`` (axis 0) with the Mann-Kendall test.

    ``z``, ``t``: ``(n, P)``, NaN where missing, ``t`` increasing along axis 0 where valid.
    Returns ``(slope, ci_low, ci_high, p, n)`` like :func:`ols_trend`.
    """
    n_t, n_pix = z.shape
    ii, jj = np.triu_indices(n_t, 1)
    out = [np.full(n_pix, np.nan) for _ in range(4)]
    n = (np.isfinite(z) & np.isfinite(t)).sum(0)
    var_s = n * (n - 1.0) * (2.0 * n + 5.0) / 18.0
    for sl in _chunks(n_pix, len(ii)):
        dz = z[jj, sl] - z[ii, sl]
        with np.errstate(invalid="ignore", divide="ignore"):
            slopes = dz / (t[jj, sl] - t[ii, sl])
        s = np.where(np.isfinite(slopes), np.sign(dz), 0.0).sum(0)
        med, lo, hi = _rank_interval(slopes, var_s[sl], alpha)
        for k, v in enumerate((med, lo, hi, _mk_p(s, var_s[sl]))):
            out[k][sl] = v
    good = n >= 3
    return tuple(np.where(good, v, np.nan) for v in out) + (n,)


def seasonal_mk_trend(ym, cal, alpha=0.05):
    """Seasonal Kendall slope with the correlated seasonal Mann-Kendall test.

    ``ym``: ``(years, 12, P)`` year-month means (NaN missing). S is the sum over calendar months of
    each month's Mann-Kendall S over the years; Var(S) adds to each month's variance the
    covariances between months of Hirsch & Slack (1984, eq. 14):
    ``cov_gh = (K_gh + 4 sum_j R_jg R_jh - n (n_g + 1)(n_h + 1)) / 3`` with ``K_gh`` the sum over
    year pairs of sgn(dx_g) sgn(dx_h) and ``R_jg`` the rank of year j in month g (missing years
    take the mid-rank). The slope is the median of all within-month pairwise slopes between
    years, its interval Sen's with this Var(S). Returns ``(slope, ci_low, ci_high, p)``.
    """
    n_y, _, n_pix = ym.shape
    ii, jj = np.triu_indices(n_y, 1)
    cell_t = cal.cell_times.reshape(n_y, 12)
    dt = (cell_t[jj] - cell_t[ii])[:, :, None]  # (pairs, 12, 1), ~ whole years
    # incidence of years in pairs: rank sums R_j = (n_g + 1 + sum_i sgn(x_j - x_i)) / 2
    inc = np.zeros((n_y, len(ii)))
    inc[jj, np.arange(len(ii))] = 1.0
    inc[ii, np.arange(len(ii))] = -1.0
    out = [np.full(n_pix, np.nan) for _ in range(4)]
    for sl in _chunks(n_pix, 12 * len(ii)):
        x = ym[:, :, sl]
        dx = x[jj] - x[ii]  # (pairs, 12, p)
        sgn = np.where(np.isfinite(dx), np.sign(dx), 0.0)
        n_g = np.isfinite(x).sum(0).astype(np.float64)  # (12, p)
        s = sgn.sum((0, 1))
        var_g = (n_g * (n_g - 1) * (2 * n_g + 5) / 18.0).sum(0)
        ranks = (n_g[None] + 1.0 + np.tensordot(inc, sgn, axes=(1, 0))) / 2.0  # (years, 12, p)
        k_off = (sgn.sum(1) ** 2 - (sgn ** 2).sum(1)).sum(0)
        r_off = (ranks.sum(1) ** 2 - (ranks ** 2).sum(1)).sum(0)
        n_off = (n_g + 1).sum(0) ** 2 - ((n_g + 1) ** 2).sum(0)
        var_s = var_g + (k_off + 4.0 * r_off - n_y * n_off) / 3.0
        slopes = (dx / dt).reshape(-1, dx.shape[-1])
        med, lo, hi = _rank_interval(slopes, var_s, alpha)
        for k, v in enumerate((med, lo, hi, _mk_p(s, var_s))):
            out[k][sl] = v
    return tuple(out)


# ---------------------------------------------------------------------------- driver

def series_trends(values, intervals, method=DEFAULT_METHOD, alpha=0.05,
                  min_years=DEFAULT_MIN_YEARS, min_months=DEFAULT_MIN_MONTHS, cal=None,
                  errors=None):
    """Trends of many series at once.

    ``values``: ``(bands, ...)`` m/yr with NaN NoData (a stack block, or per-glacier series as
    ``(bands, n_glaciers)``); ``intervals``: the bands' date intervals. Returns a dict of arrays
    shaped ``values.shape[1:]``: ``trend`` (the method's slope), ``ci_low``/``ci_high`` (its
    1 - alpha confidence interval), ``p`` (two-sided, null: no trend) — all m/yr per decade, NaN
    where not computable — plus ``ols`` and ``sen`` (OLS and Theil-Sen slopes of the annual
    means, whatever the method), ``n_years`` (counting years), ``sigma`` (the trend's 1σ from
    ``errors``, m/yr per decade; NaN without) and ``mean`` (the level, m/yr). ``errors``: the
    values' 1σ (m/yr, shaped like ``values``; see the module doc for the weighting).
    """
    _check_options(method, alpha, min_years, min_months)
    values = np.asarray(values)
    shape = values.shape[1:]
    flat = values.reshape(values.shape[0], -1)
    cal = cal or Calendar(intervals)
    if len(cal.cell) != flat.shape[0]:
        raise InputError(f"{flat.shape[0]} bands but {len(cal.cell)} date intervals.")
    err = None
    if errors is not None:
        err = np.asarray(errors)
        if err.shape != values.shape:
            raise InputError(f"The error stack has the shape {err.shape}; the stack has "
                             f"{values.shape}.")
        err = err.reshape(flat.shape)
    res = {k: np.full(flat.shape[1], np.nan) for k in RESULT_KEYS}
    # pixel chunks keep the float64 intermediates (several per band and pixel) near 100 MB
    for sl in _chunks(flat.shape[1], 16 * flat.shape[0]):
        for key, arr in _trends_of(flat[:, sl], cal, method, alpha, min_years, min_months,
                                   None if err is None else err[:, sl]).items():
            res[key][sl] = arr
    return {k: v.reshape(shape) for k, v in res.items()}


def _inverse_variances(values, variances):
    """Weights 1/σ² for the values, 1 everywhere in a series (column) where a finite value has
    no positive finite variance; and the mask of the weighted series."""
    has = np.isfinite(variances) & (variances > 0)
    weighted = ~(np.isfinite(values) & ~has).any(0) & has.any(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(weighted[None] & has, 1.0 / variances, 1.0)
    return w, weighted


def _trends_of(flat, cal, method, alpha, min_years, min_months, errors=None):
    """:func:`series_trends` of ``(bands, P)`` values, all at once (``errors`` their 1σ)."""
    if errors is None:
        ym = year_month_means(flat, cal)
    else:
        ym, ym_var = year_month_means(flat, cal, np.asarray(errors, np.float64) ** 2)
    z, t, level = annual_means(ym, cal, min_months)
    n_years = np.isfinite(z).sum(0)
    sigma = np.full(flat.shape[1], np.nan)
    if errors is None:
        ols = ols_trend(z, t, alpha)
    else:
        z, t, level, z_var, w_months = annual_means(ym, cal, min_months, ym_var)
        tau2 = excess_variance(z, t, z_var)
        w, weighted = _inverse_variances(z, z_var + tau2[None])
        ols = ols_trend(z, t, alpha, w)
        w_years = np.where(np.isfinite(z) & np.isfinite(t), w, 0.0)
        sigma = np.where(weighted, annual_slope_sigma(w_years, t, w_months, ym_var, tau2),
                         np.nan)
    sen = sen_trend(z, t, alpha)
    if method == "ols_annual":
        main = ols[:4]
    elif method == "sen_annual":
        main = sen[:4]
    elif method == "seasonal_mk":
        # only the counting years enter the test, as for the annual methods
        main = seasonal_mk_trend(np.where(np.isfinite(z)[:, None, :], ym, np.nan), cal, alpha)
    else:
        tt = np.broadcast_to(cal.times[:, None], flat.shape)
        values = flat.astype(np.float64)
        if errors is None:
            main = ols_trend(values, tt, alpha)[:4]
        else:
            w, weighted = _inverse_variances(values, np.asarray(errors, np.float64) ** 2)
            main = ols_trend(values, tt, alpha, w)
            with np.errstate(divide="ignore", invalid="ignore"):
                sigma = np.where(weighted, 1.0 / np.sqrt(main[5]), np.nan)
            main = main[:4]
    ok = n_years >= int(min_years)
    res = {}
    for key, arr, scale in zip(RESULT_KEYS, main + (ols[0], sen[0]),
                               (DECADE, DECADE, DECADE, 1.0, DECADE, DECADE)):
        res[key] = np.where(ok, arr * scale, np.nan)
    res["n_years"] = n_years
    res["sigma"] = np.where(ok, sigma * DECADE, np.nan)
    res["mean"] = level
    return res


def bh_adjust(p):
    """Benjamini-Hochberg adjusted p-values (q-values), NaN kept; ``q <= alpha`` is significant.

    Over all finite entries of ``p`` (any shape): controls the false discovery rate at alpha.
    """
    p = np.asarray(p, np.float64)
    q = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    vals = p[ok]
    m = vals.size
    if m == 0:
        return q
    order = np.argsort(vals)
    ranked = vals[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    adj = np.empty(m)
    adj[order] = np.minimum(ranked, 1.0)
    q[ok] = adj
    return q


def bh_threshold(p, alpha=0.05):
    """The Benjamini-Hochberg p-value threshold over the finite entries of ``p`` (any shape):
    the largest p_(k) with p_(k) <= alpha k / m; -inf when nothing is significant. Same decision
    as ``bh_adjust(p) <= alpha`` with one sorted copy of the valid p-values (large rasters)."""
    vals = np.sort(np.asarray(p)[np.isfinite(p)])
    passed = np.flatnonzero(vals <= alpha * np.arange(1, vals.size + 1) / max(vals.size, 1))
    return float(vals[passed[-1]]) if passed.size else -np.inf


def significance_mask(p, alpha=0.05):
    """float32: 1 where significant after Benjamini-Hochberg at ``alpha``, 0 where not, NaN where
    p is NaN. Returns ``(mask, threshold)``."""
    threshold = bh_threshold(p, alpha)
    ok = np.isfinite(p)
    mask = np.full(np.shape(p), np.nan, np.float32)
    mask[ok] = np.asarray(p)[ok] <= threshold
    return mask, threshold


# ---------------------------------------------------------------------------- rasters

OUTPUT_DESCRIPTIONS = {
    "trend": "trend_m_per_yr_per_decade",
    "ci_low": "ci_low_m_per_yr_per_decade",
    "ci_high": "ci_high_m_per_yr_per_decade",
    "p": "p_value",
    "ols": "ols_trend_m_per_yr_per_decade",
    "sen": "theil_sen_trend_m_per_yr_per_decade",
    "n_years": "valid_years",
    "sigma": "trend_sigma_m_per_yr_per_decade",
    "significant": "significant_after_fdr",
}


def pixel_trends(path, outputs, method=DEFAULT_METHOD, alpha=0.05, min_years=DEFAULT_MIN_YEARS,
                 min_months=DEFAULT_MIN_MONTHS, progress=None, scheduler=None, error=None):
    """Per-pixel trends of the stack at ``path``, written as float32 GeoTIFFs.

    ``outputs`` maps keys of :data:`OUTPUT_KEYS` to file paths (any subset): ``trend``, ``ci_low``,
    ``ci_high`` (m/yr per decade, the method's slope and its 1 - alpha interval), ``p``, ``ols``,
    ``sen`` (OLS and Theil-Sen slopes of the annual means), ``n_years`` and ``significant`` (1
    where significant after Benjamini-Hochberg over all computable pixels, 0 where not, NaN where
    not computable). The stack is read window by window with all bands (bounded memory); the
    p-values of the whole raster are kept (one float32 band) for the FDR step. ``scheduler``:
    where the windows are computed (:mod:`core.cluster`; empty = here), one window per task; the
    stack must then be on storage the workers see, the outputs are written here. ``error``: the
    stack's error stack (1σ per band, m/yr, same grid and bands): weighted fits and the ``sigma``
    output (module doc). Returns a summary dict (computable and significant pixel counts, BH p
    threshold, method, whether weighted).
    """
    _check_options(method, alpha, min_years, min_months)
    unknown = set(outputs) - set(OUTPUT_KEYS)
    if unknown:
        raise InputError(f"Unknown trend outputs {sorted(unknown)}; use {OUTPUT_KEYS}.")
    progress = ensure(progress)
    stack = StackFile(path)
    info = stack.info
    cal = Calendar(info.intervals)
    if error:
        check_error_stack(error, info)
    elif "sigma" in outputs and outputs["sigma"]:
        raise InputError("The trend's sigma needs the stack's error stack (1 sigma per band).")
    if cal.n_years < int(min_years):
        raise InputError(f"The stack '{path}' spans {cal.n_years} calendar year(s); MIN_YEARS is "
                         f"{min_years}.")
    meta = {"METHOD": method, "METHOD_DESCRIPTION": METHODS[method], "ALPHA": alpha,
            "MIN_YEARS": min_years, "MIN_MONTHS": min_months, "UNITS": "m/yr per decade",
            "SOURCE": path, **({"ERROR_STACK": error, "WEIGHTS": "1/sigma^2"} if error else {})}
    inputs = [path] + ([error] if error else [])
    writers = {k: RasterWriter(p, info.grid, 1, [OUTPUT_DESCRIPTIONS[k]], meta, inputs=inputs)
               for k, p in outputs.items() if p}
    p_all = np.full(info.grid.shape, np.nan, np.float32)
    # here the open stack serves every window; a worker opens the file by its path
    local = parse_scheduler(scheduler) is None
    source = stack if local else path
    err_stack = StackFile(error, "error stack") if error and local else error
    keys = sorted(set(writers) - {"significant"} | {"p"})
    options = (cal, method, alpha, min_years, min_months, keys)
    windows = stack.windows()

    def store(k, res):
        r0, c0, nr, nc = windows[k]
        p_all[r0:r0 + nr, c0:c0 + nc] = res["p"]
        for key, w in writers.items():
            if key != "significant":
                w.write(1, res[key], r0, c0)

    try:
        with stack, all_or_none(writers.values()):  # no output of a failed run
            run_tasks(trend_window, [(source, win, options, err_stack) for win in windows],
                      scheduler, progress.sub(0.0, 0.95), visible=inputs, key="pixel-trends",
                      on_result=store)
            mask, threshold = significance_mask(p_all, alpha)
            if "significant" in writers:
                writers["significant"].write(1, mask, 0, 0)
    finally:
        if isinstance(err_stack, StackFile):
            err_stack.close()
    progress.update(1.0)
    n_ok = int(np.isfinite(p_all).sum())
    n_sig = int(np.nansum(mask))
    return {"method": method, "computable": n_ok, "significant": n_sig,
            "share_significant": n_sig / n_ok if n_ok else float("nan"),
            "bh_p_threshold": threshold, "weighted": bool(error)}


def check_error_stack(error, info):
    """:class:`InputError` unless the stack at ``error`` has the grid and band intervals of the
    velocity stack of header ``info``."""
    with StackFile(error, "error stack") as e:
        if not e.info.grid.same_as(info.grid) or e.info.intervals != info.intervals:
            raise InputError(f"The error stack '{error}' does not match '{info.path}': it needs "
                             "the same grid and the same bands (date intervals).")


def trend_window(task, progress=None):
    """One window of :func:`pixel_trends`: ``task = (stack (open StackFile or path), window,
    (calendar, method, alpha, min_years, min_months, result keys), error stack (open StackFile,
    path or None))``; returns the float32 arrays of the keys."""
    source, win, (cal, method, alpha, min_years, min_months, keys), error = task
    stack = source if isinstance(source, StackFile) else StackFile(source)
    values = stack.read(win)
    errors = None
    if error is not None:
        errors = (error if isinstance(error, StackFile) else StackFile(error, "error stack")
                  ).read(win)
    if progress is not None:
        progress.check()
    res = series_trends(values, None, method, alpha, min_years, min_months, cal, errors)
    return {k: res[k].astype(np.float32) for k in keys}
