"""The names sources go by in tables: a file's base name, made unique where names repeat."""

import os


def source_name(path):
    """The name a source goes by in tables: its file base name without extension."""
    return os.path.splitext(os.path.basename(str(path).split("|")[0]))[0]


def unique_names(paths):
    """Base names of ``paths``, made unique by suffixes _2, _3... where they repeat."""
    out = []
    for p in paths:
        name, k = source_name(p), 2
        while name in out:
            name, k = f"{source_name(p)}_{k}", k + 1
        out.append(name)
    return out
