"""Sub-pixel frequency correlation of image windows, batched (the correlation engine).

Conventions: images are 2-D float arrays (NaN = NoData) on the same grid. A window is placed by
its top-left pixel ``(row, col)``; its centre is at ``row + wy/2, col + wx/2`` in continuous pixel
coordinates (pixel ``k`` covers ``k .. k+1``). The displacement ``(d_col, d_row)`` in pixels is the
motion of the features from the reference to the secondary image: columns to the east, rows
downward (south), i.e. ``secondary(p) = reference(p - d)``.

Method, per window (all windows of a batch at once, as ``(n, wy, wx)`` arrays):

1. Both windows lose their taper-weighted mean and are multiplied by a raised-cosine taper; the
   cross-power spectrum ``C = conj(R) S`` is computed with real FFTs. Windows whose contrast sits
   in a few pixels (specks, a lone edge), which would match anything, are marked as textureless.
2. Integer search: the peak of the phase-correlation surface (inverse FFT of ``C/|C|``) within the
   search range, refined by a 3-point parabola, gives a first estimate; the secondary window is
   re-extracted at the nearest whole-pixel offset (integer re-centring in the spatial domain).
3. Sub-pixel: a weighted phase-plane fit of ``C`` (weights ``|C|^p`` on the frequencies that
   pass an adaptive mask; closed-form 2 x 2 least squares on the linearised residual phase),
   iterated. At every iteration the secondary taper is *moved with the estimated sub-pixel
   shift* (the taper is analytic, so it can be evaluated anywhere): when the estimate equals the
   true shift, the tapered secondary window is an exact shifted copy of the tapered reference,
   the cross-power phase is exactly a plane and the fit is unbiased. This removes the windowing
   bias of a fixed taper (about 2 % of the shift, toward zero) without resampling the image, and
   because the fit is a continuous model of the phase there is no pixel-locking. A fit that ends
   more than 0.6 px away re-centres by whole pixels once more.
4. SNR in 0..1: the weighted coherence of the cross-power with the fitted phase plane,
   ``Re Σ w C e^{iφ} / Σ w |C|`` (1 = identical windows, about 0.1-0.4 for unrelated windows, 0
   for windows without texture).

Offsets beyond a quarter of the window are found by a first pass with larger windows on a sparse
set of centres (median-filtered), used as an integer prior for the normal pass; a prior offset
can be given too, constant or per window (a prior velocity field, :mod:`core.correlation.prior`).
:func:`correlate_arrays` and :func:`correlate_windows` process in-memory arrays in batches on
several threads (progress, cancel); :mod:`core.correlation.images` tiles files with bounded
memory.
"""

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import fft, ndimage
from scipy.spatial import cKDTree

from ..errors import InputError
from ..arrays.nanstats import nanmedian0, neighbours
from .deform import (DEFAULT_STRAIN, DEFAULT_TOLERANCE, MAX_ITERATIONS, REFINE_ITERATIONS,
                     gradient_tolerance, lattice_gradient, spline_coefficients, warped_windows)
from ..progress import ensure

TWO_PI = 2.0 * np.pi
MAX_THREADS = 8
# the sandwich standard error of the phase-plane fit treats every frequency as independent; the
# taper correlates neighbouring ones, so the true spread is larger by ERROR_SCALE, and the
# estimator's own systematic error (~0.002 px on noise-free texture) adds ERROR_FLOOR px in
# quadrature (calibrated on band-limited textures shifted in the Fourier domain with 1-10 %
# noise: 93-97 % of errors within 1.96 sigma, test_correlation.py)
ERROR_SCALE = 1.65
ERROR_FLOOR = 0.004


@dataclass(frozen=True)
class CorrelatorOptions:
    """Settings of the correlator.

    ``window`` (rows, cols) in pixels (each even, >= 8); ``search`` the largest displacement (px)
    looked for beyond the prior (default: a quarter of the window, larger values trigger the
    coarse first pass); ``iterations`` sub-pixel iterations; ``rolloff`` the fraction of the
    window's half-width over which the raised-cosine taper falls to zero (1 = Hann);
    ``mask_fraction`` frequencies whose cross-power is below this fraction of the window's mean
    cross-power are left out of the fit (adaptive frequency mask);
    ``weighting`` the exponent p of the fit weights |C|^p (1 = maximum likelihood for white
    noise, 0 = pure phase as in COSI-Corr; 0.5 keeps ~1/700 px on synthetic texture and follows
    real imagery, whose strong low frequencies do not always move with the surface, best);
    ``min_support`` windows whose contrast is carried by less than this share of their pixels
    (specks, a lone edge: they match anything) get no vector and an SNR of 0;
    ``deform`` window deformation (:mod:`core.correlation.deform`) of the windows whose strain
    exceeds ``deform_strain`` (dimensionless displacement gradient), deformed again while their
    gradient changes enough to move them by ``deform_tolerance`` px (lattice drivers only: it
    needs neighbours).
    """

    window: tuple = (32, 32)
    search: float = None
    iterations: int = 2
    rolloff: float = 0.5
    mask_fraction: float = 0.1
    weighting: float = 0.5
    min_support: float = 0.05
    deform: bool = True
    deform_strain: float = DEFAULT_STRAIN
    deform_tolerance: float = DEFAULT_TOLERANCE

    def __post_init__(self):
        wy, wx = self.window
        for w in (wy, wx):
            if int(w) != w or w < 8 or w % 2:
                raise InputError(f"The correlation window must be an even number of pixels >= 8; "
                                 f"got {self.window}.")
        if self.search is not None and self.search < 0:
            raise InputError(f"The search range must be positive; got {self.search} px.")
        if not 0.0 < self.rolloff <= 1.0:
            raise InputError(f"The taper roll-off must be in (0, 1]; got {self.rolloff}.")
        if int(self.iterations) < 1:
            raise InputError(f"At least one sub-pixel iteration is needed; got {self.iterations}.")

    @property
    def search_px(self):
        """The search range in pixels (a quarter of the smaller window side by default)."""
        return float(self.search) if self.search is not None else min(self.window) / 4.0


def _clamp(x, lo, hi):
    """``x`` limited to ``[lo, hi]`` (NaN kept): np.clip's argument checks cost more than the
    clipping on the small per-window arrays of a batch."""
    return np.minimum(np.maximum(x, lo), hi)


def _terms(values, basis):
    """``sum_k values[n, k] basis[j, k]`` per window as float64 rows ``j`` (a small product done
    by einsum, see ``Correlator.quad``)."""
    return np.einsum("nk,jk->jn", values, basis).astype(np.float64)


def raised_cosine(x, half, rolloff):
    """Raised-cosine taper at positions ``x`` (px from the centre): 1 in the middle, falling to 0
    at ``|x| = half`` over the outer ``rolloff`` fraction of ``half``."""
    r = np.abs(x) / half
    flat = 1.0 - rolloff
    t = _clamp((r - flat) / rolloff, 0.0, 1.0)
    return 0.5 * (1.0 + np.cos(np.pi * t))


class Correlator:
    """The batched estimator for one window shape. Create once, call :meth:`estimate` per batch."""

    def __init__(self, options=None, workers=-1):
        self.options = options or CorrelatorOptions()
        self.workers = workers  # scipy.fft threads per call
        wy, wx = (int(v) for v in self.options.window)
        self.wy, self.wx = wy, wx
        # the taper ends one pixel inside the window so that it can move by about +-1 px
        self.half = (wy / 2.0 - 1.0, wx / 2.0 - 1.0)
        self.pos_y = (np.arange(wy) - (wy - 1) / 2.0).astype(np.float32)
        self.pos_x = (np.arange(wx) - (wx - 1) / 2.0).astype(np.float32)
        self.uy = (TWO_PI * fft.fftfreq(wy)).astype(np.float32)  # radians per pixel
        self.ux = (TWO_PI * fft.rfftfreq(wx)).astype(np.float32)
        # half-plane bookkeeping: an interior rfft column stands for two frequencies; DC and the
        # Nyquist row and column (whose phase is ambiguous) stay out of the fit
        colw = np.full(self.ux.size, 2.0)
        colw[0] = 1.0
        colw[-1] = 0.0
        roww = np.ones(wy)
        roww[wy // 2] = 0.0
        base = roww[:, None] * colw[None, :]
        base[0, 0] = 0.0
        self.base_w = base.astype(np.float32)
        self.base_sum = float(base.sum())
        self.taper = np.outer(raised_cosine(self.pos_y, self.half[0], self.options.rolloff),
                              raised_cosine(self.pos_x, self.half[1], self.options.rolloff)
                              ).astype(np.float32)
        self.taper_sum = float(self.taper.sum(dtype=np.float64))
        t2 = self.taper.astype(np.float64) ** 2
        self.n_eff = float(t2.sum() ** 2 / (t2 * t2).sum())  # participation of even texture
        UY, UX = np.meshgrid(self.uy, self.ux, indexing="ij")
        UX, UY = UX.ravel(), UY.ravel()
        # (terms, frequencies), contracted by einsum rather than BLAS: OpenBLAS threads these
        # small products and its idle threads spin (sched_yield), doubling a batch's CPU time
        self.quad = np.stack([UX * UX, UX * UY, UY * UY]).astype(np.float32)
        self.lin = np.stack([UX, UY]).astype(np.float32)
        # integer lags searched on the correlation surface (indices in fft order)
        r = self.options.search_px
        lim_y, lim_x = int(min(np.ceil(r), wy / 2 - 2)), int(min(np.ceil(r), wx / 2 - 2))
        self.lag_y = np.r_[0:lim_y + 1, -lim_y:0] % wy  # lag 0 first: ties (flat windows) stay
        self.lag_x = np.r_[0:lim_x + 1, -lim_x:0] % wx

    # ---------------------------------------------------------------- pieces
    def _tapered(self, windows, fy, fx):
        """Windows tapered by raised cosines centred ``(fy, fx)`` px off the window centre
        (``None``: centred), after removing their taper-weighted mean (so their DC term is
        zero)."""
        o = self.options
        if fy is None:
            mean = np.einsum("nij,ij->n", windows, self.taper) / self.taper_sum
            out = windows - mean[:, None, None]
            out *= self.taper
            return out
        ty = raised_cosine(self.pos_y[None, :] - fy[:, None].astype(np.float32), self.half[0],
                           o.rolloff)
        tx = raised_cosine(self.pos_x[None, :] - fx[:, None].astype(np.float32), self.half[1],
                           o.rolloff)
        rows = np.einsum("nij,nj->ni", windows, tx)
        mean = (rows * ty).sum(axis=1) / np.maximum(ty.sum(axis=1) * tx.sum(axis=1), 1e-12)
        out = windows - mean[:, None, None]
        out *= ty[:, :, None]
        out *= tx[:, None, :]
        return out

    def _spectrum(self, windows, fy, fx):
        """rfft2 of :meth:`_tapered` windows."""
        return fft.rfft2(self._tapered(windows, fy, fx), axes=(-2, -1), workers=self.workers,
                         overwrite_x=True)

    def _support(self, tapered):
        """Share of a window carrying its contrast: the participation ratio of the tapered
        energy (summed over channels), 1 for evenly spread texture, ~k/N for k bright pixels."""
        e = tapered[0] * tapered[0]
        for t in tapered[1:]:
            e += t * t
        s1 = e.sum(axis=(1, 2), dtype=np.float64)
        s2 = (e * e).sum(axis=(1, 2), dtype=np.float64)
        return np.where(s2 > 0, s1 * s1 / np.maximum(s2, 1e-300), 0.0) / self.n_eff

    def _ramp(self, C, fy, fx):
        """``C`` times the phase plane of the shift ``(fy, fx)``: its phase is the residual."""
        ay = np.outer(fy, self.uy).astype(np.float32)
        ax = np.outer(fx, self.ux).astype(np.float32)
        ey = np.empty(ay.shape, np.complex64)
        ey.real, ey.imag = np.cos(ay), np.sin(ay)
        ex = np.empty(ax.shape, np.complex64)
        ex.real, ex.imag = np.cos(ax), np.sin(ax)
        E = C * ey[:, :, None]
        E *= ex[:, None, :]
        return E

    def _integer_peak(self, C):
        """Peak of the phase-correlation surface within the search limits, parabola-refined."""
        n = C.shape[0]
        # C / |C|, scaling the real and imaginary parts (numpy's complex / real division
        # promotes the divisor to complex and costs ten times more)
        P = C.copy()
        P.view(np.float32).reshape(C.shape + (2,))[...] *= (
            np.float32(1) / (np.abs(C) + np.float32(1e-30)))[..., None]
        surf = fft.irfft2(P, s=(self.wy, self.wx), axes=(-2, -1), workers=self.workers,
                          overwrite_x=True)
        ly, lx = self.lag_y, self.lag_x
        sub = surf[:, ly[:, None], lx[None, :]].reshape(n, -1)
        ky, kx = np.divmod(sub.argmax(axis=1), lx.size)
        iy, ix = ly[ky], lx[kx]
        idx = np.arange(n)
        c0 = surf[idx, iy, ix]

        def vertex(cm, cp):
            den = cm - 2 * c0 + cp
            good = den < 0
            return np.where(good, 0.5 * (cm - cp) / np.where(good, den, -1.0), 0.0)

        dy = vertex(surf[idx, (iy - 1) % self.wy, ix], surf[idx, (iy + 1) % self.wy, ix])
        dx = vertex(surf[idx, iy, (ix - 1) % self.wx], surf[idx, iy, (ix + 1) % self.wx])
        py = np.where(iy > self.wy // 2, iy - self.wy, iy) + _clamp(dy, -0.5, 0.5)
        px = np.where(ix > self.wx // 2, ix - self.wx, ix) + _clamp(dx, -0.5, 0.5)
        return py, px

    def _fit(self, C, fy, fx, errors=False):
        """One step of the weighted phase-plane fit around ``(fy, fx)``.

        Returns the updates ``(dy, dx)`` and the SNR at ``(fy, fx)``, and with ``errors`` the
        standard errors ``(sy, sx)`` (px) of the fitted shift: the sandwich (heteroscedasticity-
        robust) covariance ``A^-1 (sum w^2 r^2 u u^T) A^-1`` of the weighted least squares, from
        the residual phases ``r`` left by the fit (they grow as the spectrum's coherence falls),
        times :data:`ERROR_SCALE`, which accounts for the frequencies that the taper makes
        dependent, with :data:`ERROR_FLOOR` added in quadrature (calibrated on synthetic pairs).
        Each frequency weighs ``|C|^p`` (see :class:`CorrelatorOptions`) if its cross-power passes
        the adaptive mask.
        The residual phase of ``E = C e^{i u.f}`` is linearised as ``Im E / |E|``, so the step is
        a closed-form 2 x 2 weighted least-squares solve, with no arctangent or unwrapping.
        """
        n = C.shape[0]
        o = self.options
        mag = np.abs(C)
        E = self._ramp(C, fy, fx)
        mean = np.einsum("nij,ij->n", mag, self.base_w) / self.base_sum
        # (a product: np.where broadcasting base_w costs ten times more)
        g = (mag >= (o.mask_fraction * mean)[:, None, None]) * self.base_w
        if o.weighting == 0.5:
            g /= np.sqrt(np.maximum(mag, np.float32(1e-30)))
        elif o.weighting != 1.0:
            g *= np.maximum(mag, np.float32(1e-30)) ** np.float32(o.weighting - 1.0)
        gm = g * mag  # = weight |C|^p
        den = np.einsum("nij->n", gm)
        snr = np.einsum("nij,nij->n", g, E.real) / np.maximum(den, 1e-30)
        a_xx, a_xy, a_yy = _terms(gm.reshape(n, -1), self.quad)
        b = _terms((g * E.imag).reshape(n, -1), self.lin)
        det = a_xx * a_yy - a_xy * a_xy
        ok = det > 1e-9 * np.maximum(a_xx * a_yy, 1e-30)
        det = np.where(ok, det, 1.0)
        # Im E = -|E| sin(u . delta) ~ -|E| u . delta, hence delta = -A^-1 b
        dx = -(a_yy * b[0] - a_xy * b[1]) / det
        dy = -(a_xx * b[1] - a_xy * b[0]) / det
        dy, dx = np.where(ok, dy, np.nan), np.where(ok, dx, np.nan)
        if not errors:
            return dy, dx, snr
        # residual phase of each frequency after the update (linearised, as the fit)
        res = E.imag / np.maximum(mag, np.float32(1e-30))  # |E| = |C|: the ramp is unimodular
        res += (self.ux[None, None, :] * dx[:, None, None].astype(np.float32) +
                self.uy[None, :, None] * dy[:, None, None].astype(np.float32))
        wr = gm * res
        b_xx, b_xy, b_yy = _terms((wr * wr).reshape(n, -1), self.quad)
        # A^-1 B A^-1 with A = [[a_xx, a_xy], [a_xy, a_yy]], B likewise; diagonal terms only
        i_xx, i_xy, i_yy = a_yy / det, -a_xy / det, a_xx / det
        var_x = i_xx * i_xx * b_xx + 2 * i_xx * i_xy * b_xy + i_xy * i_xy * b_yy
        var_y = i_xy * i_xy * b_xx + 2 * i_xy * i_yy * b_xy + i_yy * i_yy * b_yy
        sy = np.hypot(ERROR_SCALE * np.sqrt(np.maximum(var_y, 0.0)), ERROR_FLOOR)
        sx = np.hypot(ERROR_SCALE * np.sqrt(np.maximum(var_x, 0.0)), ERROR_FLOOR)
        return dy, dx, snr, np.where(ok, sy, np.nan), np.where(ok, sx, np.nan)

    # ---------------------------------------------------------------- the estimator
    def estimate(self, ref, sec, rows, cols, prior_rows=None, prior_cols=None, errors=False):
        """Displacements of the windows whose top-left pixels in ``ref`` are ``(rows, cols)``.

        ``ref`` and ``sec`` are 2-D images or ``(channel, row, col)`` stacks (e.g. the two
        components of orientation images), whose cross-power spectra are summed. The secondary
        window starts at ``(rows + prior_rows, cols + prior_cols)`` (integer priors, default 0)
        before the search. Returns ``(d_row, d_col, snr)`` float64 arrays: the total displacement
        in px, prior included, NaN where a window leaves the images, holds NoData, has no texture
        or the fit fails; the SNR is 0 for windows without texture. With ``errors``, also
        ``(s_row, s_col)``: each vector's estimated standard error in px (see :meth:`_fit`).
        """
        wy, wx = self.wy, self.wx
        n = len(rows)
        rows = np.asarray(rows, np.int64)
        cols = np.asarray(cols, np.int64)
        pr = np.zeros(n, np.int64) if prior_rows is None else np.asarray(prior_rows, np.int64)
        pc = np.zeros(n, np.int64) if prior_cols is None else np.asarray(prior_cols, np.int64)
        ref_w, ok = _gather(ref, rows, cols, wy, wx)
        sec_w, ok_s = _gather(sec, rows + pr, cols + pc, wy, wx)
        ok &= ok_s
        t_ref = [self._tapered(w, None, None) for w in ref_w]
        t_sec = [self._tapered(w, None, None) for w in sec_w]
        # windows whose contrast sits in a few pixels (specks, a lone edge) match anything
        sparse = np.minimum(self._support(t_ref), self._support(t_sec)) < self.options.min_support
        Rc = [np.conj(fft.rfft2(t, axes=(-2, -1), workers=self.workers, overwrite_x=True)) for t in t_ref]
        C = Rc[0] * fft.rfft2(t_sec[0], axes=(-2, -1), workers=self.workers, overwrite_x=True)
        for r, t in zip(Rc[1:], t_sec[1:]):
            C += r * fft.rfft2(t, axes=(-2, -1), workers=self.workers, overwrite_x=True)
        py, px = self._integer_peak(C)
        # integer re-centring in the spatial domain: move the secondary window by whole pixels
        iy, ix = np.round(py).astype(np.int64), np.round(px).astype(np.int64)
        fy, fx = py - iy, px - ix
        moved = np.flatnonzero((iy != 0) | (ix != 0))
        if moved.size:
            sec_m, ok_m = _gather(sec, rows[moved] + pr[moved] + iy[moved],
                                  cols[moved] + pc[moved] + ix[moved], wy, wx)
            for w, m in zip(sec_w, sec_m):
                w[moved] = m
            ok[moved] &= ok_m
            # the first fit of a window that did not move starts from its unshifted spectrum
            C[moved] = self._cross([r[moved] for r in Rc], sec_m, fy[moved], fx[moved])
        # sub-pixel: the secondary taper follows the estimate, so the fixed point is unbiased
        fy, fx, snr, sy, sx = self._subpixel(Rc, sec_w, fy, fx, first=C)
        # a fit that ends more than 0.6 px away re-centres once more and starts again
        far = np.flatnonzero((np.abs(fy) > 0.6) | (np.abs(fx) > 0.6))
        if far.size:
            jy, jx = np.round(fy[far]).astype(np.int64), np.round(fx[far]).astype(np.int64)
            iy[far] += jy
            ix[far] += jx
            sec_f, ok_f = _gather(sec, rows[far] + pr[far] + iy[far], cols[far] + pc[far] + ix[far],
                                  wy, wx)
            ok[far] &= ok_f
            fy[far], fx[far], snr[far], sy[far], sx[far] = self._subpixel(
                [r[far] for r in Rc], sec_f, fy[far] - jy, fx[far] - jx)
        bad = ~ok | sparse | ~np.isfinite(fy + fx + snr) | (np.abs(fy) > 1.0) | (np.abs(fx) > 1.0)
        d_row = (pr + iy) + fy
        d_col = (pc + ix) + fx
        snr = _clamp(np.nan_to_num(snr, nan=0.0), 0.0, 1.0)
        snr[sparse] = 0.0
        d_row[bad] = np.nan
        d_col[bad] = np.nan
        snr[~ok] = np.nan
        if not errors:
            return d_row, d_col, snr
        sy[bad] = np.nan
        sx[bad] = np.nan
        return d_row, d_col, snr, sy, sx

    def refine(self, ref, coeffs, rows, cols, d_row, d_col, grad):
        """Re-estimate displacements ``(d_row, d_col)`` (px, from a first pass) with the
        secondary windows deformed by the gradients ``grad`` (:mod:`core.correlation.deform`;
        ``coeffs`` its spline coefficients of the secondary image). Returns ``(d_row, d_col,
        snr, s_row, s_col)``, NaN where the deformed window leaves the image or the fit fails."""
        rows = np.asarray(rows, np.int64)
        cols = np.asarray(cols, np.int64)
        iy, ix = np.round(d_row).astype(np.int64), np.round(d_col).astype(np.int64)
        fy, fx = d_row - iy, d_col - ix
        ref_w, ok = _gather(ref, rows, cols, self.wy, self.wx)
        sec_w = warped_windows(coeffs, rows + iy, cols + ix, grad, self.pos_y, self.pos_x)
        for w in sec_w:
            finite = np.isfinite(w).all(axis=(1, 2))
            w[~finite] = 0.0
            ok &= finite
        Rc = [np.conj(fft.rfft2(self._tapered(w, None, None), axes=(-2, -1),
                                workers=self.workers, overwrite_x=True)) for w in ref_w]
        # the fit starts from the fraction (I + G)^-1 f that the deformed window shows
        g_rr, g_rc, g_cr, g_cc = grad
        det = (1 + g_rr) * (1 + g_cc) - g_rc * g_cr
        fy, fx = ((1 + g_cc) * fy - g_rc * fx) / det, ((1 + g_rr) * fx - g_cr * fy) / det
        sy_, sx_, snr, sy, sx = self._subpixel(Rc, sec_w, fy, fx, iterations=REFINE_ITERATIONS)
        bad = ~ok | ~np.isfinite(sy_ + sx_ + snr) | (np.abs(sy_) > 1.0) | (np.abs(sx_) > 1.0)
        # pixels p sample the secondary at p + i + G (p - centre): content that moved by
        # i + f shows as the pure shift s = (I + G)^-1 f, hence f = (I + G) s
        fy = sy_ + g_rr * sy_ + g_rc * sx_
        fx = sx_ + g_cr * sy_ + g_cc * sx_
        out = [iy + fy, ix + fx, _clamp(np.nan_to_num(snr, nan=0.0), 0.0, 1.0), sy, sx]
        for a in out:
            a[bad] = np.nan
        return tuple(out)

    def _subpixel(self, Rc, sec_w, fy, fx, first=None, iterations=None):
        """The iterations of the phase-plane fit (``iterations``, default the options'), each
        with the secondary taper moved to the current estimate (the first may use a given
        cross-power ``first``); returns ``(fy, fx, snr, sy, sx)``, the standard errors from the
        last iteration's fit."""
        iterations = iterations or self.options.iterations
        last = iterations - 1
        for it in range(iterations):
            C = first if it == 0 and first is not None else self._cross(Rc, sec_w, fy, fx)
            dy, dx, snr, *err = self._fit(C, fy, fx, errors=it == last)
            fy = fy + _clamp(dy, -0.5, 0.5)
            fx = fx + _clamp(dx, -0.5, 0.5)
        return (fy, fx, snr) + tuple(err)

    def _cross(self, Rc, sec_w, fy, fx):
        """Cross-power spectrum summed over channels, secondary taper centred at (fy, fx)."""
        C = Rc[0] * self._spectrum(sec_w[0], fy, fx)
        for r, w in zip(Rc[1:], sec_w[1:]):
            C += r * self._spectrum(w, fy, fx)
        return C


def _gather(img, rows, cols, wy, wx):
    """Windows at top-left ``(rows, cols)`` as a list (one per channel) of (n, wy, wx) float32
    arrays, and ``ok``: False where a window leaves the image or holds NaN (zero-filled)."""
    img = np.asarray(img)
    chans = [img] if img.ndim == 2 else list(img)
    H, W = chans[0].shape
    inside = (rows >= 0) & (cols >= 0) & (rows + wy <= H) & (cols + wx <= W)
    r = np.where(inside, rows, 0)
    c = np.where(inside, cols, 0)
    out = []
    ok = inside.copy()
    for ch in chans:
        win = sliding_window_view(ch, (wy, wx))[r, c].astype(np.float32, copy=False)
        finite = np.isfinite(win).all(axis=(1, 2))
        if not finite.all():
            win[~finite] = 0.0
        ok &= finite
        out.append(win)
    return out, ok


# ------------------------------------------------------------------ window layout and drivers

def window_layout(shape, window, step):
    """Where the windows go on an image of ``shape`` (rows, cols) for a ``step`` in pixels.

    Returns ``(out_shape, first, offset)``: the output grid's (rows, cols); the top-left pixel
    (row, col) of its first window; and the offset (row, col) in pixels (0 or 0.5) of the output
    grid's origin from the image's. Output pixel ``(i, j)`` is centred on its window's centre, at
    continuous pixel coordinates ``offset + (i + 0.5) * step``; its size is ``step`` pixels.
    Windows reaching past the image edges give NaN.
    """
    out = []
    for n, w in zip(shape, window):
        offset = (w / 2.0 - step / 2.0) % 1.0
        count = int((n - offset) // step)
        first = int(round(offset + 0.5 * step - w / 2.0))
        out.append((count, first, offset))
    (ny, fy, oy), (nx, fx, ox) = out
    return (ny, nx), (fy, fx), (oy, ox)


def correlate_arrays(ref, sec, step=2, options=None, prior=(0.0, 0.0), batch=1024, progress=None,
                     errors=False):
    """Correlate two co-registered, pre-processed images held in memory.

    ``ref``, ``sec``: 2-D arrays (or channel stacks) on the same grid, NaN = NoData; ``prior``:
    the expected (d_row, d_col) in px, scalars or arrays on the output grid. Returns
    ``(d_row, d_col, snr)`` arrays on the output grid of :func:`window_layout` (displacement in
    px, rows downward, columns east), and with ``errors`` the standard errors (s_row, s_col) px.
    """
    options = options or CorrelatorOptions()
    ref = np.asarray(ref, np.float32)
    sec = np.asarray(sec, np.float32)
    if ref.shape != sec.shape:
        raise InputError(f"The reference {ref.shape} and secondary {sec.shape} images differ in "
                         "shape.")
    (ny, nx), (r0, c0), _ = window_layout(ref.shape[-2:], options.window, step)
    if ny <= 0 or nx <= 0:
        raise InputError(f"The images ({ref.shape[-2]} x {ref.shape[-1]} px) are smaller than one "
                         f"step ({step} px).")
    rr, cc = np.meshgrid(r0 + step * np.arange(ny), c0 + step * np.arange(nx), indexing="ij")
    prior = tuple(np.broadcast_to(np.asarray(p, float), (ny, nx)).ravel() for p in prior)
    out = correlate_windows(ref, sec, rr.ravel(), cc.ravel(), options, prior, batch, progress,
                            errors=errors, lattice=(ny, nx, step))
    return tuple(a.reshape(ny, nx) for a in out)


def correlate_windows(ref, sec, rows, cols, options=None, prior=(0.0, 0.0), batch=1024,
                      progress=None, threads=None, errors=False, lattice=None):
    """Correlate the windows with top-left pixels ``(rows, cols)`` of ``ref`` in batches.

    ``prior``: the expected (d_row, d_col) in px, scalars or one value per window (a prior
    velocity field). Runs the coarse first pass when the search range needs it
    (:func:`prior_offsets`), then the
    estimator on batches of up to ``batch`` windows (:func:`windows_per_batch`), ``threads``
    of them at a time (default: one per CPU core, at most 8; numpy and the FFTs release the GIL).
    Progress is reported, and cancellation checked, after each batch; on cancel the batches not
    started are dropped. Returns flat ``(d_row, d_col, snr)``, with ``errors`` also the standard
    errors ``(s_row, s_col)`` in px. ``lattice`` ``(ny, nx, step)``: the windows form a
    row-major lattice ``step`` px apart, which enables window deformation
    (:func:`deform_lattice`) when the options ask for it.
    """
    options = options or CorrelatorOptions()
    progress = ensure(progress)
    rows = np.asarray(rows, np.int64).ravel()
    cols = np.asarray(cols, np.int64).ravel()
    coarse_share = 0.1 if needs_coarse_pass(options) else 0.0
    p_rows, p_cols = prior_offsets(
        ref, sec, rows, cols, options, prior,
        progress.sub(0.0, coarse_share, "Coarse search with larger windows" if coarse_share else None))
    threads = threads or min(os.cpu_count() or 1, MAX_THREADS)
    engine = Correlator(options, workers=1 if threads > 1 else -1)
    out = np.full((5, rows.size), np.nan)  # d_row, d_col, snr, s_row, s_col
    main = progress.sub(coarse_share, 1.0)
    # small jobs get smaller batches so that every thread has work; large windows too (memory)
    batch = min(int(batch), max(256, -(-rows.size // (4 * threads))))
    batch = windows_per_batch(options.window, np.ndim(ref) - 1, batch)
    spans = [(s, min(s + batch, rows.size)) for s in range(0, rows.size, batch)]

    def run(span):
        s, e = span
        out[:, s:e] = engine.estimate(ref, sec, rows[s:e], cols[s:e], p_rows[s:e], p_cols[s:e],
                                      errors=True)
        return e - s

    _run_spans(threads, spans, run, lambda done: main.update(done / rows.size))
    if lattice is not None and options.deform:
        deform_lattice(engine, ref, sec, rows, cols, out, lattice, threads, batch, progress)
    return tuple(out) if errors else tuple(out[:3])


def _run_spans(threads, spans, run, report):
    """Run ``run(span)`` (returns the windows done) on a pool; ``report(total done)`` after each
    in order; on an exception (e.g. cancel) the spans not started are dropped."""
    done = 0
    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(run, span) for span in spans]
        try:
            for f in futures:
                done += f.result()
                report(done)
        except BaseException:
            for f in futures:
                f.cancel()
            raise


def deform_lattice(engine, ref, sec, rows, cols, out, lattice, threads, batch, progress):
    """Window deformation on a lattice of first-pass results ``out`` (rows d_row, d_col, snr,
    s_row, s_col; updated in place): up to :data:`~core.correlation.deform.MAX_ITERATIONS`
    passes over the windows whose strain exceeds the options' threshold. Each pass takes the
    gradients from the latest vectors; a window deformed before is deformed again only if its
    gradient has moved by more than the tolerance allows
    (:func:`~core.correlation.deform.gradient_tolerance`): its fit itself has converged."""
    ny, nx, step = lattice
    o = engine.options
    coeffs = None
    used = np.full((4, rows.size), np.nan)  # the gradient each window was last deformed with
    limit = gradient_tolerance(o.deform_tolerance)
    for _ in range(MAX_ITERATIONS):
        grad = np.stack(lattice_gradient(out[0].reshape(ny, nx), out[1].reshape(ny, nx), step,
                                         o.window)).reshape(4, -1)
        strain = np.nan_to_num(np.max(np.abs(grad), axis=0), nan=0.0)
        moved = np.max(np.abs(grad - used), axis=0)  # NaN: never deformed
        sel = np.flatnonzero((strain > o.deform_strain) & np.isfinite(out[0]) &
                             ~(moved <= limit))
        if sel.size == 0:
            break
        progress.check()
        coeffs = coeffs if coeffs is not None else spline_coefficients(sec)
        g = grad[:, sel]
        new = np.full((5, sel.size), np.nan)

        def run(span, sel=sel, g=g, new=new, coeffs=coeffs):
            s, e = span
            new[:, s:e] = engine.refine(ref, coeffs, rows[sel[s:e]], cols[sel[s:e]],
                                        out[0, sel[s:e]], out[1, sel[s:e]], g[:, s:e])
            return e - s

        spans = [(s, min(s + batch, sel.size)) for s in range(0, sel.size, batch)]
        _run_spans(threads, spans, run, lambda done: None)
        good = np.isfinite(new[0])
        out[:, sel[good]] = new[:, good]
        used[:, sel] = g


# Bytes per window pixel and image channel while windows are correlated: the windows, their
# tapered copies, spectra, cross-power and correlation surface (float32 / complex64).
WORK_BYTES_PER_PIXEL = 40
# Working memory of one batch of windows; batches of large windows hold fewer windows.
BATCH_BYTES = 256 * 2 ** 20
# Window pixels (x channels) per batch: the batch's float32 windows fill ~1 MB, a core's cache,
# so that the many elementwise passes over them do not go to main memory (256 windows of
# 32 x 32 px: 1.8x the windows per CPU-second of batches of 1024, bench_correlation).
CACHE_PIXELS = 2 ** 18


def windows_per_batch(window, channels=1, limit=1024):
    """Windows of ``window`` (rows, cols) px per batch: at most ``limit``, fewer so that the
    windows fit :data:`CACHE_PIXELS` and a batch's working memory :data:`BATCH_BYTES`."""
    pixels = int(window[0]) * int(window[1]) * max(1, channels)
    return int(max(1, min(int(limit), BATCH_BYTES // (pixels * WORK_BYTES_PER_PIXEL),
                          CACHE_PIXELS // pixels)))


def working_memory(options, channels=1, threads=None):
    """Bytes the windows in work need at least: a batch per thread, or one coarse-pass window
    (:func:`coarse_window`, single-threaded) when the search range asks for that pass."""
    threads = threads or min(os.cpu_count() or 1, MAX_THREADS)
    wy, wx = options.window
    per_px = max(1, channels) * WORK_BYTES_PER_PIXEL
    main = threads * windows_per_batch(options.window, channels) * wy * wx * per_px
    coarse = coarse_window(options) ** 2 * per_px if needs_coarse_pass(options) else 0
    return max(main, coarse)


def needs_coarse_pass(options):
    """True when the search range exceeds a quarter of the window (the normal pass's reach)."""
    return options.search_px > min(options.window) / 4.0


def coarse_window(options):
    """Side (px, even) of the coarse pass's windows: 4 x search range, at least 2 x window."""
    return int(2 * np.ceil(max(2 * max(options.window), 4 * options.search_px) / 2.0))


def context_margin(options, prior=(0.0, 0.0)):
    """Pixels of image needed around the windows' footprint (search, prior, coarse pass);
    ``prior`` (px) may hold arrays (their largest magnitude counts)."""
    margin = options.search_px + 2
    if needs_coarse_pass(options):
        margin = max(margin, (coarse_window(options) - min(options.window)) / 2.0 +
                     options.search_px + 2)
    reach = max(float(np.max(np.abs(p), initial=0.0)) for p in prior)
    return int(np.ceil(margin + reach))


def prior_offsets(ref, sec, rows, cols, options, prior=(0.0, 0.0), progress=None):
    """Integer prior offsets (rows, cols) per window: the ``prior`` (px; scalars or one value
    per window) plus, when the search range exceeds a quarter of the window, the correction
    found by a coarse first pass.

    The coarse pass correlates windows of :func:`coarse_window` pixels on a lattice of a quarter
    of that spacing covering the windows' centres, each starting from the prior of its nearest
    window; their departures from that prior are median-filtered over 3 x 3 neighbours, gaps
    filled from the nearest coarse value, and each window adds the departure of its nearest
    lattice point to its own prior (so a prior field's gradients are kept at full resolution).
    """
    progress = ensure(progress)
    n = rows.size
    pr = np.round(np.broadcast_to(np.asarray(prior[0], float), n)).astype(np.int64)
    pc = np.round(np.broadcast_to(np.asarray(prior[1], float), n)).astype(np.int64)
    if n == 0 or not needs_coarse_pass(options):
        return pr, pc
    wy, wx = options.window
    big = coarse_window(options)
    coarse = Correlator(replace(options, window=(big, big), iterations=1))
    centre_r = rows + wy / 2.0
    centre_c = cols + wx / 2.0
    spacing = big / 4.0
    lat_r = np.arange(centre_r.min(), centre_r.max() + spacing, spacing)
    lat_c = np.arange(centre_c.min(), centre_c.max() + spacing, spacing)
    gr, gc = np.meshgrid(lat_r, lat_c, indexing="ij")
    top = np.round(gr.ravel() - big / 2.0).astype(np.int64)
    left = np.round(gc.ravel() - big / 2.0).astype(np.int64)
    # each lattice point starts from the prior of its nearest window
    _, nearest = cKDTree(np.column_stack([centre_r, centre_c])).query(
        np.column_stack([gr.ravel(), gc.ravel()]))
    base_r, base_c = pr[nearest], pc[nearest]
    d_r = np.full(top.size, np.nan)
    d_c = np.full(top.size, np.nan)
    chunk = windows_per_batch((big, big), np.ndim(ref) - 1, 512)
    for s in range(0, top.size, chunk):
        e = min(s + chunk, top.size)
        d_r[s:e], d_c[s:e], _ = coarse.estimate(ref, sec, top[s:e], left[s:e], base_r[s:e],
                                                base_c[s:e])
        progress.update(e / top.size)
    # departures from the prior: 3 x 3 median ignoring NaN (NaN only where the whole
    # neighbourhood is), then gaps filled
    d_r = _fill_nearest(nanmedian0(neighbours((d_r - base_r).reshape(gr.shape), 3))[0])
    d_c = _fill_nearest(nanmedian0(neighbours((d_c - base_c).reshape(gr.shape), 3))[0])
    if d_r is None or d_c is None:
        return pr, pc
    ir = np.clip(np.round((centre_r - lat_r[0]) / spacing).astype(np.int64), 0, lat_r.size - 1)
    ic = np.clip(np.round((centre_c - lat_c[0]) / spacing).astype(np.int64), 0, lat_c.size - 1)
    return (pr + np.round(d_r[ir, ic]).astype(np.int64),
            pc + np.round(d_c[ir, ic]).astype(np.int64))


def _fill_nearest(a):
    """NaN cells take the value of the nearest finite cell; None when none is finite."""
    bad = ~np.isfinite(a)
    if bad.all():
        return None
    if not bad.any():
        return a
    idx = ndimage.distance_transform_edt(bad, return_distances=False, return_indices=True)
    return a[tuple(idx)]
