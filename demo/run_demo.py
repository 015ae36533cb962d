"""The headless demo: generate the sample scene, run every algorithm and the shipped full model
through qgis_process, and write products, tables, figures and ``REPORT.md`` (numbers beside the
scene's truth).

Steps live in ``demo/steps/NN_name.py`` and run in file order; each has ``TITLE`` and
``run(ctx)``. Usage: python demo/run_demo.py --out demo_output [--size small] [--only name]
"""

import argparse
import glob
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
QGIS_PROCESS = os.path.join(ROOT, "scripts", "qgis-process")
# the plugin is imported as glacier_velocity through .build/plugins, made on a fresh clone too
sys.path.insert(0, subprocess.run([os.path.join(ROOT, "scripts", "link-plugin")], check=True,
                                  capture_output=True, text=True).stdout.strip())


class DemoContext:
    """What steps share: output folder, scene manifest and model, products, the report."""

    def __init__(self, out, size):
        self.out = os.path.abspath(out)
        self.size = size
        self.scene = None  # manifest (absolute paths), set by the scene step
        self.model = None  # core.sampledata.scene.SceneModel
        self.products = {}  # outputs later steps use, by name
        self.sections = []
        os.makedirs(self.out, exist_ok=True)

    def path(self, *parts):
        """A path inside the output folder (its folder created)."""
        p = os.path.join(self.out, *parts)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        return p

    def log(self, message):
        print(f"  {message}", flush=True)

    def qgis(self, alg, watch=None, **params):
        """Run ``glaciervelocity:<alg>`` (a model id, any 'provider:alg' or a .model3 path)
        headless; return its outputs.

        Lists are passed as repeated arguments (multiple-layer parameters). ``watch`` maps output
        paths to labels: a progress line is printed as each appears (the steps of a model)."""
        alg = alg if ":" in alg or alg.endswith(".model3") else f"glaciervelocity:{alg}"
        args = [QGIS_PROCESS, "run", alg, "--json", "--"]
        for key, value in params.items():
            for v in (value if isinstance(value, (list, tuple)) else [value]):
                args.append(f"{key}={v}")
        t0 = time.perf_counter()
        pending = dict(watch or {})
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            proc = subprocess.Popen(args, stdout=out, stderr=err, text=True)
            while proc.poll() is None:
                time.sleep(0.5)
                for path in [p for p in pending if os.path.exists(p)]:
                    self.log(f"{pending.pop(path)} ({time.perf_counter() - t0:.0f} s)")
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read(), err.read()
        if proc.returncode != 0:
            raise RuntimeError(f"{alg} failed:\n{stdout[-3000:]}\n{stderr[-3000:]}")
        results = json.loads(stdout[stdout.index("{"):]).get("results", {})
        self.log(f"{os.path.basename(alg)} done in {time.perf_counter() - t0:.1f} s")
        return results

    def report(self, title, lines):
        """Add a section to REPORT.md (markdown lines)."""
        self.sections.append((title, list(lines)))

    def write_report(self, timings=()):
        """Write REPORT.md; ``timings`` are (step title, seconds) of this run."""
        path = os.path.join(self.out, "REPORT.md")
        with open(path, "w") as f:
            f.write("# Glacier Velocity demo report\n\n")
            f.write(f"Sample scene '{self.size}', generated and processed headless with "
                    "`scripts/qgis-process`. Every number stands beside the scene's known truth.\n")
            if timings:
                f.write(f"\nThis run took {sum(t for _, t in timings):.0f} s (" + "; ".join(
                    f"{title.split(':')[0]} {t:.0f} s" for title, t in timings) + ").\n")
            for title, lines in self.sections:
                f.write(f"\n## {title}\n\n" + "\n".join(lines) + "\n")
        return path


def load_steps(only=None):
    steps = []
    for path in sorted(glob.glob(os.path.join(HERE, "steps", "[0-9]*.py"))):
        name = os.path.basename(path)[:-3]
        if only and not any(o in name for o in only) and not name.startswith("10_"):
            continue
        spec = importlib.util.spec_from_file_location(f"demo_step_{name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        steps.append((name, module))
    return steps


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="demo_output")
    parser.add_argument("--size", default="small", help="scene size: tiny, small, medium")
    parser.add_argument("--only", nargs="*", help="run only steps whose name contains these")
    args = parser.parse_args()
    ctx = DemoContext(args.out, args.size)
    steps = load_steps(args.only)
    t_all = time.perf_counter()
    timings = []
    for i, (_name, module) in enumerate(steps, 1):
        print(f"[{i}/{len(steps)}] {module.TITLE}", flush=True)
        t0 = time.perf_counter()
        module.run(ctx)
        timings.append((module.TITLE, time.perf_counter() - t0))
        print(f"      ({timings[-1][1]:.0f} s)", flush=True)
    path = ctx.write_report(timings)
    print(f"\nDemo finished in {time.perf_counter() - t_all:.0f} s. Report: {path}")


if __name__ == "__main__":
    main()
