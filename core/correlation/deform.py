"""Window deformation: refine vectors where the displacement varies across a window.

A window that straddles shear (glacier margins, tributary junctions) sees its content move by
different amounts at its edges; the phase-plane fit then measures a blurred, biased shift
(~0.01 px at 1-2 % strain). After a first pass on the window lattice, the local displacement
gradient ``G = d(d_row, d_col) / d(row, col)`` is estimated from the neighbouring vectors, and
the secondary window is resampled at ``p + G (p - centre)`` (the affine motion of its pixels
relative to the centre, integer offset included, the sub-pixel shift left to the fit): the fit
then sees a pure shift; its fit iterates to convergence (:data:`REFINE_ITERATIONS`). The
gradients are then taken again from the refined vectors, and a window is deformed again only where
its gradient has moved by more than would shift its vector by half of ``tolerance`` px
(:func:`gradient_tolerance`): on 1-2 % shear, 1.1-1.7 deformations per window, against 2.1-2.2
when every window whose vector moved by ``tolerance`` was deformed again, for the same error.

Only windows whose strain (largest |G| element) exceeds ``strain`` are deformed, so uniform
motion keeps the resampling-free estimator; resampling is a cubic B-spline of the secondary image
(its small ``<= strain x window / 2`` px moves cost ~1e-3 px).
"""

import numpy as np
from scipy import ndimage

DEFAULT_STRAIN = 0.004  # 0.4 %: below it the moved (undeformed) window is within ~0.002 px
DEFAULT_TOLERANCE = 0.001  # px
MAX_ITERATIONS = 3
REFINE_ITERATIONS = 2  # fit iterations per deformed window: its fit converges in one pass
# px of error per unit of strain a window is not deformed for (moved only: 0.0063 px at 1 %,
# 0.0124 px at 2 %)
ERROR_PER_STRAIN = 0.6
SPLINE_PAD = 2  # px of mirrored coefficients around the image (cubic taps reach 2 px)
WARP_CHUNK = 32  # windows resampled at once (cache-sized: 16 gathered taps per pixel)


def lattice_gradient(d_row, d_col, step, window):
    """Displacement gradient on a window lattice (``(ny, nx)`` arrays, px, ``step`` px apart):
    ``(g_rr, g_rc, g_cr, g_cc)`` = d d_row/d row, d d_row/d col, d d_col/d row, d d_col/d col.

    Differences span about a window (neighbours closer than that share most of their pixels, so
    their difference is mostly noise); where a neighbour that far is missing (edges, gaps), the
    centred difference over a shorter span, then the one-sided one, takes over; NaN where no
    neighbour is valid."""
    h = gradient_reach(window, step)
    # (ahead, behind, span in lattice steps): centred, the longest span first, then one-sided,
    # forward then backward
    spans = [(k, -k, 2 * k) for k in range(h, 0, -1)]
    spans += [s for k in range(h, 0, -1) for s in ((k, 0, k), (0, -k, k))]
    out = []
    for d in (d_row, d_col):
        for axis in (0, 1):
            g = np.full(d.shape, np.nan)
            for ahead, behind, span in spans:
                gap = np.isnan(g)
                if not gap.any():  # every vector has its gradient
                    break
                g[gap] = ((_shifted(d, axis, ahead) - _shifted(d, axis, behind)) /
                          (span * step))[gap]
            out.append(g)
    return tuple(out)


def gradient_tolerance(tolerance=DEFAULT_TOLERANCE):
    """The change of a window's gradient (dimensionless) that moves its vector by about half of
    ``tolerance`` px: smaller changes since its last deformation need no new one (measured on
    1-2 % shear: 1.1-1.7 deformations per window, the same error as 2.1-2.2 without it)."""
    return tolerance / (2.0 * ERROR_PER_STRAIN)


def gradient_reach(window, step):
    """Lattice rows (and columns) on each side that a window's gradient is taken over: about
    half a window (:func:`lattice_gradient`)."""
    return max(1, int(round(min(window) / (2.0 * step))))


def _shifted(a, axis, k):
    """``b[i] = a[i + k]`` along ``axis`` (NaN beyond the edge)."""
    b = np.full(a.shape, np.nan)
    n = a.shape[axis]
    if abs(k) < n:
        src = [slice(None)] * 2
        dst = [slice(None)] * 2
        src[axis] = slice(max(k, 0), n + min(k, 0))
        dst[axis] = slice(max(-k, 0), n + min(-k, 0))
        b[tuple(dst)] = a[tuple(src)]
    return b


def warped_windows(coeffs, top, left, grad, pos_y, pos_x):
    """Secondary windows resampled at ``(top, left) + p + G (p - centre)`` from the cubic
    B-spline ``coeffs`` of :func:`spline_coefficients` (one array per channel); ``grad`` =
    (g_rr, g_rc, g_cr, g_cc) per window; NaN where a window reaches outside the image or near
    NoData. Returns a list of (n, wy, wx) float32 arrays.

    The spline is evaluated with numpy, :data:`WARP_CHUNK` windows at a time (16 coefficients
    and separable weights per pixel): the values of ``ndimage.map_coordinates(order=3,
    mode='mirror')``, in 0.6x its time and without holding the GIL, so that the threads of
    :func:`core.correlation.engine.correlate_windows` warp in parallel."""
    g_rr, g_rc, g_cr, g_cc = (np.asarray(g, np.float32)[:, None, None] for g in grad)
    y, x = pos_y[None, :, None], pos_x[None, None, :]
    cy, cx = (pos_y.size - 1) / 2.0, (pos_x.size - 1) / 2.0
    rr = (top[:, None, None] + cy + y) + (g_rr * y + g_rc * x)
    cc = (left[:, None, None] + cx + x) + (g_cr * y + g_cc * x)
    h, w = (n - 2 * SPLINE_PAD for n in coeffs[0].shape)
    outside = ((rr.min(axis=(1, 2)) < 0) | (rr.max(axis=(1, 2)) > h - 1) |
               (cc.min(axis=(1, 2)) < 0) | (cc.max(axis=(1, 2)) > w - 1))
    stride = w + 2 * SPLINE_PAD
    out = [np.empty(rr.shape, np.float32) for _ in coeffs]
    for s in range(0, rr.shape[0], WARP_CHUNK):
        r, c = rr[s:s + WARP_CHUNK], cc[s:s + WARP_CHUNK]
        i0, j0 = np.floor(r), np.floor(c)
        wr, wc = _bspline_weights(r - i0), _bspline_weights(c - j0)
        # flat index of each pixel's first tap (-1, -1) in the padded coefficients
        base = (i0.astype(np.intp) + SPLINE_PAD - 1) * stride + (j0.astype(np.intp) +
                                                                 SPLINE_PAD - 1)
        tap = np.empty(r.shape, np.float32)
        row = np.empty(r.shape, np.float32)
        for co, o in zip(coeffs, out):
            flat = co.ravel()
            acc = o[s:s + WARP_CHUNK]
            acc[...] = 0.0
            for a in range(4):
                for b in range(4):
                    # tap (a, b) of every pixel: the same indices into the coefficients moved by
                    # a rows and b columns (no index arithmetic per tap)
                    flat[a * stride + b:].take(base, out=tap, mode="clip")
                    if b == 0:
                        np.multiply(wc[0], tap, out=row)
                    else:
                        tap *= wc[b]
                        row += tap
                row *= wr[a]
                acc += row
    for o in out:
        o[outside] = np.nan
    return out


def _bspline_weights(t):
    """The cubic B-spline weights of the taps at -1, 0, 1, 2 for fractions ``t`` in [0, 1)."""
    t = t.astype(np.float32)
    u = 1.0 - t
    t2 = t * t
    return (u * u * u / 6.0, (3.0 * t2 * t - 6.0 * t2 + 4.0) / 6.0,
            (-3.0 * t2 * t + 3.0 * t2 + 3.0 * t + 1.0) / 6.0, t2 * t / 6.0)


def spline_coefficients(sec):
    """Cubic B-spline coefficients (float32) of each channel of ``sec``, padded by
    :data:`SPLINE_PAD` mirrored pixels (the taps beyond the edges); NaN become NaN again after
    resampling: their neighbourhood, three pixels wide, is set to NaN in the result."""
    chans = [sec] if np.ndim(sec) == 2 else list(sec)
    out = []
    for ch in chans:
        bad = ~np.isfinite(ch)
        c = ndimage.spline_filter(np.where(bad, 0.0, ch).astype(np.float64), order=3,
                                  mode="mirror").astype(np.float32)
        if bad.any():
            c[ndimage.binary_dilation(bad, iterations=3)] = np.nan
        out.append(np.pad(c, SPLINE_PAD, mode="reflect"))  # numpy's reflect = ndimage's mirror
    return out
