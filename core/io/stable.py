"""Stable ground (true velocity zero) on a grid, from polygons or from a mask raster."""

import numpy as np

from ..errors import InputError
from .raster import warp_to_grid
from .vector import rasterize_mask


def stable_mask(grid, polygons=None, mask_raster=None):
    """Boolean stable-ground mask of ``grid``: inside any polygon of ``polygons`` and/or where
    ``mask_raster`` (any CRS, resampled by nearest neighbour) is non-zero. Both given: union."""
    if not polygons and not mask_raster:
        raise InputError("No stable ground given: give stable-ground polygons or a mask raster.")
    mask = np.zeros(grid.shape, bool)
    if polygons:
        mask |= rasterize_mask(polygons, grid, what="stable-ground polygons")
    if mask_raster:
        m = warp_to_grid(mask_raster, grid, "nearest", bands=[1])[0]
        with np.errstate(invalid="ignore"):
            mask |= np.isfinite(m) & (m != 0)
    return mask
