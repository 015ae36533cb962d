"""The names sources and outputs go by: a file's base name, made unique where names repeat."""

import os


def source_name(path):
    """The name a source goes by in tables: its file base name without extension."""
    return os.path.splitext(os.path.basename(str(path).split("|")[0]))[0]


def unique_name(name, used):
    """``name``, or ``name_2``, ``name_3``... when it is already in the set ``used``; the name
    returned is added to ``used``."""
    out, k = name, 2
    while out in used:
        out, k = f"{name}_{k}", k + 1
    used.add(out)
    return out


def unique_names(paths):
    """Base names of ``paths``, made unique by suffixes _2, _3... where they repeat."""
    used = set()
    return [unique_name(source_name(p), used) for p in paths]


def relative_path(target, path):
    """``target`` as a file name when it lies beside ``path``, else its full path (how a product
    names a companion in its metadata, e.g. ERROR_STACK)."""
    if os.path.dirname(os.path.abspath(target)) == os.path.dirname(os.path.abspath(path)):
        return os.path.basename(target)
    return os.path.abspath(target)
