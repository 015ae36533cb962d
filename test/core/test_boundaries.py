"""The house rules of core/: it never imports qgis, and no step package imports another.

Step packages are named after the method's steps (the toolbox groups); what two steps share lives
in a kernel package below them (``io``, ``arrays``) or in the top-level ``errors`` / ``progress`` /
``cluster``.
"""

import ast
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORE = os.path.join(ROOT, "core")
STEPS = {"correlation", "filters", "timeseries", "fusion", "uncertainty", "trends", "sampledata"}
KERNELS = {"io", "arrays"}


def _core_imports(path):
    """(line, imported core package) for every import in ``path`` that reaches into core/."""
    rel = os.path.relpath(path, CORE).split(os.sep)
    here = rel[:-1]  # package parts below core
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - (node.level - 1)] if node.level > 1 else here
                parts = base + (node.module.split(".") if node.module else [])
                names = [parts[0]] if parts else [a.name for a in node.names]
            elif node.module and ".core." in "." + node.module + ".":
                after = node.module.split("core.", 1)[1] if "core." in node.module else ""
                names = [after.split(".")[0]] if after else [a.name for a in node.names]
            else:
                continue
            for name in names:
                yield node.lineno, name
        elif isinstance(node, ast.Import):
            for a in node.names:
                if ".core." in "." + a.name + ".":
                    yield node.lineno, a.name.split("core.", 1)[1].split(".")[0]


def _modules():
    for folder, _, files in os.walk(CORE):
        for f in files:
            if f.endswith(".py"):
                yield os.path.join(folder, f)


def test_core_is_step_packages_and_kernels():
    packages = {d for d in os.listdir(CORE) if os.path.isdir(os.path.join(CORE, d)) and d != "__pycache__"}
    assert packages == STEPS | KERNELS, packages
    loose = {f for f in os.listdir(CORE) if f.endswith(".py")}
    assert loose == {"__init__.py", "errors.py", "progress.py", "cluster.py"}, loose


def test_no_step_package_imports_another():
    crossings = []
    for path in _modules():
        rel = os.path.relpath(path, CORE).split(os.sep)
        own = rel[0] if len(rel) > 1 else None
        for line, target in _core_imports(path):
            if target in STEPS and target != own:
                crossings.append(f"core/{'/'.join(rel)}:{line} imports core.{target}")
            if own in KERNELS and target in STEPS:
                crossings.append(f"kernel core/{'/'.join(rel)}:{line} imports step core.{target}")
    assert not crossings, "\n".join(crossings)


def test_core_never_imports_qgis():
    """Importing every core module pulls in no qgis module."""
    code = ("import sys, pkgutil, importlib; sys.path.insert(0, sys.argv[1]);"
            "import glacier_velocity.core as c;"
            "[importlib.import_module(m.name) for m in pkgutil.walk_packages(c.__path__, c.__name__ + '.')];"
            "bad = [m for m in sys.modules if m == 'qgis' or m.startswith('qgis.')];"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code, os.path.join(ROOT, ".build", "plugins")], check=True)
