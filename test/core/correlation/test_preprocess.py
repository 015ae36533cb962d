"""Pre-processing filters and anti-aliased down-sampling, against known answers."""

import numpy as np
import pytest

from glacier_velocity.core.correlation import preprocess as P
from glacier_velocity.core.correlation.engine import CorrelatorOptions, correlate_arrays
from glacier_velocity.core.errors import InputError
from glacier_velocity.core.sampledata.scene import band_limited_noise, render_pair_images


@pytest.fixture(scope="module")
def texture():
    return band_limited_noise((128, 128), np.random.default_rng(0), 0.3).astype(np.float32)


def test_highpass_removes_illumination_and_keeps_nodata(texture):
    yy, xx = np.mgrid[0:128, 0:128].astype(np.float32)
    lit = texture + 0.05 * xx + 0.03 * yy + 7.0  # a linear illumination ramp and an offset
    a, b = P.highpass(texture, 5), P.highpass(lit, 5)
    inner = (slice(20, -20), slice(20, -20))
    assert np.abs(a[inner] - b[inner]).max() < 1e-3
    holed = texture.copy()
    holed[60:64, 60:64] = np.nan
    out = P.highpass(holed, 5)
    assert np.isnan(out[60:64, 60:64]).all() and np.isfinite(out[:58]).all()


def test_wallis_equalises_contrast(texture):
    img = texture.copy()
    img[:, 64:] *= 20.0  # a bright, high-contrast half
    out = P.wallis(img, 4)
    left, right = out[10:-10, 10:50].std(), out[10:-10, 78:-10].std()
    assert right / left == pytest.approx(1.0, abs=0.1)


def test_orientation_is_illumination_invariant(texture):
    a = P.orientation(texture)
    b = P.orientation(3.0 * texture + 50.0)
    assert a.shape == (2, 128, 128)
    np.testing.assert_allclose(a, b, atol=1e-4)
    # normalised by the local RMS gradient: channels have unit mean energy
    assert np.mean(a[0] ** 2 + a[1] ** 2) == pytest.approx(1.0, abs=0.15)
    flat = P.orientation(np.ones((16, 16), np.float32))
    assert np.all(flat == 0)


def test_log_amplitude_and_despeckling():
    out = P.log_amplitude(np.array([[np.e, 1.0, 0.0, -2.0, np.nan]], np.float32))
    np.testing.assert_allclose(out[0, :2], [1.0, 0.0], atol=1e-6)
    assert np.isnan(out[0, 2:]).all()
    # 'log' also low-passes: white speckle loses most of its variance, NoData stays NoData
    rng = np.random.default_rng(3)
    speckle = rng.gamma(4.0, 0.25, (128, 128)).astype(np.float32)
    speckle[5, 5] = 0.0
    out = P.apply(speckle, "log")
    assert np.isnan(out[5, 5]) and np.isfinite(out).sum() == 128 * 128 - 1
    assert np.nanstd(out) < 0.4 * np.nanstd(P.log_amplitude(speckle))


def test_apply_and_resolve():
    img = np.random.default_rng(1).random((32, 32)).astype(np.float32)
    assert P.apply(img, "none") is not None and P.apply(img, "orientation").shape == (2, 32, 32)
    assert P.resolve("auto", "sentinel1") == "log"
    assert P.resolve("auto", "sentinel2") == "highpass" == P.resolve("auto", "")
    assert P.resolve("auto", "landsat") == "highpass" and P.resolve("auto", "UAV") == "orientation"
    assert P.resolve("wallis", "sentinel1") == "wallis"
    assert P.channels("orientation") == 2 and P.halo("highpass", 5) == 20 and P.halo("log") == 4
    with pytest.raises(InputError, match="Unknown pre-processing"):
        P.apply(img, "sharpen")
    with pytest.raises(InputError, match="positive"):
        P.check_method("highpass", 0)


def test_downsample_is_antialiased_and_keeps_positions():
    n = 240
    x = np.arange(n) + 0.5  # pixel-centre coordinates
    low = np.cos(2 * np.pi * 0.03 * x)  # 0.09 cycles per output pixel after /3: kept
    high = np.cos(2 * np.pi * 0.30 * x)  # 0.9 cycles per output pixel: would alias
    img = np.tile(low + high, (32, 1)).astype(np.float32)
    out = P.downsample(img, 3.0)
    assert out.shape == (10, 80)
    xo = (np.arange(80) + 0.5) * 3.0  # output pixel centres in input coordinates
    row = out[5, 5:-5]
    expected_low = np.cos(2 * np.pi * 0.03 * xo[5:-5])
    gain = np.dot(row, expected_low) / np.dot(expected_low, expected_low)
    assert 0.8 < gain <= 1.0  # the low frequency passes, in place (no shift)
    residual = row - gain * expected_low
    assert np.abs(residual).max() < 0.05  # the high frequency is gone, not aliased
    with pytest.raises(InputError, match=">= 1"):
        P.downsample(img, 0.5)


def test_downsampled_pair_keeps_the_displacement():
    """A 3.3 px shift at full resolution is 1.1 px after down-sampling by 3."""
    rng = np.random.default_rng(2)
    fine = band_limited_noise((1152, 1152), rng, 0.3 / 3)
    ref, sec = render_pair_images(fine, np.full(fine.shape, 9.9), np.full(fine.shape, -6.6), 3)
    a, b = P.downsample(ref, 3.0), P.downsample(sec, 3.0)
    r, c, _ = correlate_arrays(a, b, 8, CorrelatorOptions((32, 32)))
    assert np.nanmedian(c) == pytest.approx(1.1, abs=0.01)
    assert np.nanmedian(r) == pytest.approx(-0.733333, abs=0.01)
