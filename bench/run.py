"""Run every benchmark (bench/bench_*.py), each in its own process, and print its figures.

Each benchmark module has ``main()`` that prints its figures (ours beside a baseline measured in
the same run). This runner adds the wall time and peak memory (max RSS) of each process.
Usage: python bench/run.py [name-substring ...]
"""

import glob
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def main(filters):
    # GDAL's block cache (5 % of RAM by default) would otherwise dominate every peak-RSS figure
    plugins = subprocess.run([os.path.join(ROOT, "scripts", "link-plugin")], check=True,
                             capture_output=True, text=True).stdout.strip()
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", GDAL_CACHEMAX="256", PYTHONPATH=plugins)
    failed = 0
    for path in sorted(glob.glob(os.path.join(HERE, "bench_*.py"))):
        name = os.path.basename(path)[6:-3]
        if filters and not any(f in name for f in filters):
            continue
        print(f"\n=== {name}", flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, path], env=env)
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        print(f"--- {name}: {time.perf_counter() - t0:.1f} s wall; peak RSS of the largest "
              f"benchmark so far {usage.ru_maxrss / 1024:.0f} MB; exit {proc.returncode}", flush=True)
        failed += proc.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
