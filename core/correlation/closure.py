"""Truth-free quality check of a correlator on real images: the closure of a triplet.

For three acquisitions A, B, C and their pair products A->B, B->C and A->C, displacements add up:
``d_AC = d_AB + d_BC`` for the surface's true motion. The closure ``d_AC - (d_AB + d_BC)`` is
therefore pure measurement error (of three measurements, so about sqrt(3) x the error of one if
they were independent), available wherever the three pairs have a vector, without ground truth.
Its mean projected on the flow direction shows systematic errors that scale with the
displacement (e.g. a pre-processing that biases shifts toward zero).

Displacements are ``v x baseline / 365.25`` in metres (pair-product convention), compared on
the A->C grid (the other two resampled by nearest neighbour); closures are reported in metres
and in image pixels (``PIXEL_M`` metadata of the A->C product, or ``pixel``).
"""

import os

import numpy as np

from ..arrays.nanstats import NMAD_FACTOR
from ..errors import InputError
from ..io.dates import DAYS_PER_YEAR
from ..io.pairsource import PairSource
from ..io.products import read_pair_info
from ..io.raster import RasterWriter, iter_tiles
from ..progress import ensure

CLOSURE_BANDS = ("closure_east", "closure_north", "closure")
TILE = 512


def arrange_triplet(paths):
    """``(ab, bc, ac)`` :class:`PairSource` of three pair products given in any order;
    :class:`InputError` naming the files when they are not A->B, B->C, A->C of three dates."""
    if len(paths) != 3:
        raise InputError(f"A closure needs exactly three pair products (A->B, B->C, A->C); "
                         f"{len(paths)} given.")
    # headers only: no dataset is held open by the error's traceback (QGIS crashes at exit)
    pairs = [read_pair_info(p) for p in paths]
    ac = max(pairs, key=lambda p: (p.end - p.start).days)
    rest = [p for p in pairs if p is not ac]
    ab = next((p for p in rest if p.start == ac.start), None)
    bc = next((p for p in rest if p.end == ac.end and p is not ab), None)
    if ab is None or bc is None or ab.end != bc.start:
        listed = "; ".join(f"'{os.path.basename(p.path)}' {p.start}..{p.end}" for p in pairs)
        raise InputError(f"These pair products do not form a triplet A->B, B->C, A->C (the "
                         f"dates must chain: A->B ends where B->C starts, A->C spans both): "
                         f"{listed}.")
    return tuple(PairSource(p.path) for p in (ab, bc, ac))


def _displacement(source, grid, window):
    """(east, north) displacement in metres of ``source`` on a window of ``grid``."""
    vx, vy, _ = source.warp(grid, window)
    years = (source.end - source.start).days / DAYS_PER_YEAR
    return vx.astype(np.float64) * years, vy.astype(np.float64) * years


def triplet_closure(paths, output=None, region=None, pixel=None, progress=None):
    """Closure of three pair products (any order); returns ``(rows, info)``.

    ``output``: optional raster of the closure (bands closure_east, closure_north, closure:
    metres, NaN where a pair has no vector); ``region``: optional boolean array on the A->C grid
    (e.g. the glacier mask) for which statistics are given beside those of every pixel;
    ``pixel``: image pixel size in metres (default the A->C product's ``PIXEL_M``).

    ``rows``: one statistics dict per region (``all``, then ``region`` and ``outside`` when a
    region is given): windows, valid (a vector in all three pairs), valid_share,
    median_closure_px / _m (of the magnitude), mean_east_px, mean_north_px (systematic part),
    nmad_east_px, nmad_north_px, rms_px, p90_px, median_along_flow_px (the closure projected on
    the A->C flow direction; > 0 when A->C is longer than the sum). ``info``: the three paths in
    A->B, B->C, A->C order, the pixel size and the grid.
    """
    progress = ensure(progress)
    ab, bc, ac = arrange_triplet([str(p) for p in paths])
    grid = ac.grid
    if pixel is None:
        try:
            pixel = float(ac.metadata.get("PIXEL_M", ""))
        except ValueError:
            raise InputError(f"'{ac.path}' has no PIXEL_M metadata (the image pixel size): give "
                             "the pixel size in metres (PIXEL_SIZE).") from None
    if region is not None and np.shape(region) != grid.shape:
        raise InputError(f"The region mask ({np.shape(region)}) is not on the grid of "
                         f"'{ac.path}' {grid.shape}.")
    writer = None
    if output:
        writer = RasterWriter(output, grid, 3, CLOSURE_BANDS,
                              {"UNITS": "m", "PIXEL_M": f"{pixel:g}", "AB": ab.path,
                               "BC": bc.path, "AC": ac.path}, inputs=[ab.path, bc.path, ac.path])
    parts = {"east": [], "north": [], "along": [], "where": []}
    try:
        tiles = list(iter_tiles(grid.shape, TILE))
        for k, (_, win, _) in enumerate(tiles):
            progress.check()
            e_ab, n_ab = _displacement(ab, grid, win)
            e_bc, n_bc = _displacement(bc, grid, win)
            e_ac, n_ac = _displacement(ac, grid, win)
            ce, cn = e_ac - (e_ab + e_bc), n_ac - (n_ab + n_bc)
            if writer is not None:
                for band, arr in enumerate((ce, cn, np.hypot(ce, cn)), start=1):
                    writer.write(band, arr, win[0], win[1])
            ok = np.isfinite(ce + cn)
            speed = np.hypot(e_ac, n_ac)
            with np.errstate(invalid="ignore", divide="ignore"):
                along = (ce * e_ac + cn * n_ac) / speed
            parts["east"].append(ce[ok] / pixel)
            parts["north"].append(cn[ok] / pixel)
            parts["along"].append(along[ok] / pixel)
            where = np.zeros(ok.sum(), bool)
            if region is not None:
                r0, c0, nr, nc = win
                where = np.asarray(region[r0:r0 + nr, c0:c0 + nc], bool)[ok]
            parts["where"].append(where)
            progress.update((k + 1) / len(tiles))
        if writer is not None:
            writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()  # no half-written output
        raise
    east, north, along, where = (np.concatenate(parts[k]) for k in ("east", "north", "along",
                                                                     "where"))
    regions = [("all", np.ones(east.size, bool), grid.shape[0] * grid.shape[1])]
    if region is not None:
        inside = int(np.count_nonzero(region))
        regions += [("region", where, inside),
                    ("outside", ~where, grid.shape[0] * grid.shape[1] - inside)]
    rows = [_statistics(name, east[sel], north[sel], along[sel], windows, pixel)
            for name, sel, windows in regions]
    return rows, {"ab": ab.path, "bc": bc.path, "ac": ac.path, "pixel": pixel, "grid": grid}


def _statistics(name, east, north, along, windows, pixel):
    """One statistics row of closures (px) of a region of ``windows`` pixels."""
    mag = np.hypot(east, north)
    n = int(mag.size)

    def stat(f, a):
        return float(f(a)) if a.size else float("nan")

    def nmad(a):
        return NMAD_FACTOR * np.median(np.abs(a - np.median(a)))

    return {"region": name, "windows": int(windows), "valid": n,
            "valid_share": n / windows if windows else float("nan"),
            "median_closure_px": stat(np.median, mag),
            "median_closure_m": stat(np.median, mag) * pixel,
            "mean_east_px": stat(np.mean, east), "mean_north_px": stat(np.mean, north),
            "nmad_east_px": stat(nmad, east), "nmad_north_px": stat(nmad, north),
            "rms_px": stat(lambda a: np.sqrt(np.mean(a * a)), mag),
            "p90_px": stat(lambda a: np.quantile(a, 0.9), mag),
            "median_along_flow_px": stat(np.median, along[np.isfinite(along)])}
