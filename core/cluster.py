"""Running independent tasks here or on a Dask cluster: the plumbing every scaled-out step shares.

``scheduler`` (the ``DASK_SCHEDULER`` parameter) says where: empty or None = in this process,
task after task, as before (each task then reports its own progress and can be cancelled inside);
``tcp://host:port`` = an existing cluster (``dask-scheduler`` + ``dask-worker`` processes);
``local:N`` = a ``LocalCluster`` of N worker processes made for this run and closed after it.

Workers need only numpy, scipy and GDAL's Python bindings, not QGIS nor the plugin: at the start
of a run :func:`run_tasks` zips this ``core`` package on the fly (inside a package named like the
one the plugin is imported as, whose ``__init__`` imports nothing) and sends it with
``Client.upload_file``; functions of ``core`` then unpickle on the workers by reference. It then
asks every worker whether it can import the scientific stack and see the run's files (inputs and
outputs must be on storage every worker sees, under the same path), and refuses with a message
naming the missing package or the path before any task starts.

Tasks are submitted one future each. Progress follows the finished futures; cancelling cancels
the futures still queued or running. A task whose worker dies is rescheduled by Dask on another
worker (its results are gathered once per task, so nothing is duplicated); tasks that write files
write them under a temporary name and move them into place when complete (:mod:`core.io.atomic`),
so a killed attempt leaves no half-written product under the final name.

``distributed`` (Debian ``python3-distributed``) is imported only when a scheduler is given.
"""

import contextlib
import hashlib
import importlib
import os
import shutil
import sys
import tempfile
import time
import uuid
import zipfile

from .errors import InputError
from .progress import ensure

CONNECT_TIMEOUT_S = 8  # the scheduler must answer within 10 s, set-up included
WORKERS_TIMEOUT_S = 60  # a worker starting on a busy machine (or a batch job) takes a while
PARAMETER = "DASK_SCHEDULER"
# what a worker must import, with the Debian package that provides it
WORKER_PACKAGES = (("numpy", "python3-numpy"), ("scipy", "python3-scipy"),
                   ("osgeo.gdal", "python3-gdal (GDAL's Python bindings)"))
_POLL_S = 0.2
_CORE = os.path.dirname(os.path.abspath(__file__))


class ClusterError(InputError):
    """The cluster cannot run the work (no scheduler, a worker lacking a package or a path):
    it stops the whole run, unlike an input error of one task (e.g. one bad pair of a batch)."""


def parse_scheduler(value):
    """``None`` (run here), ``('tcp', address)`` or ``('local', n_workers)`` from a
    ``DASK_SCHEDULER`` value; :class:`InputError` for anything else."""
    text = str(value or "").strip()
    if not text:
        return None
    if text.startswith("local:"):
        n = text[len("local:"):]
        if not n.isdigit() or int(n) < 1:
            raise ClusterError(f"{PARAMETER}: 'local:N' needs a whole number of workers >= 1, not "
                             f"'{text}'.")
        return "local", int(n)
    if text.startswith("tcp://") and ":" in text[len("tcp://"):]:
        return "tcp", text
    raise ClusterError(f"{PARAMETER}: '{text}' is neither empty (run here), tcp://host:port (a "
                     "running Dask scheduler) nor local:N (N local worker processes).")


def worker_name():
    """Address of the Dask worker running the caller, or 'local' outside a worker."""
    if "distributed" in sys.modules:
        try:
            return sys.modules["distributed"].get_worker().address
        except ValueError:  # not inside a worker
            pass
    return "local"


def run_tasks(fn, tasks, scheduler=None, progress=None, visible=(), key="task", on_result=None,
              stage=None):
    """Run ``fn(task)`` for every task and return the results in the order of ``tasks``.

    Here (``scheduler`` empty) each call gets ``progress=`` its share of ``progress``; on a
    cluster (a ``DASK_SCHEDULER`` value, or the client of an open :func:`session`), one future
    per task and ``fn(task)`` (``fn`` must be a module-level function of ``core``, tasks
    picklable). ``visible``: paths every worker must see (files to read, folders to write in).
    ``key``: prefix of the Dask task names. ``on_result(index, result)``, when given, receives
    each result as it arrives (in completion order) and the results are not kept.
    ``stage(index)``, when given, names each task's part of the progress here.
    """
    progress = ensure(progress)
    tasks = list(tasks)
    results = [None] * len(tasks)
    with session(scheduler, visible) as client:
        if client is None:
            for k, task in enumerate(tasks):
                res = fn(task, progress=progress.sub(k / len(tasks), (k + 1) / len(tasks),
                                                     stage(k) if stage else None))
                _store(results, k, res, on_result)
                progress.update((k + 1) / len(tasks))
            return results
        run = uuid.uuid4().hex[:8]
        futures = [client.submit(fn, task, key=f"{key}-{k}-{run}", retries=1, pure=False)
                   for k, task in enumerate(tasks)]
        _follow(client, futures, results, progress, on_result)
    return results


@contextlib.contextmanager
def session(scheduler, visible=()):
    """The cluster of a ``DASK_SCHEDULER`` value for the block: yields None (run here) or a
    ``distributed.Client`` whose workers have ``core`` and see ``visible``
    (:func:`prepare_workers`), closed after the block. For a step with work of its own before
    its tasks: an unreachable scheduler or a worker that cannot serve fails before that work,
    and the step's several :func:`run_tasks` calls share one cluster. An open session's client
    passes through unchanged."""
    if hasattr(scheduler, "submit"):  # a client of an enclosing session
        yield scheduler
        return
    where = parse_scheduler(scheduler)
    if where is None:
        yield None
        return
    with connect(where) as client:
        prepare_workers(client, visible)
        yield client


def _store(results, k, res, on_result):
    if on_result is None:
        results[k] = res
    else:
        on_result(k, res)


def _follow(client, futures, results, progress, on_result):
    """Gather ``futures`` as they finish, reporting progress; cancel them all on cancel/error."""
    index = {f.key: k for k, f in enumerate(futures)}
    done = 0
    try:
        pending = list(futures)
        while pending:
            progress.check()
            finished, still = [], []
            for f in pending:
                (finished if f.done() else still).append(f)
            pending = still
            if not finished:
                time.sleep(_POLL_S)
                continue
            for f in finished:
                _store(results, index[f.key], f.result(), on_result)
                f.release()
                done += 1
            progress.update(done / len(futures))
    except BaseException:
        client.cancel(futures)
        raise


@contextlib.contextmanager
def connect(where):
    """A ``distributed.Client`` on a parsed scheduler (see :func:`parse_scheduler`), closed (with
    its LocalCluster) on exit. An unreachable scheduler is an :class:`InputError` within
    :data:`CONNECT_TIMEOUT_S` seconds."""
    dist = _distributed()
    kind, arg = where
    cluster = None
    if kind == "local":
        _spawn_with_python()
        # loopback only, no dashboard (its HTTP server on a free loopback port): a run's private
        # cluster is not offered to the network
        cluster = dist.LocalCluster(n_workers=arg, threads_per_worker=1, processes=True,
                                    host="127.0.0.1", dashboard_address=None,
                                    scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})
        address = cluster.scheduler_address
    else:
        address = arg
    try:
        client = dist.Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, dist.TimeoutError) as exc:
        if cluster is not None:
            cluster.close()
        raise ClusterError(f"{PARAMETER}: no Dask scheduler answers at {address} within "
                         f"{CONNECT_TIMEOUT_S} s ({type(exc).__name__}). Start one with "
                         "'dask-scheduler' (and workers with 'dask-worker ADDRESS'), check the "
                         "address, port and firewall, or leave the parameter empty to run "
                         "here.") from None
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def prepare_workers(client, visible=()):
    """Ship ``core`` to every worker, then check each can import the scientific stack and see
    ``visible`` paths; :class:`InputError` naming the worker and what it lacks."""
    if not client.scheduler_info().get("workers"):
        try:
            client.wait_for_workers(1, timeout=WORKERS_TIMEOUT_S)
        except TimeoutError:
            raise ClusterError(f"{PARAMETER}: the Dask scheduler at {client.scheduler.address} "
                               f"has no worker after {WORKERS_TIMEOUT_S} s: start some with "
                               "'dask-worker ADDRESS'.") from None
    folder = tempfile.mkdtemp(prefix="gv-core-")
    try:
        client.upload_file(core_zip(folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    paths = sorted({os.path.abspath(str(p)) for p in visible if p})
    reports = client.run(check_worker, paths)
    for worker, (missing, unseen) in sorted(reports.items()):
        if missing:
            raise ClusterError(f"The Dask worker {worker} cannot import {', '.join(missing)}: "
                             "install it there (workers need numpy, scipy and GDAL's Python "
                             "bindings, not QGIS).")
        if unseen:
            raise ClusterError(f"The Dask worker {worker} cannot see '{unseen[0]}'"
                             + (f" (and {len(unseen) - 1} more paths)" if len(unseen) > 1 else "")
                             + ": inputs and outputs must be on storage every worker sees, under "
                               "the same path (a shared file system).")


def check_worker(paths):
    """On a worker: ``(missing packages, paths it cannot see)``; a path is seen when it exists
    and is readable (files) or writable (folders)."""
    missing = []
    for module, package in WORKER_PACKAGES:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(f"{module} (Debian {package})")
    unseen = [p for p in paths
              if not os.access(p, os.W_OK if os.path.isdir(p) else os.R_OK)]
    return missing, unseen


# the zipped package's __init__: imports nothing (no qgis on workers) and, when a newer upload
# reloads it, drops the modules of an older upload so the new core is imported
_ZIP_INIT = '''"""Glacier Velocity core shipped to a Dask worker (no QGIS needed)."""
import sys
for _name in [m for m in sys.modules if m.startswith(__name__ + ".")]:
    del sys.modules[_name]
'''


def core_zip(folder):
    """Write a zip of this ``core`` package into ``folder``, laid out as the package it is imported
    as here (``glacier_velocity/core/...`` with a minimal ``glacier_velocity/__init__.py``, or a
    top-level ``core/``), named after its content; return its path."""
    parts = __name__.split(".")[:-1]  # e.g. ['glacier_velocity', 'core']
    entries = []
    for root, dirs, files in os.walk(_CORE):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for f in sorted(files):
            if f.endswith(".py"):
                full = os.path.join(root, f)
                rel = os.path.relpath(full, _CORE).replace(os.sep, "/")
                entries.append(("/".join(parts + [rel]), full))
    digest = hashlib.sha1()
    for arc, full in sorted(entries):
        digest.update(arc.encode())
        with open(full, "rb") as fh:
            digest.update(fh.read())
    path = os.path.join(folder, f"{parts[0]}_{digest.hexdigest()[:12]}.zip")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for k in range(1, len(parts)):
            z.writestr("/".join(parts[:k]) + "/__init__.py", _ZIP_INIT)
        for arc, full in sorted(entries):
            z.write(full, arc)
    return path


def _spawn_with_python():
    """Worker processes are spawned with the interpreter of the Python running here, which has
    the scientific stack and ``distributed``. Inside QGIS ``sys.executable`` is not it: the QGIS
    program on Windows (spawning it would start QGIS), on Linux whichever ``python3`` comes first
    on PATH (e.g. a pyenv shim without GDAL: its workers die as they start and are restarted for
    ever). The interpreter is checked first, so a broken one is a clear error, not a hang."""
    import multiprocessing
    import subprocess

    python = worker_python()
    modules = ["distributed"] + [m for m, _ in WORKER_PACKAGES]
    code = ("import importlib, sys\nfor m in sys.argv[1:]:\n    try:\n"
            "        importlib.import_module(m)\n    except ImportError:\n        print(m)")
    try:
        missing = subprocess.run([python, "-c", code] + modules, capture_output=True, text=True,
                                 timeout=WORKERS_TIMEOUT_S, env=dict(
                                     os.environ, PYTHONPATH=os.pathsep.join(sys.path))).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ClusterError(f"{PARAMETER}: local workers cannot start with '{python}' "
                           f"({type(exc).__name__}).") from None
    if missing.split():
        raise ClusterError(f"{PARAMETER}: local workers would run '{python}', which cannot "
                           f"import {', '.join(missing.split())}.")
    multiprocessing.get_context("spawn").set_executable(python)


def worker_python():
    """The interpreter of this Python (``<exec_prefix>/bin/pythonX.Y``, ``python.exe`` on
    Windows), else ``sys.executable``: what local worker processes run."""
    v = sys.version_info
    if os.name == "nt":
        candidates = [os.path.join(sys.exec_prefix, "python.exe")]
    else:
        candidates = [os.path.join(sys.exec_prefix, "bin", f"python{v.major}.{v.minor}"),
                      os.path.join(sys.exec_prefix, "bin", f"python{v.major}")]
    for path in candidates:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return sys.executable


def _distributed():
    try:
        return importlib.import_module("distributed")
    except ImportError:
        raise ClusterError(f"{PARAMETER}: running on a Dask cluster needs the Python package "
                         "'distributed' (Debian: apt install python3-distributed; pip: "
                         "distributed); leave the parameter empty to run here.") from None

