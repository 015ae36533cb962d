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
import resource
import select
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
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
        self._runner = None
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
        in the demo's one QGIS process (demo/qgis_runner.py); return its outputs.

        Lists are multiple-layer parameters. ``watch`` maps output paths to labels: a progress
        line is printed as each appears (the steps of a model)."""
        alg = alg if ":" in alg or alg.endswith(".model3") else f"glaciervelocity:{alg}"
        if self._runner is None:
            self._start_runner()
        t0 = time.perf_counter()
        pending = dict(watch or {})
        self._runner.stdin.write(json.dumps({"alg": alg, "params": params}) + "\n")
        self._runner.stdin.flush()
        reply = b""
        while not reply.endswith(b"\n"):
            if select.select([self._replies], [], [], 0.5)[0]:
                chunk = os.read(self._replies, 65536)
                if not chunk:
                    self._runner.wait()
                    self._log.seek(0)
                    raise RuntimeError(f"{alg}: the QGIS process ended (exit code "
                                       f"{self._runner.returncode}):\n{self._log.read()[-3000:]}")
                reply += chunk
            for path in [p for p in pending if os.path.exists(p)]:
                self.log(f"{pending.pop(path)} ({time.perf_counter() - t0:.0f} s)")
        reply = json.loads(reply)
        if not reply["ok"]:
            raise RuntimeError(f"{alg} failed:\n{reply['error'][-3000:]}")
        self.log(f"{os.path.basename(alg)} done in {time.perf_counter() - t0:.1f} s")
        return reply["results"]

    def _start_runner(self):
        """The QGIS process, started once (its start-up is ~4 s of CPU), with qgis-process's
        private profile so the user's is untouched."""
        read_fd, write_fd = os.pipe()
        env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"),
                   QGIS_CUSTOM_CONFIG_PATH=os.path.join(ROOT, ".build", "qgis-config"),
                   PYTHONPATH=os.pathsep.join([sys.path[0]] + [os.environ.get("PYTHONPATH", "")]))
        self._log = tempfile.TemporaryFile("w+")
        self._runner = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "qgis_runner.py"), str(write_fd)],
            stdin=subprocess.PIPE, stdout=self._log, stderr=self._log, text=True,
            pass_fds=(write_fd,), env=env)
        os.close(write_fd)
        self._replies = read_fd

    def cpu_seconds(self):
        """CPU seconds (user + system) used so far by the demo and every process it started,
        the running QGIS process included (RUSAGE_CHILDREN counts only ended ones)."""
        own = resource.getrusage(resource.RUSAGE_SELF)
        ended = resource.getrusage(resource.RUSAGE_CHILDREN)
        total = own.ru_utime + own.ru_stime + ended.ru_utime + ended.ru_stime
        if self._runner is not None:
            with open(f"/proc/{self._runner.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")
        return total

    def close(self):
        """End the QGIS process (its clean exit after the last request)."""
        if self._runner is not None:
            self._runner.stdin.close()
            self._runner.wait()
            self._runner = None

    def report(self, title, lines):
        """Add a section to REPORT.md (markdown lines)."""
        self.sections.append((title, list(lines)))

    def write_report(self, timings=()):
        """Write REPORT.md; ``timings`` are (step title, wall seconds, CPU seconds) of this
        run."""
        path = os.path.join(self.out, "REPORT.md")
        with open(path, "w") as f:
            f.write("# Glacier Velocity demo report\n\n")
            f.write(f"Sample scene '{self.size}', generated and processed headless with "
                    "QGIS Processing (one QGIS process for every algorithm and model run, as "
                    "`scripts/qgis-process` runs them one by one). Every number stands beside "
                    "the scene's known truth.\n")
            if timings:
                f.write(f"\nThis run took {sum(t for _, t, _ in timings):.0f} s of wall time "
                        f"for {sum(c for _, _, c in timings):.0f} s of CPU time (user + system, "
                        "QGIS included); per step, wall / CPU: " + "; ".join(
                            f"{title.split(':')[0]} {t:.0f} / {c:.0f} s"
                            for title, t, c in timings) + ".\n")
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
    try:
        for i, (_name, module) in enumerate(steps, 1):
            print(f"[{i}/{len(steps)}] {module.TITLE}", flush=True)
            t0, c0 = time.perf_counter(), ctx.cpu_seconds()
            module.run(ctx)
            timings.append((module.TITLE, time.perf_counter() - t0, ctx.cpu_seconds() - c0))
            print(f"      ({timings[-1][1]:.0f} s, CPU {timings[-1][2]:.0f} s)", flush=True)
    finally:
        ctx.close()
    path = ctx.write_report(timings)
    print(f"\nDemo finished in {time.perf_counter() - t_all:.0f} s "
          f"(CPU {sum(c for _, _, c in timings):.0f} s). Report: {path}")


if __name__ == "__main__":
    main()
