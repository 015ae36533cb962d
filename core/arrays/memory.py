"""Memory the machine can give, and a guard that refuses work needing more before it starts.

A request that cannot fit (a search range of 100 000 pixels) fails at once with the figure it
would need, instead of after a minute with numpy's "Unable to allocate" or the system's
out-of-memory killer.
"""

import os

from ..errors import InputError


def available_memory():
    """Bytes of memory available to a new allocation (MemAvailable of /proc/meminfo, else the
    physical memory), or None when it cannot be told."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def human_bytes(n):
    """``n`` bytes in words: '596 GiB', '12.5 MiB'."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}"
        n /= 1024


def require_memory(needed, what, advice=""):
    """:class:`InputError` when ``needed`` bytes exceed the memory available; ``what`` names
    the parameters responsible, ``advice`` says how to need less."""
    available = available_memory()
    if available is not None and needed > available:
        raise InputError(f"{what} would need about {human_bytes(needed)} of memory; this machine "
                         f"has {human_bytes(available)} available. {advice}".strip())
