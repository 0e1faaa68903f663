"""What import-linter cannot check: no private name (`_x`) is used from another module."""

from __future__ import annotations

import ast
from pathlib import Path

from static_imports import Package

SRC = Path(__file__).resolve().parents[1] / "src"


def private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def dotted(node: ast.expr) -> list[str] | None:
    """`a.b.c` as ["a", "b", "c"]; None for anything but names and attributes."""
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute) and (head := dotted(node.value)):
        return [*head, node.attr]
    return None


def private_uses(package: Package, module: str) -> list[str]:
    """`from m import _x`, and `m._x` where m is a module of the package bound by an import."""
    file = package.file(module)
    where = file.relative_to(package.src)
    imports = package.imports(module)
    uses = [
        f"{where}:{item.line}: from {item.module} import {item.name}"
        for item in imports
        if item.name and private(item.name)
    ]
    modules = {}  # local name -> the module it refers to
    for item in imports:
        if item.name is None:  # `import a.b as x` binds x to a.b; `import a.b` binds a to a
            root = item.module.split(".")[0]
            modules[item.bound] = root if item.bound == root else item.module
        elif package.file(f"{item.module}.{item.name}"):
            modules[item.bound] = f"{item.module}.{item.name}"
    for node in ast.walk(ast.parse(file.read_text())):
        parts = dotted(node) if isinstance(node, ast.Attribute) else None
        if parts and private(parts[-1]) and parts[0] in modules:
            owner = ".".join([modules[parts[0]], *parts[1:-1]])
            if package.file(owner) and owner != module:
                uses.append(f"{where}:{node.lineno}: {'.'.join(parts)}")
    return uses


def test_no_private_name_is_used_from_another_module() -> None:
    package = Package(SRC)

    found = [use for module in package.modules() for use in private_uses(package, module)]

    assert not found, "private names used across modules:\n  " + "\n  ".join(found)


def test_the_check_sees_both_ways_of_reaching_a_private_name(tmp_path: Path) -> None:
    pkg = tmp_path / "sentiment_pipeline"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "base.py").write_text("class _Base: ...\n")
    (pkg / "user.py").write_text(
        "from sentiment_pipeline.base import _Base\n"
        "from sentiment_pipeline import base\n"
        "import sentiment_pipeline.base as b\n"
        "class A(base._Base): ...\n"
        "B = b._Base\n"
        "C = A._private_ok_on_a_class\n"
    )

    assert private_uses(Package(tmp_path), "sentiment_pipeline.user") == [
        "sentiment_pipeline/user.py:1: from sentiment_pipeline.base import _Base",
        "sentiment_pipeline/user.py:4: base._Base",
        "sentiment_pipeline/user.py:5: b._Base",
    ]
