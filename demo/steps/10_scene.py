"""Demo step: the sample scene, generated through the Processing algorithm."""

from glacier_velocity.core.sampledata.scene import load_scene

TITLE = "Generate the sample scene"


def run(ctx):
    folder = ctx.path("scene", "scene.json").rsplit("/", 1)[0]
    ctx.qgis("generatescene", SIZE=["tiny", "small", "medium", "large"].index(ctx.size),
             OUTPUT=folder)
    ctx.scene, ctx.model = load_scene(folder)
    g = ctx.scene["glaciers"]
    lines = [f"Scene: {ctx.scene['side_m'] / 1000:g} km square, EPSG:{ctx.scene['epsg']}, "
             f"{ctx.scene['years']} years of monthly velocities from {ctx.scene['first_year']}, "
             f"{len(ctx.scene['pairs'])} image pairs. Files in `scene/` (see `scene/scene.json`).",
             "", "| glacier | area (km²) | flow/aspect (°) | max speed (m/yr) "
             "| true trend (m/yr per decade) | class |",
             "|---|---|---|---|---|---|"]
    for x in g:
        lines.append(f"| {x['name']} | {x['area_km2']:.2f} | {x['bearing']:.0f} | {x['vmax']:.0f} | "
                     f"{x['true_trend_mean']:+.1f} | {x['expected_class']} |")
    ctx.report("Sample scene (truth)", lines)
