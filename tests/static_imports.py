"""What a module of the package imports, read from its source with `ast` (nothing is imported).

Every import statement counts, wherever it is: at the top, inside a function, under
`if TYPE_CHECKING:`. Importing `a.b.c` also runs `a/__init__.py` and `a/b/__init__.py`, so
those count as reached too.
"""

from __future__ import annotations

import ast
from collections import deque
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "sentiment_pipeline"


@dataclass(frozen=True)
class ImportedName:
    """`from module import name` (name None for a plain `import module`), at a line of a file.

    `bound` is the local name the statement binds (`as` name, or the first part of `a.b.c`).
    """

    module: str
    name: str | None
    line: int
    bound: str


class Package:
    """The modules of PACKAGE under a source root (the `src` folder)."""

    def __init__(self, src: Path) -> None:
        self.src = src

    def file(self, module: str) -> Path | None:
        """The source file of a module or package, or None when there is none."""
        base = self.src.joinpath(*module.split("."))
        for candidate in (base / "__init__.py", base.with_suffix(".py")):
            if candidate.is_file():
                return candidate
        return None

    def modules(self) -> list[str]:
        """Every module of the package, sorted."""
        names = []
        for path in sorted((self.src / PACKAGE).rglob("*.py")):
            parts = path.relative_to(self.src).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
        return names

    def imports(self, module: str) -> list[ImportedName]:
        """Every import statement of `module` that names a module of the package."""
        file = self.file(module)
        if file is None:
            raise LookupError(f"no source file for {module} under {self.src}")
        package = module if file.name == "__init__.py" else module.rpartition(".")[0]
        found = []
        for node in ast.walk(ast.parse(file.read_text(), filename=str(file))):
            if isinstance(node, ast.Import):
                found += [
                    ImportedName(
                        alias.name, None, node.lineno, alias.asname or alias.name.split(".")[0]
                    )
                    for alias in node.names
                ]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    parts = parts[: len(parts) - (node.level - 1)]
                    base = ".".join([*parts, *([node.module] if node.module else [])])
                found += [
                    ImportedName(base, alias.name, node.lineno, alias.asname or alias.name)
                    for alias in node.names
                ]
        return [item for item in found if _ours(item.module)]

    def imported_modules(self, module: str) -> set[str]:
        """The package's modules that `module` imports (`from pkg import mod` gives pkg.mod)."""
        result = set()
        for item in self.imports(module):
            result.add(item.module)
            if item.name and item.name != "*" and self.file(f"{item.module}.{item.name}"):
                result.add(f"{item.module}.{item.name}")
        return result

    def reached(self, module: str) -> dict[str, str | None]:
        """`module` and every module of the package it imports, directly or not.

        Maps each to the module whose import reached it first, breadth first (None for
        `module` and the packages above it).
        """
        seen: dict[str, str | None] = {}
        todo: deque[tuple[str, str | None]] = deque([(module, None)])
        while todo:
            name, importer = todo.popleft()
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):
                prefix = ".".join(parts[:depth])
                if prefix in seen:
                    continue
                if self.file(prefix) is None:
                    raise LookupError(f"{importer} imports {name}, but there is no {prefix} "
                                      f"under {self.src}")
                seen[prefix] = importer
                todo.extend((child, prefix) for child in sorted(self.imported_modules(prefix)))
        return seen


def has_code(path: Path) -> bool:
    """False for a file holding only a docstring and dunder constants (`__version__ = ...`)."""
    for statement in ast.parse(path.read_text()).body:
        if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
            continue
        if (
            isinstance(statement, ast.Assign)
            and isinstance(statement.value, ast.Constant)
            and all(isinstance(t, ast.Name) and t.id.startswith("__") for t in statement.targets)
        ):
            continue
        return True
    return False


def _ours(module: str) -> bool:
    return module == PACKAGE or module.startswith(f"{PACKAGE}.")
