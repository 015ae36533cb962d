"""Generate the built-in synthetic sample scene (known truth) into a folder."""

import os

from qgis.core import (QgsProcessingOutputFile, QgsProcessingParameterBoolean,
                       QgsProcessingParameterEnum, QgsProcessingParameterFolderDestination,
                       QgsProcessingParameterNumber)

from ..compat import NUMBER_INTEGER
from ..core.sampledata.scene import SCENES, SIZES, generate_scene
from .base import GlacierAlgorithm
from .styles import (COMPONENT, GLACIERS, SPEED, STABLE, TREND, LayerGroup, load_on_completion,
                     stack_top)

SENSOR_NAMES = {"landsat": "Landsat", "sentinel2": "Sentinel-2", "sentinel1": "Sentinel-1",
                "uav": "UAV"}
SUBGROUPS = ("Speed stacks (m/yr)", "Images", "Truth", "Terrain")


def scene_layers(folder, manifest):
    """The layers of a written scene, top to bottom: ``(path, name, kind, sub-group, ticked)``
    (sub-group None: directly in the scene's group)."""
    paths = {k: os.path.join(folder, v) for k, v in manifest["paths"].items()}
    layers = [(paths["glaciers"], "Glaciers", GLACIERS, None, True),
              (paths["stable"], "Stable ground", STABLE, None, True)]
    for k, sensor in enumerate(("uav", "landsat", "sentinel2", "sentinel1")):
        if f"{sensor}_v" in paths:
            layers.append((paths[f"{sensor}_v"], f"{SENSOR_NAMES[sensor]} speed", SPEED,
                           SUBGROUPS[0], k < 2))
    images = sorted({os.path.join(folder, p[role]) for p in manifest["pairs"]
                     for role in ("reference", "secondary")})
    layers += [(p, os.path.splitext(os.path.basename(p))[0], None, SUBGROUPS[1], False)
               for p in images]
    truth = (("truth_v", "True speed", SPEED), ("truth_vx", "True vx", COMPONENT),
             ("truth_vy", "True vy", COMPONENT), ("true_trend", "True trend", TREND),
             ("flow_direction", "Flow direction (°)", None))
    layers += [(paths[k], name, kind, SUBGROUPS[2], False) for k, name, kind in truth
               if k in paths]
    terrain = (("dem", "DEM"), ("stable_mask", "Stable mask"), ("reference_grid", "Glacier ids"))
    layers += [(paths[k], name, None, SUBGROUPS[3], False) for k, name in terrain if k in paths]
    return layers


class GenerateSceneAlgorithm(GlacierAlgorithm):
    ALG_ID = "generatescene"
    DISPLAY_NAME = "Generate sample scene"
    GROUP = "sampledata"
    HELP = (
        "Writes a synthetic glacier scene with known truth, to try every algorithm of the plugin "
        "and to check its numbers: four glaciers (accelerating, decelerating, steady, and a small "
        "one) on stable ground in UTM 45N; image pairs (Landsat-like 15 m and Sentinel-2-like 10 m "
        "with clouds, Sentinel-1-like 10 m with speckle); monthly speed stacks per sensor on a 30 "
        "m grid (m/yr) with noise, bias, gaps and outliers; a UAV stack over a small footprint; "
        "the DEM, glacier and stable ground polygons (vectors.gpkg) and the truth (true stacks, "
        "trend in m/yr per decade, flow direction). scene.json lists every file and the true "
        "numbers. The same size, years and seed always give the same scene. With IMAGE_SERIES, "
        "each sensor also gets an image pair every 30 days under series/<sensor>/ (revisit "
        "baselines: Landsat 16, Sentinel-2 10, Sentinel-1 12 days), the input of the whole chain "
        "from images to trends; scene.json's series_rules give the MIN_DAYS/MAX_DAYS that pair "
        "exactly those images. Run from the toolbox, the scene opens as one layer group: glaciers, stable "
        "ground, the speed stacks (styled, the UAV and Landsat ones shown), and the images, truth "
        "and terrain layers (hidden)."
    )
    PARAM_HELP = {
        "SCENE": "landscape: ellipses (four elliptic tongues, default) or valley (the realistic "
                 "dendritic valley glacier).",
        "SIZE": "side of the scene: tiny 3 km, small 6 km (default), medium 12 km, large 24 km "
                "(the valley scene 1.25 times that).",
        "FIRST_YEAR": "first calendar year of the monthly series.",
        "YEARS": "number of years of monthly velocities (10 gives 120 months).",
        "SEED": "random seed; the same seed gives the same scene.",
        "IMAGE_SERIES": "also write a monthly series of image pairs per sensor (series/<sensor>/; "
                        "slower, default off).",
        "OUTPUT": "folder that receives the scene (created if needed).",
        "MANIFEST": "path of scene.json, the list of files and true values.",
    }
    SIZE_KEYS = list(SIZES)

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterEnum(
            "SCENE", "Scene", options=list(SCENES), defaultValue=0))
        self.addParameter(QgsProcessingParameterEnum(
            "SIZE", "Scene size", options=[f"{k} ({SIZES[k] / 1000:g} km)" for k in self.SIZE_KEYS],
            defaultValue=self.SIZE_KEYS.index("small")))
        self.addParameter(QgsProcessingParameterNumber(
            "FIRST_YEAR", "First year", NUMBER_INTEGER, 2015, minValue=1980, maxValue=2100))
        self.addParameter(QgsProcessingParameterNumber(
            "YEARS", "Number of years", NUMBER_INTEGER, 10, minValue=1, maxValue=50))
        self.addParameter(QgsProcessingParameterNumber(
            "SEED", "Random seed", NUMBER_INTEGER, 0, minValue=0))
        self.addParameter(QgsProcessingParameterBoolean(
            "IMAGE_SERIES", "Image-pair series per sensor", defaultValue=False))
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT", "Output folder"))
        self.addOutput(QgsProcessingOutputFile("MANIFEST", "Scene manifest (scene.json)"))

    def process(self, parameters, context, feedback):
        folder = self.parameterAsString(parameters, "OUTPUT", context)
        size = self.SIZE_KEYS[self.parameterAsEnum(parameters, "SIZE", context)]
        scene = SCENES[self.parameterAsEnum(parameters, "SCENE", context)]
        manifest = generate_scene(folder, size,
                       self.parameterAsInt(parameters, "FIRST_YEAR", context),
                       self.parameterAsInt(parameters, "YEARS", context),
                       self.parameterAsInt(parameters, "SEED", context),
                       self.progress(feedback),
                       image_series=self.parameterAsBoolean(parameters, "IMAGE_SERIES", context),
                       scene=scene)
        feedback.pushInfo(f"Sample scene ({scene}, {size}) written to {folder}")
        # loaded as one group when run from the toolbox (scripts and qgis_process load nothing)
        group = LayerGroup(f"Sample scene ({scene}, {size})", SUBGROUPS)
        # every speed layer on one scale (near the fastest true speeds), so their colours compare
        top = stack_top(os.path.join(folder, manifest["paths"]["truth_v"]))
        for order, (path, name, kind, sub, ticked) in enumerate(scene_layers(folder, manifest)):
            load_on_completion(context, path, name, kind, vector=kind in (GLACIERS, STABLE),
                               top=top if kind == SPEED else None, group=group, subgroup=sub,
                               order=order, visible=ticked)
        return {"OUTPUT": folder, "MANIFEST": os.path.join(folder, "scene.json")}
