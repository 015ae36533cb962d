"""Helpers shared by the benchmarks (bench/bench_*.py import it; bench/ is their sys.path[0])."""

import resource


def peak_rss_mb():
    """Peak resident memory of this process (MB). VmHWM, unlike ru_maxrss, does not carry a
    parent's peak over the fork of a child process."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
