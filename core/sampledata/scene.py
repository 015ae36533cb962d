"""A deterministic synthetic glacier scene with known truth, for tests, benchmarks and the demo.

The scene is a square of stable terrain in UTM 45N (EPSG:32645) holding four glaciers (elliptic
tongues): one accelerating, one decelerating, one steady, and a small one (< 1 km² at the default
size). Each glacier flows along a fixed compass bearing (its aspect, downhill on the DEM) with a
speed that is fastest on the centre line and zero at the margins (shear), a seasonal cycle
peaking in July, and a linear decadal trend given as a fraction of its mean speed per decade.

Truth is analytic: :meth:`SceneModel.velocity` gives vx, vy (m/yr, east/north positive)
averaged over any date interval on any grid, so products at any resolution are checked exactly.

:func:`generate_scene` writes, into a folder:

* ``images/<sensor>/<product name>.tif``: image pairs rendered from one band-limited texture moved
  by the true displacement (quintic spline on a 3x oversampled grid, then pixel integration):
  Landsat-like at 15 m, Sentinel-2-like at 10 m (both with clouds), Sentinel-1-like at 10 m
  (intensity with speckle, no clouds);
* ``stacks/<sensor>_v.tif``: monthly speed stacks on the 30 m reference grid with each sensor's
  noise, bias, gaps and outliers; ``stacks/uav_v.tif`` a UAV stack over a small footprint;
* ``truth/``: true monthly ``v``/``vx``/``vy`` stacks, true trend (m/yr per decade), flow
  direction (degrees clockwise from north), glacier labels;
* ``reference_grid.tif`` (30 m), ``dem.tif``, ``stable_mask.tif``, ``vectors.gpkg`` (layers
  ``glaciers`` and ``stable``), and ``scene.json`` (the manifest: paths, pairs, truth numbers).
"""

import datetime as dt
import json
import os
from dataclasses import asdict, dataclass

import numpy as np
from scipy import fft, ndimage

from ..io.dates import DAYS_PER_YEAR, Interval, decimal_year, monthly_intervals
from ..errors import InputError
from ..io.grid import Grid, crs_to_wkt
from ..io.products import write_stack
from ..io.atomic import atomic_file, make_folder
from ..io.raster import read_band, write_raster
from ..io.vector import write_polygons

EPSG = 32645
ORIGIN = (420000.0, 3330000.0)  # top-left corner (m), UTM 45N
SIZES = {"tiny": 3000.0, "small": 6000.0, "medium": 12000.0, "large": 24000.0}
REF_PIXEL = 30.0
OVERSAMPLE = 3


@dataclass(frozen=True)
class GlacierSpec:
    """One glacier. Positions and sizes are fractions of the scene side (u east, w south)."""

    gid: int
    name: str
    u: float
    w: float
    length: float
    width: float
    bearing: float  # flow direction and aspect, degrees clockwise from north
    vmax: float  # m/yr on the centre line, series mean
    trend: float  # fraction of the mean speed per decade
    slope: float  # surface slope, degrees
    expected_class: str


GLACIERS = (
    GlacierSpec(1, "Accelerating glacier", 0.27, 0.36, 0.46, 0.13, 200.0, 150.0, 0.30, 12.0,
                "accelerating"),
    GlacierSpec(2, "Decelerating glacier", 0.69, 0.36, 0.50, 0.14, 100.0, 120.0, -0.30, 8.0,
                "decelerating"),
    GlacierSpec(3, "Steady glacier", 0.44, 0.79, 0.46, 0.12, 290.0, 90.0, 0.0, 15.0,
                "no significant trend"),
    GlacierSpec(4, "Small glacier", 0.88, 0.86, 0.13, 0.08, 20.0, 25.0, 0.0, 20.0,
                "no significant trend"),
)

SEASONAL_AMPLITUDE = 0.25  # fraction of the mean
SEASONAL_PEAK = 0.54  # decimal-year fraction of the peak (mid July)


@dataclass(frozen=True)
class SensorNoise:
    """Error model of one sensor's monthly stacks (m/yr, per component) and its gaps."""

    sigma: float
    bias: float
    gap_fraction: float
    outlier_fraction: float
    pixel: float  # image pixel size of the sensor (m)


SENSOR_NOISE = {
    "landsat": SensorNoise(14.0, 4.0, 0.45, 0.02, 15.0),
    "sentinel2": SensorNoise(8.0, -3.0, 0.35, 0.015, 10.0),
    "sentinel1": SensorNoise(18.0, 2.0, 0.06, 0.01, 10.0),
    "uav": SensorNoise(2.0, 0.0, 0.0, 0.0, 0.5),
}


class SceneModel:
    """The analytic truth of the scene: geometry, DEM and velocity for any grid and interval.

    The sensing hooks (:meth:`sar_unusable`, :meth:`cloud_bias`, :meth:`snow_opacity`,
    :meth:`decorrelation_days`) describe what the sensors see; the valley scene
    (:class:`~.valley.ValleyModel`) overrides them with terrain-driven conditions."""

    kind = "ellipses"

    def __init__(self, size="small", first_year=2015, years=10, seed=0):
        if size not in SIZES:
            raise InputError(f"Unknown scene size '{size}': use one of {', '.join(SIZES)}.")
        if years < 1:
            raise InputError("The scene needs at least one year.")
        self.size, self.first_year, self.years, self.seed = size, int(first_year), int(years), seed
        self.side = SIZES[size]
        self.crs_wkt = crs_to_wkt(EPSG)
        self.glaciers = GLACIERS
        self.t_centre = self.first_year + self.years / 2.0

    # ---------------------------------------------------------------- geometry
    def grid(self, pixel=REF_PIXEL):
        """The scene's grid at ``pixel`` metres."""
        n = int(round(self.side / pixel))
        return Grid.from_bounds(ORIGIN[0], ORIGIN[1], pixel, n, n, self.crs_wkt)

    def _local(self, g, x, y):
        """Normalised along-flow (a) and across-flow (c) coordinates of points in glacier g."""
        cx = ORIGIN[0] + g.u * self.side
        cy = ORIGIN[1] - g.w * self.side
        b = np.deg2rad(g.bearing)
        ex, ey = np.sin(b), np.cos(b)  # unit vector of the flow (east, north)
        along = (x - cx) * ex + (y - cy) * ey
        across = -(x - cx) * ey + (y - cy) * ex
        return along / (0.5 * g.length * self.side), across / (0.5 * g.width * self.side)

    def outline(self, g, n=96, scale=1.0):
        """Polygon ring (n, 2) of glacier g's outline in map coordinates."""
        t = np.linspace(0, 2 * np.pi, n, endpoint=False)
        a, c = scale * np.cos(t), scale * np.sin(t)
        b = np.deg2rad(g.bearing)
        ex, ey = np.sin(b), np.cos(b)
        hl, hw = 0.5 * g.length * self.side, 0.5 * g.width * self.side
        cx, cy = ORIGIN[0] + g.u * self.side, ORIGIN[1] - g.w * self.side
        x = cx + a * hl * ex - c * hw * ey
        y = cy + a * hl * ey + c * hw * ex
        return np.column_stack([x, y])

    def area_km2(self, g):
        """The exact area of glacier g's ellipse (km²)."""
        return np.pi * 0.25 * g.length * g.width * self.side ** 2 / 1e6

    def _xy(self, grid):
        xs, ys = grid.centres()
        return np.meshgrid(xs, ys)

    def labels(self, grid):
        """int32 raster: glacier id at pixel centres inside a glacier, 0 elsewhere."""
        x, y = self._xy(grid)
        out = np.zeros(grid.shape, np.int32)
        for g in self.glaciers:
            a, c = self._local(g, x, y)
            out[a ** 2 + c ** 2 < 1.0] = g.gid
        return out

    def base_speed(self, g, grid):
        """Series-mean speed (m/yr) of glacier g: vmax * (1 - r²) inside, 0 outside."""
        x, y = self._xy(grid)
        a, c = self._local(g, x, y)
        return g.vmax * np.clip(1.0 - (a ** 2 + c ** 2), 0.0, None)

    def stable_mask(self, grid, margin=1.25):
        """True on stable terrain: outside every glacier scaled by ``margin``, inside the scene."""
        x, y = self._xy(grid)
        ok = np.ones(grid.shape, bool)
        for g in self.glaciers:
            a, c = self._local(g, x, y)
            ok &= (a ** 2 + c ** 2) >= margin ** 2
        return ok

    def flow_direction(self, grid):
        """Flow bearing (degrees clockwise from north) on glaciers, NaN elsewhere."""
        lab = self.labels(grid)
        out = np.full(grid.shape, np.nan, np.float32)
        for g in self.glaciers:
            out[lab == g.gid] = g.bearing
        return out

    def dem(self, grid):
        """Elevation (m): each glacier an inclined surface descending along its flow bearing at its
        slope, blended into a gently tilted background between 1.0x and 1.6x its outline."""
        x, y = self._xy(grid)
        z = 4800.0 + 0.03 * (x - ORIGIN[0]) - 0.02 * (ORIGIN[1] - y)
        surfaces = []
        for g in self.glaciers:
            a, c = self._local(g, x, y)
            r = np.sqrt(a ** 2 + c ** 2)
            along_m = a * 0.5 * g.length * self.side
            surface = 4800.0 + 0.03 * g.u * self.side - 0.02 * g.w * self.side \
                - np.tan(np.deg2rad(g.slope)) * along_m
            wgt = np.clip((1.6 - r) / 0.6, 0.0, 1.0)
            wgt = wgt * wgt * (3 - 2 * wgt)  # smoothstep keeps the blend's slope continuous
            z = wgt * surface + (1 - wgt) * z
            surfaces.append((r < 1.0, surface))
        for inside, surface in surfaces:  # a neighbour's blend zone must not tilt a glacier
            z[inside] = surface[inside]
        return z.astype(np.float32)

    # ---------------------------------------------------------------- time
    def time_factor(self, g, interval):
        """Mean of (1 + seasonal) * (1 + trend) over the days of ``interval`` for glacier g."""
        days = np.arange(max(interval.days, 1)) + 0.5
        t = decimal_year(interval.start) + days / DAYS_PER_YEAR
        seasonal = 1.0 + SEASONAL_AMPLITUDE * np.sin(2 * np.pi * (t - SEASONAL_PEAK + 0.25))
        trend = 1.0 + g.trend * (t - self.t_centre) / 10.0
        return float(np.mean(seasonal * trend))

    def velocity(self, grid, interval):
        """True mean (vx, vy) in m/yr over ``interval`` on ``grid`` (float32, 0 off-glacier)."""
        vx = np.zeros(grid.shape, np.float64)
        vy = np.zeros(grid.shape, np.float64)
        for g in self.glaciers:
            s = self.base_speed(g, grid) * self.time_factor(g, interval)
            b = np.deg2rad(g.bearing)
            vx += s * np.sin(b)
            vy += s * np.cos(b)
        return vx.astype(np.float32), vy.astype(np.float32)

    def trend(self, grid):
        """True linear trend of speed (m/yr per decade) on ``grid``."""
        out = np.zeros(grid.shape, np.float64)
        for g in self.glaciers:
            out += self.base_speed(g, grid) * g.trend
        return out.astype(np.float32)

    def months(self):
        """The scene's calendar-month intervals."""
        return monthly_intervals(dt.date(self.first_year, 1, 1),
                                 dt.date(self.first_year + self.years - 1, 12, 31))

    # ---------------------------------------------------------------- sensing conditions
    def terrain_sar_mask(self, grid):
        """Sentinel-1 layover and shadow from the terrain (bool), or None: this scene's stacks
        get random blobs instead, and its images none."""
        return None

    def cloud_bias(self, grid):
        """Where clouds are more frequent (0–1 field added to the random cloud field), or None."""
        return None

    def snow_opacity(self, grid, date):
        """Opacity (0–1) of fresh snow hiding the optical texture on ``date``, or None."""
        return None

    def decorrelation_days(self, grid):
        """E-folding time (days) of the surface texture's correlation, or None (never)."""
        return None

    def uav_footprint(self, grid):
        """Boolean footprint of the UAV surveys: a rectangle over the lower trunk of glacier 1."""
        g = self.glaciers[0]
        x, y = self._xy(grid)
        a, c = self._local(g, x, y)
        return (np.abs(a - 0.25) < 0.3) & (np.abs(c) < 1.4)

    def outline_polygons(self):
        """{glacier id: [rings]} of the glacier outlines (one exterior ring each)."""
        return {g.gid: [[self.outline(g)]] for g in self.glaciers}

    def stable_polygons(self, grid):
        """Stable-ground polygons (list of ring lists): the frame inset by two pixels, minus
        every glacier's outline scaled by 1.3."""
        x0, y0, x1, y1 = grid.bounds
        inset = 2 * grid.dx
        frame = np.array([[x0 + inset, y1 - inset], [x1 - inset, y1 - inset],
                          [x1 - inset, y0 + inset], [x0 + inset, y0 + inset]])
        return [[frame] + [self.outline(g, scale=1.3) for g in self.glaciers]]


# -------------------------------------------------------------------- textures and images

def band_limited_noise(shape, rng, cutoff=0.25):
    """Gaussian random field with a smooth spectrum (cutoff in cycles/pixel), zero mean, unit std."""
    white = rng.standard_normal(shape)
    fy = fft.fftfreq(shape[0])[:, None]
    fx = fft.rfftfreq(shape[1])[None, :]
    spectrum = np.exp(-0.5 * (fx ** 2 + fy ** 2) / (cutoff / 2.0) ** 2)
    field = fft.irfft2(fft.rfft2(white, workers=-1) * spectrum, s=shape, workers=-1)
    return (field - field.mean()) / field.std()


def render_pair_images(texture_fine, disp_cols, disp_rows, oversample=OVERSAMPLE, coeffs=None):
    """Reference and secondary images from a fine texture and a displacement in fine pixels.

    The secondary image is ``texture(p - d(p))`` sampled by a quintic spline (no linear
    interpolation, which would low-pass it), then both are integrated over ``oversample``²
    fine pixels, like a detector. ``disp_cols`` is eastward, ``disp_rows`` downward (south).
    ``coeffs`` are the texture's spline coefficients when the caller keeps them (one texture,
    many pairs).
    """
    rows, cols = texture_fine.shape
    rr, cc = np.mgrid[0:rows, 0:cols].astype(np.float64)
    if coeffs is None:
        coeffs = ndimage.spline_filter(texture_fine, order=5, mode="mirror")
    moved = ndimage.map_coordinates(coeffs, [rr - disp_rows, cc - disp_cols], order=5,
                                    mode="mirror", prefilter=False)
    o = oversample

    def integrate(a):
        return a.reshape(rows // o, o, cols // o, o).mean(axis=(1, 3))

    return integrate(texture_fine), integrate(moved)


def cloud_field(shape, rng, cover, bias=None):
    """Opacity in [0, 1] of smooth clouds covering about ``cover`` of the image; ``bias`` (0–1
    field) makes them more frequent where it is high (one standard deviation per unit)."""
    f = ndimage.gaussian_filter(rng.standard_normal(shape), sigma=max(shape) / 25.0)
    if bias is not None:
        f = f / (f.std() + 1e-12) + bias
    thr = np.quantile(f, 1.0 - cover)
    return np.clip((f - thr) / (0.15 * f.std() + 1e-12), 0.0, 1.0)


PRODUCT_NAMES = {
    "landsat": "LC08_L1TP_140041_{d:%Y%m%d}_{p:%Y%m%d}_02_T1",
    "sentinel2": "S2A_MSIL1C_{d:%Y%m%d}T045701_N0209_R119_T45RUV_{p:%Y%m%d}T071237",
    "sentinel1": "S1A_IW_GRDH_1SDV_{d:%Y%m%d}T120414_{d:%Y%m%d}T120439_030000_036000_ABCD",
}
PAIR_BASELINES = {"landsat": 32, "sentinel2": 30, "sentinel1": 24}
# Image series: a pair every 30 days with the sensors' revisit baselines. With these numbers no
# two images of different pairs are 15-17, 9-11 or 11-13 days apart, so pairing by baseline
# (series_rules in the manifest) forms exactly the rendered pairs.
SERIES_PERIOD_DAYS = 30
SERIES_BASELINES = {"landsat": 16, "sentinel2": 10, "sentinel1": 12}


class PairRenderer:
    """Renders and writes one sensor's image pairs from one ground texture (fixed per sensor)."""

    def __init__(self, model, sensor, rng):
        self.model, self.sensor, self.rng = model, sensor, rng
        self.pixel = SENSOR_NOISE[sensor].pixel
        self.grid = model.grid(self.pixel)
        self.fine = model.grid(self.pixel / OVERSAMPLE)
        self.texture = band_limited_noise(self.fine.shape, rng, cutoff=0.3 / OVERSAMPLE)
        self.coeffs = ndimage.spline_filter(self.texture, order=5, mode="mirror")
        self.tau = model.decorrelation_days(self.grid)
        self.sar_lost = model.terrain_sar_mask(self.grid) if sensor == "sentinel1" else None
        self.cloud_bias = model.cloud_bias(self.grid)
        # clouds on the reference image too where the scene favours some places (valley)
        self.reference_clouds = 0.0 if self.cloud_bias is None else 0.5

    def _decorrelate(self, img, days):
        """Mix an independent texture into ``img`` as the surface evolves over ``days``."""
        if self.tau is None:
            return img
        rho = np.exp(-days / self.tau)
        fresh = band_limited_noise(img.shape, self.rng, cutoff=0.3)
        return rho * img + np.sqrt(1 - rho ** 2) * fresh * img.std()

    def _optical(self, img, date, cloud_cover, sd):
        """Radiance-like optical image (noise 1 % of ``sd``, the reference texture's spread),
        fresh snow and clouds (opacity fields)."""
        rng = self.rng
        img = 1000 + 250 * (img + 0.01 * rng.standard_normal(img.shape) * sd)
        snow = self.model.snow_opacity(self.grid, date)
        if snow is not None:
            img = (1 - snow) * img + snow * (3000.0 + 5.0 * rng.standard_normal(img.shape))
        if cloud_cover > 0:
            alpha = cloud_field(self.grid.shape, rng, cloud_cover, self.cloud_bias)
            img = (1 - alpha) * img + alpha * 3500.0
        return img

    def _sar(self, img):
        """SAR intensity: exp(texture) reflectivity with 4-look speckle; layover bright and
        shadow dark, both without the ground's texture."""
        rng = self.rng
        img = np.exp(0.8 * img) * rng.gamma(4.0, 0.25, img.shape)
        if self.sar_lost is not None:
            img[self.sar_lost] = 4.0 * rng.gamma(4.0, 0.25, int(self.sar_lost.sum()))
        return img

    def write(self, folder, subdir, start, baseline_days, cloud_cover):
        """Render the pair (start, start + baseline) and write both images; return its record.

        Optical images are radiance-like (1 % noise) with clouds covering ``cloud_cover`` of the
        secondary (and half that of the reference where the scene has a cloud bias), and the
        scene's fresh snow; SAR images are exp(texture) reflectivity with independent 4-look
        speckle and the terrain's layover and shadow. The secondary's texture decorrelates with
        the baseline where the scene says so.
        """
        end = start + dt.timedelta(days=baseline_days)
        iv = Interval(start, end)
        vx, vy = self.model.velocity(self.fine, iv)
        years = iv.days / DAYS_PER_YEAR
        ref_img, sec_img = render_pair_images(self.texture, vx * years / self.fine.dx,
                                              -vy * years / self.fine.dy, coeffs=self.coeffs)
        sec_img = self._decorrelate(sec_img, baseline_days)
        if self.sensor == "sentinel1":
            ref_img, sec_img = self._sar(ref_img), self._sar(sec_img)
        else:
            sd = ref_img.std()
            ref_img = self._optical(ref_img, start, self.reference_clouds * cloud_cover, sd)
            sec_img = self._optical(sec_img, end, cloud_cover, sd)
        os.makedirs(os.path.join(folder, subdir), exist_ok=True)
        names = []
        for d, img in ((start, ref_img), (end, sec_img)):
            name = PRODUCT_NAMES[self.sensor].format(d=d, p=d + dt.timedelta(days=60)) + ".tif"
            write_raster(os.path.join(folder, subdir, name), self.grid, img.astype(np.float32),
                         ["intensity"])
            names.append(os.path.join(subdir, name))
        return {"sensor": self.sensor, "reference": names[0], "secondary": names[1],
                "start": start.isoformat(), "end": end.isoformat(), "pixel": self.pixel}


# -------------------------------------------------------------------- stacks

def _correlated_noise(shape, rng, sigma):
    """Noise of std ``sigma`` half white, half spatially correlated (a few pixels)."""
    corr = ndimage.gaussian_filter(rng.standard_normal(shape), 1.5)
    corr /= corr.std() + 1e-12
    return sigma * (np.sqrt(0.5) * rng.standard_normal(shape) + np.sqrt(0.5) * corr)


def sensor_stack(model, grid, sensor, intervals, rng, footprint=None):
    """A sensor's noisy, gappy speed stack (m/yr) on ``grid`` for ``intervals``.

    Speed is hypot(vx + nx, vy + ny) + bias, so noise biases slow areas upward as real products
    do. Optical gaps are cloud blobs (more in winter), SAR gaps a fixed layover/shadow mask plus
    a few random pixels; a share of gross outliers (x0.3 or x2.5) tests the temporal filter.
    """
    noise = SENSOR_NOISE[sensor]
    out = np.empty((len(intervals),) + grid.shape, np.float32)
    layover = model.terrain_sar_mask(grid)
    if layover is None:
        layover = cloud_field(grid.shape, rng, noise.gap_fraction * 0.6) > 0.5
    bias = model.cloud_bias(grid)
    for i, iv in enumerate(intervals):
        vx, vy = model.velocity(grid, iv)
        v = np.hypot(vx + _correlated_noise(grid.shape, rng, noise.sigma),
                     vy + _correlated_noise(grid.shape, rng, noise.sigma)) + noise.bias
        v = np.maximum(v, 0.0)
        if sensor in ("landsat", "sentinel2"):
            winter = iv.start.month in (11, 12, 1, 2, 3)
            cover = np.clip(rng.normal(noise.gap_fraction * (1.3 if winter else 0.8), 0.12),
                            0.02, 0.95)
            gaps = cloud_field(grid.shape, rng, cover, bias) > 0.5
        elif sensor == "sentinel1":
            gaps = layover | (rng.random(grid.shape) < noise.gap_fraction * 0.4)
        else:
            gaps = np.zeros(grid.shape, bool)
        out_mask = rng.random(grid.shape) < noise.outlier_fraction
        v = np.where(out_mask, v * np.where(rng.random(grid.shape) < 0.5, 0.3, 2.5), v)
        v[gaps] = np.nan
        if footprint is not None:
            v[~footprint] = np.nan
        out[i] = v
    return out


def uav_intervals(model):
    """UAV survey intervals: two summer repeat flights (about a month apart) in three years."""
    years = [model.first_year + k for k in (model.years // 2 - 1, model.years // 2,
                                            model.years // 2 + 1) if 0 <= k < model.years]
    out = []
    for y in years:
        out += [Interval(dt.date(y, 6, 28), dt.date(y, 7, 30)),
                Interval(dt.date(y, 8, 3), dt.date(y, 9, 2))]
    return out


# -------------------------------------------------------------------- the writer

SCENES = ("ellipses", "valley")


def scene_model(scene="ellipses", size="small", first_year=2015, years=10, seed=0):
    """The analytic model of a sample scene: 'ellipses' (:class:`SceneModel`, four elliptic
    tongues) or 'valley' (:class:`~.valley.ValleyModel`, the realistic valley glacier)."""
    if scene not in SCENES:
        raise InputError(f"Unknown sample scene '{scene}': use one of {', '.join(SCENES)}.")
    if scene == "valley":
        from .valley import ValleyModel

        return ValleyModel(size, first_year, years, seed)
    return SceneModel(size, first_year, years, seed)


def _write_static_layers(model, folder, ref):
    """Reference grid (glacier ids), DEM, stable mask, true flow direction and trend, and the
    glacier and stable polygons (vectors.gpkg). Returns their paths by manifest key."""
    p = lambda *parts: os.path.join(folder, *parts)  # noqa: E731
    paths = {
        "reference_grid": write_raster(p("reference_grid.tif"), ref,
                                       model.labels(ref).astype(np.float32), ["glacier_id"]),
        "dem": write_raster(p("dem.tif"), ref, model.dem(ref), ["elevation_m"]),
        "stable_mask": write_raster(p("stable_mask.tif"), ref,
                                    model.stable_mask(ref).astype(np.float32), ["stable"]),
        "flow_direction": write_raster(p("truth", "flow_direction.tif"), ref,
                                       model.flow_direction(ref), ["bearing_deg"]),
        "true_trend": write_raster(p("truth", "trend.tif"), ref, model.trend(ref),
                                   ["trend_m_per_yr_per_decade"]),
    }
    gpkg = p("vectors.gpkg")
    outlines = model.outline_polygons()
    glacier_polys = [(outlines[g.gid][0], {"id": g.gid, "name": g.name, "aspect": g.bearing,
                                           "true_class": g.expected_class})
                     for g in model.glaciers]
    with atomic_file(gpkg) as tmp:  # both layers, or the file stays as it was
        write_polygons(tmp, "glaciers", model.crs_wkt, glacier_polys,
                       {"id": "int", "name": "str", "aspect": "float", "true_class": "str"},
                       overwrite_file=True)
        write_polygons(tmp, "stable", model.crs_wkt,
                       [(rings, {"id": 1}) for rings in model.stable_polygons(ref)], {"id": "int"})
    paths["glaciers"] = f"{gpkg}|layername=glaciers"
    paths["stable"] = f"{gpkg}|layername=stable"
    return paths


def _write_truth(model, folder, ref):
    """True monthly v, vx, vy stacks; returns their paths."""
    months = model.months()
    truth = {q: np.empty((len(months),) + ref.shape, np.float32) for q in ("v", "vx", "vy")}
    for i, iv in enumerate(months):
        vx, vy = model.velocity(ref, iv)
        truth["vx"][i], truth["vy"][i], truth["v"][i] = vx, vy, np.hypot(vx, vy)
    return {f"truth_{q}": write_stack(os.path.join(folder, "truth", f"truth_{q}.tif"), ref, arr,
                                      months, "truth", q) for q, arr in truth.items()}


def _write_sensor_stacks(model, folder, ref, seed, progress):
    """Each sensor's noisy monthly stack and the UAV stack; returns their paths."""
    paths = {}
    months = model.months()
    for k, sensor in enumerate(("landsat", "sentinel2", "sentinel1")):
        rng = np.random.default_rng([seed, 100 + k])
        arr = sensor_stack(model, ref, sensor, months, rng)
        paths[f"{sensor}_v"] = write_stack(os.path.join(folder, "stacks", f"{sensor}_v.tif"), ref,
                                           arr, months, sensor)
        progress.update(0.15 + 0.1 * (k + 1))
    rng = np.random.default_rng([seed, 200])
    uiv = uav_intervals(model)
    arr = sensor_stack(model, ref, "uav", uiv, rng, footprint=model.uav_footprint(ref))
    paths["uav_v"] = write_stack(os.path.join(folder, "stacks", "uav_v.tif"), ref, arr, uiv, "uav")
    return paths


def _write_image_pairs(model, folder, seed, image_series, progress):
    """Two pairs per sensor (a summer and a cloudy winter one) under images/, and with
    ``image_series`` a pair every :data:`SERIES_PERIOD_DAYS` days under series/<sensor>/.
    Returns (pairs, series) records."""
    mid_year = model.first_year + model.years // 2
    pairs, series = [], []
    sensors = ("landsat", "sentinel2", "sentinel1")
    for k, sensor in enumerate(sensors):
        renderer = PairRenderer(model, sensor, np.random.default_rng([seed, 300 + k]))
        for start, cloud in ((dt.date(mid_year, 7, 3), 0.0), (dt.date(mid_year, 1, 5), 0.2)):
            pairs.append(renderer.write(folder, "images", start, PAIR_BASELINES[sensor], cloud))
        if image_series:
            first = dt.date(model.first_year, 1, 3)
            n = int((dt.date(model.first_year + model.years, 1, 1) - first).days
                    // SERIES_PERIOD_DAYS)
            for i in range(n):
                start = first + dt.timedelta(days=SERIES_PERIOD_DAYS * i)
                winter = start.month in (11, 12, 1, 2, 3)
                cloud = 0.0 if sensor == "sentinel1" else float(
                    np.clip(renderer.rng.normal(0.35 if winter else 0.15, 0.1), 0.0, 0.7))
                series.append(renderer.write(folder, os.path.join("series", sensor), start,
                                             SERIES_BASELINES[sensor], cloud))
        progress.update(0.5 + 0.5 * (k + 1) / len(sensors))
    return pairs, series


def _glacier_records(model, ref, dem_path):
    """The manifest's glacier entries: the spec, area, mean true trend; on the valley scene the
    mean flow bearing and surface slope measured on the DEM."""
    lab = model.labels(ref)
    out = []
    for g in model.glaciers:
        on = lab == g.gid
        rec = dict(asdict(g), area_km2=model.area_km2(g),
                   true_trend_mean=float(np.mean(model.base_speed(g, ref)[on]) * g.trend),
                   vmax=float(g.vmax))
        if model.kind == "valley":
            rec.pop("branches")
            dem = read_band(dem_path, dtype=np.float64)
            dzdy, dzdx = np.gradient(dem, -ref.dy, ref.dx)
            vx, vy = model.velocity(ref, model.months()[0])
            rec["bearing"] = float(np.degrees(np.arctan2(vx[on].sum(), vy[on].sum())) % 360)
            rec["slope"] = float(np.degrees(np.arctan(np.mean(np.hypot(dzdx[on], dzdy[on])))))
        out.append(rec)
    return out


def generate_scene(folder, size="small", first_year=2015, years=10, seed=0, progress=None,
                   image_series=False, scene="ellipses"):
    """Write the sample scene into ``folder`` and return its manifest (also ``scene.json``).

    Deterministic for given arguments. ``scene`` is 'ellipses' (four elliptic tongues, the fast
    test scene) or 'valley' (the realistic dendritic valley glacier, :mod:`.valley`). ``size``
    is 'tiny' (3 km), 'small' (6 km, the default), 'medium' (12 km) or 'large' (24 km) for the
    ellipses, half that again for the valley scene (7.5 km at 'small'); ``years`` monthly years
    from ``first_year``. With ``image_series``, each sensor also gets an image pair every
    :data:`SERIES_PERIOD_DAYS` days under ``series/<sensor>/`` (short revisit baselines,
    :data:`SERIES_BASELINES`), so the whole chain can start from images; the manifest's
    ``series_rules`` give the pairing rule (min/max days) that forms exactly those pairs.
    """
    from ..progress import ensure

    progress = ensure(progress)
    model = scene_model(scene, size, first_year, years, seed)
    make_folder(folder, "scene folder")
    for sub in ("images", "stacks", "truth"):
        os.makedirs(os.path.join(folder, sub), exist_ok=True)
    ref = model.grid(REF_PIXEL)
    paths = _write_static_layers(model, folder, ref)
    progress.update(0.05)
    paths.update(_write_truth(model, folder, ref))
    progress.update(0.15)
    paths.update(_write_sensor_stacks(model, folder, ref, seed, progress))
    progress.update(0.5)
    pairs, series = _write_image_pairs(model, folder, seed, image_series, progress)
    manifest = {
        "scene": model.kind, "size": size, "first_year": model.first_year, "years": model.years,
        "seed": seed, "epsg": EPSG, "reference_pixel": REF_PIXEL, "side_m": model.side,
        "paths": {k: os.path.relpath(v.split("|")[0], folder) + (
            "|" + v.split("|")[1] if "|" in v else "") for k, v in paths.items()},
        "pairs": pairs,
        "series": series,
        "series_rules": {k: {"min_days": v - 1, "max_days": v + 1}
                         for k, v in SERIES_BASELINES.items()},
        "glaciers": _glacier_records(model, ref, paths["dem"]),
        "sensor_noise": {k: asdict(v) for k, v in SENSOR_NOISE.items()},
        "seasonal_amplitude": SEASONAL_AMPLITUDE,
    }
    # written last and atomically: a folder with scene.json holds a complete scene
    with atomic_file(os.path.join(folder, "scene.json")) as tmp, open(tmp, "w") as f:
        json.dump(manifest, f, indent=1)
    return manifest


def load_scene(folder):
    """``(manifest, model)`` of a scene written by :func:`generate_scene`; paths made absolute."""
    path = os.path.join(folder, "scene.json")
    if not os.path.exists(path):
        raise InputError(f"'{folder}' holds no sample scene (scene.json missing).")
    with open(path) as f:
        manifest = json.load(f)
    manifest["paths"] = {k: os.path.join(folder, v) for k, v in manifest["paths"].items()}
    for pair in manifest["pairs"] + manifest.get("series", []):
        pair["reference"] = os.path.join(folder, pair["reference"])
        pair["secondary"] = os.path.join(folder, pair["secondary"])
    model = scene_model(manifest.get("scene", "ellipses"), manifest["size"],
                        manifest["first_year"], manifest["years"], manifest["seed"])
    return manifest, model
