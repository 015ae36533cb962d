"""NaN-aware Gaussian smoothing (normalised convolution), shared by pre-filters and gap filling."""

import numpy as np
from scipy import ndimage


def nan_gaussian(field, sigma, mode="constant", truncate=4.0, min_weight=1e-6):
    """Gaussian smoothing of ``field`` that ignores NaN: smooth(values) / smooth(valid weights).

    ``sigma`` (pixels) is a number or one per axis.

    Pixels whose valid weight is below ``min_weight`` are NaN. ``mode`` is scipy's edge mode:
    'constant' treats outside the array as missing (the principled choice), 'nearest' extends the
    edge (and lets a field without NaN skip the weight pass). float32 out.
    """
    valid = np.isfinite(field)
    if np.max(sigma) <= 0:  # sigma may be a per-axis sequence
        return np.asarray(field, np.float32)
    num = ndimage.gaussian_filter(np.where(valid, field, 0.0).astype(np.float32), sigma,
                                  mode=mode, truncate=truncate)
    if mode != "constant" and valid.all():
        return num  # the weights are 1 everywhere
    den = ndimage.gaussian_filter(valid.astype(np.float32), sigma, mode=mode, truncate=truncate)
    out = np.full(np.shape(field), np.nan, np.float32)
    np.divide(num, den, out=out, where=den > min_weight, casting="unsafe")
    return out
