"""Helpers of the tests and benchmarks that the shipped plugin does not need.

Imported as ``glacier_velocity.test.helpers`` (the plugin link in .build/plugins puts the
checkout on the path as ``glacier_velocity``), from test/ and bench/ alike.
"""

import numpy as np

from glacier_velocity.core.io import pixel_series
from glacier_velocity.core.io.dates import Interval, parse_date


def simulate_monthly_series(n, years=10, first_year=2015, mean=100.0, seasonal=0.3, phi=0.6,
                            sigma=0.1, trend=0.0, seed=0):
    """``(values (months, n) float32, intervals)``: monthly series for calibration studies.

    Each series is ``mean * (1 + seasonal * sin(2 pi t) + trend * (t - t_mid) / 10)`` plus AR(1)
    noise with lag-one correlation ``phi`` and marginal standard deviation ``sigma * mean``
    (``seasonal``, ``trend`` per decade and ``sigma`` are fractions of the mean; t in decimal
    years). Deterministic for a given seed.
    """
    intervals = [Interval.month(first_year + m // 12, m % 12 + 1) for m in range(12 * years)]
    t = np.array([iv.decimal_year for iv in intervals])
    rng = np.random.default_rng(seed)
    noise = np.empty((len(t), n))
    noise[0] = rng.standard_normal(n)
    innovations = rng.standard_normal((len(t), n)) * np.sqrt(1.0 - phi ** 2)
    for k in range(1, len(t)):  # a loop over time steps, vectorised over the series
        noise[k] = phi * noise[k - 1] + innovations[k]
    signal = 1.0 + seasonal * np.sin(2 * np.pi * t) + trend * (t - t.mean()) / 10.0
    return (mean * (signal[:, None] + sigma * noise)).astype(np.float32), intervals


def read_pixel_series(path, x, y, label=None):
    """The series of the stack ``path`` at ``(x, y)`` (its CRS), or None outside the stack."""
    reader = pixel_series.StackPixelReader(path)
    try:
        return reader.read(x, y, label)
    finally:
        reader.close()


def read_series_csv(path):
    """Read a CSV of the dock's export (``pixel_series.write_series_csv``):
    ``(dates, {label: float64 array})``, NaN where a cell is empty."""
    rows = pixel_series.read_table_rows(path, "series CSV")
    assert rows and "date" in rows[0], f"the series CSV '{path}' has no 'date' column"
    dates = [parse_date(r["date"]) for r in rows]
    labels = [k for k in rows[0] if k != "date"]
    return dates, {k: np.array([float(r[k]) if r[k] else np.nan for r in rows]) for k in labels}


def fourier_pair(size, d_col, d_row, noise, rng, cutoff=0.15, margin=24):
    """Band-limited texture (|f| < ``cutoff`` cycles/px) and its copy shifted by exactly
    (``d_col``, ``d_row``) px in the Fourier domain, with Gaussian noise of ``noise`` (a number or
    an array broadcast over the image) x the image std; the periodic wrap-around is cut off
    (``margin`` px each side)."""
    n = size + 2 * margin
    f = np.fft.fft2(rng.standard_normal((n, n)))
    fy, fx = np.fft.fftfreq(n)[:, None], np.fft.fftfreq(n)[None, :]
    f *= np.hypot(fx, fy) < cutoff
    ref = np.fft.ifft2(f).real
    sec = np.fft.ifft2(f * np.exp(-2j * np.pi * (fx * d_col + fy * d_row))).real
    inner = (slice(margin, -margin),) * 2
    sd = ref.std()
    return tuple((a[inner] + np.asarray(noise) * sd * rng.standard_normal((size, size)))
                 .astype(np.float32) for a in (ref, sec))
