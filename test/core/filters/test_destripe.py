"""Destriping: row, column and rotated stripes measured on stable ground are removed; too little
stable ground is a clear error."""

import numpy as np
import pytest

from glacier_velocity.core.filters.destripe import destripe, destripe_file, group_medians
from glacier_velocity.core.errors import InputError
from glacier_velocity.core.io.grid import Grid
from glacier_velocity.core.io.pairsource import PairSource
from glacier_velocity.core.io.products import read_pair_info, read_pair_product, write_pair_product

GRID = Grid.from_bounds(500000, 4000000, 30, 200, 240, 32645)


def striped(angle, seed=0, amplitude=15.0, noise=4.0):
    """Noise plus one random value per one-pixel band across stripes running along ``angle``."""
    rng = np.random.default_rng(seed)
    r, c = np.mgrid[0:GRID.rows, 0:GRID.cols]
    a = np.deg2rad(angle)
    band = np.round(c * np.cos(a) + r * np.sin(a)).astype(int)
    band -= band.min()
    sx = rng.normal(0, amplitude, band.max() + 1)[band]
    sy = rng.normal(0, amplitude, band.max() + 1)[band]
    nx = rng.normal(0, noise, GRID.shape)
    ny = rng.normal(0, noise, GRID.shape)
    return (nx + sx).astype(np.float32), (ny + sy).astype(np.float32), nx, ny


def test_group_medians():
    med, counts = group_medians(np.array([0, 0, 0, 2, 2]), np.array([3.0, 1.0, 2.0, 5.0, 7.0]), 4)
    np.testing.assert_array_equal(counts, [3, 0, 2, 0])
    assert med[0] == 2.0 and med[2] == 6.0 and np.isnan(med[1])


@pytest.mark.parametrize("angle", [90.0, 0.0, 30.0])
def test_stripes_are_removed(angle):
    vx, vy, nx, ny = striped(angle)
    r, c = np.mgrid[0:GRID.rows, 0:GRID.cols]
    stable = (r // 20 + c // 20) % 2 == 0  # half the scene, in blocks, is stable ground
    dx, dy, px, py = destripe(GRID, vx, vy, stable, angle)
    # bands with enough stable pixels are measured; the short ones in the corners of rotated
    # stripes are interpolated and keep their stripe
    a = np.deg2rad(angle)
    band = np.round(c * np.cos(a) + r * np.sin(a)).astype(int)
    band -= band.min()
    measured = (np.bincount(band[stable]) >= 30)[band]
    assert measured.mean() > 0.9
    for before, after, noise in ((vx, dx, nx), (vy, dy, ny)):
        assert np.std(before - noise) > 10.0
        # what remains is the noise plus the profile's own estimation error (~0.1-0.2 x noise)
        assert np.std((after - noise)[measured]) < 0.25 * np.std(noise)
    assert px.measured > 0.5 * px.values.size


def test_rows_without_stable_ground_are_interpolated():
    vx, vy, nx, ny = striped(90.0, amplitude=0.0)
    vx += np.linspace(0, 20, GRID.rows, dtype=np.float32)[:, None]  # a smooth north-south trend
    stable = np.ones(GRID.shape, bool)
    stable[80:100] = False
    dx, _, px, _ = destripe(GRID, vx, vy, stable, 90.0)
    assert px.measured == GRID.rows - 20
    assert np.abs(np.mean(dx[80:100] - nx[80:100], axis=1)).max() < 2.0


def test_too_little_stable_ground_is_a_clear_error(tmp_path):
    vx, vy, _, _ = striped(90.0)
    stable = np.zeros(GRID.shape, bool)
    stable[:40, :] = True
    with pytest.raises(InputError, match="Too little stable ground to destripe: only 40 of 200 "
                                         "rows"):
        destripe(GRID, vx, vy, stable, 90.0)


def test_file_version(tmp_path):
    vx, vy, nx, _ = striped(90.0, seed=5)
    path = str(tmp_path / "pair.tif")
    write_pair_product(path, GRID, vx, vy, np.ones_like(vx), "2021-07-01", "2021-08-02")
    out = str(tmp_path / "destriped.tif")
    stable = np.ones(GRID.shape, bool)
    destripe_file(PairSource(path), out, stable, 90.0, tile=64)
    _, d = read_pair_product(out)
    assert np.std(d["vx"] - nx) < 0.25 * np.std(nx)
    assert "stripes along 90" in read_pair_info(out).metadata["STRIPES_VX"]
