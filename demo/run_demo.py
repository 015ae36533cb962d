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
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# the plugin is imported as glacier_velocity through .build/plugins, made on a fresh clone too
sys.path.insert(0, subprocess.run([os.path.join(ROOT, "scripts", "link-plugin")], check=True,
                                  capture_output=True, text=True).stdout.strip())


class DemoContext:
    """What steps share: output folder, scene manifest and model, products, the report."""

    def __init__(self, out, size, products=None, prefix=""):
        self.out = os.path.abspath(out)
        self.size = size
        self.scene = None  # manifest (absolute paths), set by the scene step
        self.model = None  # core.sampledata.scene.SceneModel
        self.products = {} if products is None else products  # outputs later steps use, by name
        self.sections = []
        self.prefix = prefix  # before each log line of a step run in the background
        self._runner = None
        os.makedirs(self.out, exist_ok=True)

    def fork(self, prefix):
        """A context for a step run in the background: the same folder and products, its own
        QGIS process and report sections."""
        return DemoContext(self.out, self.size, self.products, prefix)

    def path(self, *parts):
        """A path inside the output folder (its folder created)."""
        p = os.path.join(self.out, *parts)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        return p

    def log(self, message):
        say(f"{self.prefix}  {message}")

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
        """CPU seconds (user + system) used so far by the calling thread and this context's
        QGIS process (its threads and children included)."""
        total = time.thread_time()
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
            self._log.close()
            os.close(self._replies)

    def report(self, title, lines):
        """Add a section to REPORT.md (markdown lines)."""
        self.sections.append((title, list(lines)))

    def write_report(self, timings=(), wall=0.0, cpu=0.0):
        """Write REPORT.md; ``timings`` are (step title, wall seconds, CPU seconds) of this
        run's steps, ``wall`` and ``cpu`` the whole run's (steps overlap)."""
        path = os.path.join(self.out, "REPORT.md")
        with open(path, "w") as f:
            f.write("# Glacier Velocity demo report\n\n")
            f.write(f"Sample scene '{self.size}', generated and processed headless with "
                    "QGIS Processing (the algorithms and models `scripts/qgis-process` runs, "
                    "in two QGIS processes: the full model beside the other steps). Every number "
                    "stands beside the scene's known truth.\n")
            if timings:
                f.write(f"\nThis run took {wall:.0f} s of wall time for {cpu:.0f} s of CPU time "
                        "(user + system, QGIS included); per step, wall / CPU: " + "; ".join(
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


def say(line):
    """Print a line in one write: two steps' threads print beside each other."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def run_step(ctx, number, module):
    """Run one step; return (title, wall s, CPU s)."""
    say(f"[{number}] {module.TITLE}" + (" (in the background)" if ctx.prefix else ""))
    t0, c0 = time.perf_counter(), ctx.cpu_seconds()
    module.run(ctx)
    timing = (module.TITLE, time.perf_counter() - t0, ctx.cpu_seconds() - c0)
    say(f"{ctx.prefix}      ({timing[1]:.0f} s, CPU {timing[2]:.0f} s)")
    return timing


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="demo_output")
    parser.add_argument("--size", default="small", help="scene size: tiny, small, medium")
    parser.add_argument("--only", nargs="*", help="run only steps whose name contains these")
    args = parser.parse_args()
    ctx = DemoContext(args.out, args.size)
    steps = load_steps(args.only)
    t_all = time.perf_counter()
    done = {}  # step index -> (timing, report sections)
    # A step with BACKGROUND = True (the full model, most of the demo's time) runs from the start
    # in its own thread and QGIS process beside the others, so both cores work; a step whose
    # NEEDS names it waits for it.
    background = {}
    for i, (name, module) in enumerate(steps):
        if getattr(module, "BACKGROUND", False):
            sub = ctx.fork(f"[{i + 1}/{len(steps)}]")
            thread = threading.Thread(target=_background, args=(sub, i, len(steps), module, done))
            background[name] = thread
            thread.start()
    try:
        for i, (name, module) in enumerate(steps):
            if name in background:
                continue
            for other, thread in background.items():
                if any(n in other for n in getattr(module, "NEEDS", ())):
                    thread.join()
                    _raise_failed(done)
            first = len(ctx.sections)
            timing = run_step(ctx, f"{i + 1}/{len(steps)}", module)
            done[i] = (timing, ctx.sections[first:])
        for thread in background.values():
            thread.join()
        _raise_failed(done)
    finally:
        ctx.close()
    ctx.sections = [s for i in sorted(done) for s in done[i][1]]
    timings = [done[i][0] for i in sorted(done)]
    path = ctx.write_report(timings, time.perf_counter() - t_all, _all_cpu())
    print(f"\nDemo finished in {time.perf_counter() - t_all:.0f} s "
          f"(CPU {_all_cpu():.0f} s). Report: {path}")


def _background(ctx, i, n, module, done):
    try:
        done[i] = (run_step(ctx, f"{i + 1}/{n}", module), ctx.sections)
    except BaseException as e:  # re-raised in the main thread
        done[i] = e
    finally:
        ctx.close()


def _raise_failed(done):
    for value in done.values():
        if isinstance(value, BaseException):
            raise value


def _all_cpu():
    """CPU seconds (user + system) of the demo and every process it started and saw end."""
    return sum(getattr(resource.getrusage(who), f) for who in
               (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN) for f in ("ru_utime", "ru_stime"))


if __name__ == "__main__":
    main()
