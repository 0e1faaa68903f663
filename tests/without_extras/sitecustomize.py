"""Packages made missing for a subprocess: its imports of the modules in $BLOCK_IMPORTS fail."""

# On the PYTHONPATH of a subprocess (and so of every process it starts), this file makes each
# module named in BLOCK_IMPORTS (comma-separated; a package blocks its submodules) missing, as on
# a machine where it is not installed: importing it raises ModuleNotFoundError, and
# importlib.util.find_spec (which libraries ask first, MLflow among them) answers None. With
# BLOCK_IMPORTS_REPORT set, each process writes at exit the blocked modules it holds in
# sys.modules (none, unless one was imported before this file ran) to <BLOCK_IMPORTS_REPORT>.<pid>.

import atexit
import importlib.util
import json
import os
import sys

BLOCKED = tuple(name for name in os.environ.get("BLOCK_IMPORTS", "").split(",") if name)


def blocked(name: str) -> bool:
    return any(name == b or name.startswith(f"{b}.") for b in BLOCKED)


class Blocker:
    """A meta path finder ahead of the others that finds a blocked module missing."""

    def find_spec(self, name, path=None, target=None):
        if blocked(name):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
        return None


def find_spec(name, package=None, *, original=importlib.util.find_spec):
    absolute = importlib.util.resolve_name(name, package) if name.startswith(".") else name
    return None if blocked(absolute) else original(name, package)


def report(path: str) -> None:
    held = sorted(name for name in sys.modules if blocked(name))
    with open(f"{path}.{os.getpid()}", "w") as out:
        json.dump({"argv": sys.argv, "blocked_in_sys_modules": held}, out)


if BLOCKED:
    sys.meta_path.insert(0, Blocker())
    importlib.util.find_spec = find_spec
    if os.environ.get("BLOCK_IMPORTS_REPORT"):
        atexit.register(report, os.environ["BLOCK_IMPORTS_REPORT"])
