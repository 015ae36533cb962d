"""The realistic sample scene: a dendritic valley glacier among steep stable slopes.

Where :class:`~.scene.SceneModel` has elliptic tongues narrower than a correlation window, this
scene (``generate_scene(..., scene='valley')``) has what the paper's Kangri Karpo glaciers have: a
valley glacier whose trunk is 1.5–1.8 km wide (at size 'small', a 7.5 km scene; sizes scale the
geometry, not the speeds) with an icefall flowing at up to 560 m/yr (700 m/yr at the seasonal
peak), three tributaries 300–800 m wide joining it, a side valley glacier, and three glaciers
under 1 km². Valley walls rise steeply (up to ~55°) from the margins, so the Sentinel-1-like
images have layover (slopes facing the sensor steeper than the incidence angle) and shadow (slopes
facing away steeper than its complement) where no offset can be measured; optical images have
clouds that favour the upper basin and winter, and winter snow above a seasonal snow line that
hides the texture; the ice surface decorrelates with the baseline (e-folding 150 days on ice, 3000
days on rock).

Each glacier is a set of branches: smooth centre lines (cubic splines through control points in
fractions of the scene side, x east, y south) with a half-width and a centre-line speed given at
the control points. Across a branch the speed falls as ``vmax · (1 − (d/hw)³)`` (a blunt valley
glacier profile: fast centre, slow margins), along it the flow follows the centre line; where
branches meet, their velocity vectors are blended with weights ``speed²`` (continuous, the faster
branch dominates). Time factors (seasonal cycle, linear trend) are those of :class:`SceneModel`.
"""

from dataclasses import dataclass

import numpy as np
from scipy import interpolate, ndimage, spatial

from .scene import SIZES, SceneModel

SIDE_SMALL = 7500.0  # m: the valley scene's side at size 'small'
SAMPLES = 400  # points per branch centre line
PROFILE_POWER = 3.0
WALL_HEIGHT, WALL_SCALE = 900.0, 650.0  # valley walls: z = H (1 - exp(-m / L)) above the margin
STABLE_BUFFER = 150.0  # m from any glacier margin before ground counts as stable
SAR_LOOK_BEARING = 280.0  # ground -> sensor bearing: radar to the west, an ascending pass
SAR_INCIDENCE = 39.0  # degrees
DECORRELATION_DAYS = {"ice": 150.0, "rock": 3000.0}


@dataclass(frozen=True)
class Branch:
    """A glacier branch: control points (u east, w south; fractions of the side), half-widths
    (fractions of the side), centre-line speeds (m/yr) and surface elevations (m) at them."""

    points: tuple
    half_width: tuple
    vmax: tuple
    elevation: tuple


@dataclass(frozen=True)
class ValleyGlacier:
    """One glacier of the valley scene. ``bearing`` and ``slope`` (mean flow bearing, degrees
    clockwise from north, and mean surface slope, degrees) are measured on the DEM when the scene
    is written; ``vmax`` is the fastest centre-line speed."""

    gid: int
    name: str
    branches: tuple
    trend: float  # fraction of the mean speed per decade
    expected_class: str
    bearing: float = 0.0
    slope: float = 0.0

    @property
    def vmax(self):
        return max(max(b.vmax) for b in self.branches)


def _km(*pts):
    return tuple((x / 7.5, y / 7.5) for x, y in pts)


def _hw(*widths_km):
    return tuple(w / 2 / 7.5 for w in widths_km)


VALLEY_GLACIERS = (
    ValleyGlacier(1, "Valley glacier", (
        Branch(_km((2.2, 0.5), (2.4, 1.6), (2.9, 2.8), (3.6, 3.9), (4.4, 5.0), (5.0, 6.3)),
               _hw(1.8, 1.7, 1.6, 1.6, 1.5, 1.2), (60, 240, 560, 320, 210, 50),
               (5600, 5300, 4700, 4350, 4100, 3800)),
        Branch(_km((0.4, 1.8), (1.3, 2.6), (2.7, 3.3)), _hw(0.7, 0.7, 0.6), (30, 140, 170),
               (5400, 5000, 4600)),
        Branch(_km((6.3, 1.2), (5.4, 2.6), (4.3, 3.8)), _hw(0.8, 0.75, 0.7), (40, 180, 210),
               (5500, 5000, 4450)),
        Branch(_km((7.0, 3.9), (6.0, 4.5), (4.8, 5.1)), _hw(0.34, 0.32, 0.3), (15, 80, 110),
               (5000, 4600, 4150)),
    ), 0.30, "accelerating"),
    ValleyGlacier(2, "Side valley glacier", (
        Branch(_km((0.5, 4.3), (1.0, 5.3), (1.8, 6.3)), _hw(0.6, 0.55, 0.45), (30, 150, 60),
               (5100, 4600, 4200)),
    ), -0.30, "decelerating"),
    ValleyGlacier(3, "Small glacier (south-east)", (
        Branch(_km((6.3, 6.4), (6.85, 6.95)), _hw(0.4, 0.3), (10, 30), (4500, 4350)),
    ), 0.0, "no significant trend"),
    ValleyGlacier(4, "Small glacier (north-west)", (
        Branch(_km((0.5, 0.45), (0.95, 1.0)), _hw(0.36, 0.3), (10, 25), (5500, 5350)),
    ), 0.0, "no significant trend"),
    ValleyGlacier(5, "Small glacier (north-east)", (
        Branch(_km((6.4, 0.3), (6.95, 0.45)), _hw(0.3, 0.26), (8, 20), (5600, 5500)),
    ), 0.0, "no significant trend"),
)


class _BranchLine:
    """A branch's centre line sampled densely in map metres, with its profiles along it."""

    def __init__(self, branch, origin, side):
        pts = np.asarray(branch.points, np.float64)
        k = np.r_[0, np.cumsum(np.hypot(*np.diff(pts, axis=0).T))]
        k /= k[-1]
        spline = interpolate.CubicSpline(k, pts, bc_type="natural")
        s = np.linspace(0, 1, SAMPLES)
        xy = spline(s)
        self.x = origin[0] + xy[:, 0] * side
        self.y = origin[1] - xy[:, 1] * side
        tangent = spline(s, 1) * np.array([1.0, -1.0])  # w grows southwards
        tangent /= np.hypot(*tangent.T)[:, None]
        self.tx, self.ty = tangent[:, 0], tangent[:, 1]
        self.hw = np.interp(s, k, branch.half_width) * side
        self.vmax = np.interp(s, k, branch.vmax)
        self.z = np.interp(s, k, branch.elevation)
        self.tree = spatial.cKDTree(np.column_stack([self.x, self.y]))

    def query(self, x, y):
        """Nearest centre-line sample of each point: (distance m, sample index)."""
        d, i = self.tree.query(np.column_stack([x.ravel(), y.ravel()]), workers=-1)
        return d.reshape(x.shape), i.reshape(x.shape)


class ValleyModel(SceneModel):
    """The analytic truth of the valley scene (same interface as :class:`SceneModel`)."""

    kind = "valley"

    def __init__(self, size="small", first_year=2015, years=10, seed=0):
        super().__init__(size, first_year, years, seed)
        self.side = SIDE_SMALL * SIZES[size] / SIZES["small"]
        from .scene import ORIGIN

        self.origin = ORIGIN
        self.glaciers = VALLEY_GLACIERS
        self.lines = {g.gid: [_BranchLine(b, ORIGIN, self.side) for b in g.branches]
                      for g in self.glaciers}
        self._cache = {}

    # ---------------------------------------------------------------- fields per grid
    def _fields(self, grid):
        """Per-grid fields (cached): glacier labels, series-mean vx/vy (m/yr), margin distance
        (m, negative inside a glacier), the surface elevation of the nearest branch (m). On grids
        finer than 10 m (the renderer's oversampled grids) only each branch's bounding box is
        searched: there only the velocity is needed."""
        key = (grid.transform, grid.shape)
        if key in self._cache:
            return self._cache[key]
        x, y = self._xy(grid)
        labels = np.zeros(grid.shape, np.int32)
        margin = np.full(grid.shape, np.inf, np.float32)
        z_near = np.zeros(grid.shape, np.float32)
        num_x, num_y, den = (np.zeros(grid.shape) for _ in range(3))
        best_inside = np.full(grid.shape, np.inf)
        for g in self.glaciers:
            for line in self.lines[g.gid]:
                if grid.dx >= 10.0:
                    box = (slice(None), slice(None))
                else:
                    reach = line.hw.max() + grid.dx
                    cols = np.searchsorted(x[0], [line.x.min() - reach, line.x.max() + reach])
                    rows = np.searchsorted(-y[:, 0], [-(line.y.max() + reach),
                                                      -(line.y.min() - reach)])
                    box = (slice(*rows), slice(*cols))
                d, i = line.query(x[box], y[box])
                m = d - line.hw[i]
                mg, zn = margin[box], z_near[box]
                closer = m < mg
                mg[closer], zn[closer] = m[closer], line.z[i][closer]
                inside = m < 0
                rel = np.clip(d / line.hw[i], 0, 1)
                speed = np.where(inside, line.vmax[i] * (1 - rel ** PROFILE_POWER), 0.0)
                w = speed ** 2 + 1e-6 * inside
                num_x[box] += w * speed * line.tx[i]
                num_y[box] += w * speed * line.ty[i]
                den[box] += w
                lab, best = labels[box], best_inside[box]
                take = inside & (m < best)
                lab[take], best[take] = g.gid, m[take]
        on = den > 0
        vx = np.where(on, num_x / np.where(on, den, 1), 0.0).astype(np.float32)
        vy = np.where(on, num_y / np.where(on, den, 1), 0.0).astype(np.float32)
        self._cache[key] = {"labels": labels, "vx": vx, "vy": vy, "margin": margin, "z": z_near}
        return self._cache[key]

    def labels(self, grid):
        return self._fields(grid)["labels"].copy()

    def base_speed(self, g, grid):
        f = self._fields(grid)
        return np.where(f["labels"] == g.gid, np.hypot(f["vx"], f["vy"]), 0.0)

    def stable_mask(self, grid, margin=STABLE_BUFFER):
        """True on stable terrain: more than ``margin`` metres from every glacier margin."""
        return self._fields(grid)["margin"] > margin

    def flow_direction(self, grid):
        f = self._fields(grid)
        out = np.degrees(np.arctan2(f["vx"], f["vy"])) % 360
        return np.where(f["labels"] > 0, out, np.nan).astype(np.float32)

    def dem(self, grid):
        """Elevation (m): the nearest branch's surface on the ice (a little convex across), and
        valley walls rising ``WALL_HEIGHT · (1 − exp(−m / WALL_SCALE))`` with the distance m
        from the margin, roughened by a smooth random relief (deterministic)."""
        f = self._fields(grid)
        if "dem" in f:
            return f["dem"]
        m = f["margin"].astype(np.float64)
        wall = WALL_HEIGHT * (1 - np.exp(-np.clip(m, 0, None) / WALL_SCALE))
        bulge = 15.0 * np.clip(-m, 0, 300) / 300  # convex ice surface, metres
        rng = np.random.default_rng([self.seed, 7])
        relief = ndimage.gaussian_filter(rng.standard_normal(grid.shape), 800.0 / grid.dx,
                                         mode="reflect")
        relief *= 120.0 / (relief.std() + 1e-12) * np.clip(m / 600.0, 0, 1)
        f["dem"] = (f["z"] + wall + bulge + relief).astype(np.float32)
        return f["dem"]

    def velocity(self, grid, interval):
        f = self._fields(grid)
        lut = np.zeros(len(self.glaciers) + 1, np.float32)
        for g in self.glaciers:
            lut[g.gid] = self.time_factor(g, interval)
        factor = lut[f["labels"]]
        return f["vx"] * factor, f["vy"] * factor

    def trend(self, grid):
        f = self._fields(grid)
        frac = np.zeros(grid.shape)
        for g in self.glaciers:
            frac[f["labels"] == g.gid] = g.trend
        return (np.hypot(f["vx"], f["vy"]) * frac).astype(np.float32)

    def area_km2(self, g):
        grid = self.grid(10.0)
        return float((self._fields(grid)["labels"] == g.gid).sum() * 1e-4)

    # ---------------------------------------------------------------- sensing conditions
    def terrain_sar_mask(self, grid):
        """Layover and shadow of the Sentinel-1-like geometry on ``grid`` (bool): the slope
        towards the sensor steeper than the incidence angle, or away steeper than its
        complement."""
        dem = self.dem(grid).astype(np.float64)
        dzdy, dzdx = np.gradient(dem, -grid.dy, grid.dx)
        b = np.deg2rad(SAR_LOOK_BEARING)
        towards = np.degrees(np.arctan(dzdx * np.sin(b) + dzdy * np.cos(b)))
        return (towards > SAR_INCIDENCE) | (towards < -(90.0 - SAR_INCIDENCE))

    def cloud_bias(self, grid):
        """Clouds favour the upper basin: normalised elevation in [0, 1]."""
        z = self.dem(grid)
        return (z - z.min()) / (np.ptp(z) + 1e-12)

    def snow_opacity(self, grid, date):
        """Fresh-snow opacity (0–1) on the optical images of ``date``: above a snow line that is
        lowest in February (4500 m) and above the scene from June to September."""
        phase = np.cos(2 * np.pi * (date.timetuple().tm_yday - 45) / 365.25)  # 1 mid-February
        line = 5100.0 - 600.0 * phase
        if line > 5400:
            return None
        return np.clip((self.dem(grid) - line) / 150.0, 0.0, 1.0)

    def decorrelation_days(self, grid):
        """E-folding time (days) of the surface texture: short on ice, long on rock."""
        return np.where(self._fields(grid)["labels"] > 0, DECORRELATION_DAYS["ice"],
                        DECORRELATION_DAYS["rock"])

    def uav_footprint(self, grid):
        """The UAV surveys: a 2.2 × 2.2 km box (at size small) over the lower trunk, its centre
        line and both margins."""
        x, y = self._xy(grid)
        cx = self.origin[0] + 4.55 / 7.5 * self.side
        cy = self.origin[1] - 5.2 / 7.5 * self.side
        half = 1.1 / 7.5 * self.side
        return (np.abs(x - cx) < half) & (np.abs(y - cy) < half)

    def stable_polygons(self, grid):
        """Stable ground more than :data:`STABLE_BUFFER` from every glacier and two pixels inside
        the scene, traced along ``grid``'s pixel edges (rasterised back, it gives those pixels)."""
        from ..io.vector import mask_polygons

        inner = np.zeros(grid.shape, bool)
        inner[2:-2, 2:-2] = True
        return mask_polygons(self.stable_mask(grid) & inner, grid)

    def outline_polygons(self, grid=None):
        """Each glacier's outline as polygon rings (exterior, holes) traced on a 10 m grid."""
        from ..io.vector import mask_polygons

        grid = grid or self.grid(10.0)
        lab = self._fields(grid)["labels"]
        return {g.gid: mask_polygons(lab == g.gid, grid, simplify=5.0) for g in self.glaciers}
