"""Atomic outputs: every file is written under a temporary name beside its destination and moved
into place only when it is complete.

A run that fails, is cancelled or is killed (SIGTERM, SIGKILL, a crash) therefore never leaves a
half-written product at the destination: an old file there stays as it was and no new file
appears. The temporary name is recognisable, ``.<name>.gvpart-<pid>-<host><ext>`` (hidden,
except for tables, see :func:`temporary_path`; the writing process id and its computer's name;
the destination's extension, so drivers that pick the format by extension still work), so the
next run that writes into the same folder removes the leftovers of processes of this computer
that are no longer alive (:func:`remove_leftovers`). The computer's name matters on a cluster:
workers on other machines write into the same shared folder, and their process ids mean
nothing here, so their files are never taken for leftovers.
Side files a driver writes beside the temporary file (``.aux.xml``, shapefile parts, GeoPackage
journals) move or go with it.
"""

import contextlib
import os
import re
import shutil
import socket

from ..errors import InputError

TAG = ".gvpart-"
# pid, then the host (no dots: the extension follows); names without a host are this computer's
_LEFTOVER = re.compile(r"^.*\.gvpart-(\d+)(?:-([A-Za-z0-9-]*))?(\.[^/]*)?$")
HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname().split(".")[0]) or "host"


def temporary_path(path, hidden=True):
    """The temporary name :func:`commit` moves to ``path``: ``.<stem>.gvpart-<pid>-<host><ext>``
    (without the leading dot when not ``hidden``: QGIS names a GeoPackage table after the part of
    the file name before its first dot)."""
    folder, base = os.path.split(os.path.abspath(str(path)))
    stem, ext = os.path.splitext(base)
    return os.path.join(folder,
                        f"{'.' if hidden else ''}{stem}{TAG}{os.getpid()}-{HOST}{ext}")


def check_creatable(path, what="output", folder=False):
    """:class:`InputError` when the file (or, with ``folder``, the folder) ``path`` cannot be
    created because a file stands where a folder is needed. Creates nothing: checked before any
    work, so that a run that would fail at its end fails at once."""
    path = os.path.abspath(str(path))
    if folder and os.path.exists(path) and not os.path.isdir(path):
        raise InputError(f"The {what} '{path}' is a file, not a folder.")
    if not folder and os.path.isdir(path):
        raise InputError(f"The {what} '{path}' is a folder: give a file name.")
    ancestor = os.path.dirname(path)
    while not os.path.exists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        raise InputError(f"The {what} '{path}' cannot be created: '{ancestor}' is a file, not a "
                         "folder.")


def make_folder(folder, what="output folder"):
    """Create ``folder`` (and its parents) and remove dead runs' leftovers in it;
    :class:`InputError` naming it when it cannot be (a path under a file, a read-only disk)."""
    folder = os.path.abspath(str(folder))
    check_creatable(folder, what, folder=True)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise InputError(f"The {what} '{folder}' cannot be created: {exc.strerror or exc}.") \
            from None
    remove_leftovers(folder)
    return folder


def prepare_folder(path, what="output"):
    """Create the folder of the file ``path`` (see :func:`make_folder`); returns it."""
    return make_folder(os.path.dirname(os.path.abspath(str(path))), f"folder of the {what}")


def _alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but belongs to someone else
        return True
    return True


def remove_leftovers(folder):
    """Remove temporary files and folders of runs of this computer that died in ``folder``
    (their process is gone); returns the names removed."""
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        m = _LEFTOVER.match(name)
        if m and m.group(2) in (None, HOST) and not _alive(int(m.group(1))):
            path = os.path.join(folder, name)
            with contextlib.suppress(OSError):
                if os.path.isdir(path):  # a staging folder or a Zarr cube
                    shutil.rmtree(path)
                else:
                    os.remove(path)
                removed.append(name)
    return removed


def _parts(temp):
    """``(temporary file, suffix)`` of ``temp`` and of the side files a driver wrote beside it."""
    folder, base = os.path.split(temp)
    stem = os.path.splitext(base)[0]
    out = []
    for name in os.listdir(folder):
        if name == base or (name.startswith(stem) and name[len(stem):].startswith(".")):
            out.append((os.path.join(folder, name), name[len(stem):]))
    return out


def commit(temp, path):
    """Move the complete temporary file ``temp`` (and its side files) to ``path``."""
    path = os.path.abspath(str(path))
    folder = os.path.dirname(path)
    dest_stem = os.path.splitext(os.path.basename(path))[0]
    main_ext = os.path.splitext(temp)[1]
    for side in (".aux.xml", ".ovr", ".msk"):  # an old side file describes the old content
        if not os.path.exists(temp + side):
            with contextlib.suppress(OSError):
                os.remove(path + side)
    parts = _parts(temp)
    # the main file last: once it is in place, everything that describes it is there too
    parts.sort(key=lambda p: p[0] == temp)
    for part, suffix in parts:
        target = path if part == temp else os.path.join(folder, dest_stem + suffix)
        if part != temp and suffix.startswith(main_ext + "-"):
            os.remove(part)  # a database journal (-wal, -shm) of the closed file
            continue
        os.replace(part, target)
    return path


def discard(temp):
    """Remove the temporary file ``temp`` and its side files (a failed or cancelled write)."""
    with contextlib.suppress(OSError):
        for part, _ in _parts(temp):
            os.remove(part)


@contextlib.contextmanager
def atomic_file(path, what="output"):
    """Yield a temporary path to write ``path``'s content to; it is moved to ``path`` when the
    block ends normally and removed when it raises."""
    prepare_folder(path, what)
    temp = temporary_path(path)
    try:
        yield temp
    except BaseException:
        discard(temp)
        raise
    commit(temp, path)
