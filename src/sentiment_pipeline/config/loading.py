"""Reading params.yaml: the file, `--set` overrides, and validating any section of it."""

from __future__ import annotations

import copy
import hashlib
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from sentiment_pipeline.errors import ConfigError, shortened

M = TypeVar("M", bound=BaseModel)

DEFAULT_PARAMS = Path("params.yaml")


def parse_override(item: str) -> tuple[list[str], Any]:
    """Split `a.b.c=value` into (["a", "b", "c"], value), the value read as YAML."""
    key, sep, raw = item.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts):
        raise ConfigError(
            f"cannot read the override {item!r}: expected KEY=VALUE with a dotted key, "
            "e.g. --set train.distilbert.enable=false"
        )
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    # PyYAML's tags raise ValueError or TypeError: `!!int 1.5`, `!!float x`
    except (yaml.YAMLError, ValueError, TypeError) as exc:
        raise ConfigError(f"cannot read the value of override {item!r} as YAML: {exc}") from exc
    except RecursionError as exc:  # PyYAML parses nested lists and mappings recursively
        raise ConfigError(
            f"cannot read the value of override {shortened(item)!r} as YAML: it nests lists or "
            "mappings too deeply; give a value a few levels deep at most"
        ) from exc
    return parts, value


def apply_overrides(tree: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Return a copy of `tree` with each `a.b=value` override set."""
    result = copy.deepcopy(dict(tree))
    for item in overrides:
        parts, value = parse_override(item)
        node = result
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                where = ".".join(parts[: depth + 1])
                raise ConfigError(
                    f"cannot apply override {item!r}: {where} holds a value "
                    f"({child!r}), not a section"
                )
            node = child
        node[parts[-1]] = value
    return result


def _describe(error: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> str:
    """One line per pydantic error: the key, the bad value and what is allowed."""
    key = ".".join([*prefix, *(str(p) for p in error["loc"])]) or "<root>"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown key (value {error['input']!r}); check its spelling"
    if isinstance(error.get("input"), Mapping):
        return f"{key}: {message}"
    return f"{key}: got {error['input']!r}; {message}"


def _non_finite(value: object, key: str = "") -> Iterator[str]:
    """One line per NaN or infinite number in a dumped config (`nan` or "nan" pass pydantic)."""
    if isinstance(value, float) and not math.isfinite(value):
        yield (
            f"{key}: got {value!r}; expected a finite number (NaN and infinity are not "
            "accepted; where a key allows no limit, it takes null)"
        )
    elif isinstance(value, Mapping):
        for name, item in value.items():
            yield from _non_finite(item, f"{key}.{name}" if key else str(name))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _non_finite(item, f"{key}.{i}")


def validate_section(
    model: type[M], tree: object, source: str, key: str = ""
) -> M:
    """Validate the params tree (or the section at dotted `key` of it) as `model`, raising one
    ConfigError that lists every problem, each named by its full key."""
    prefix = tuple(key.split(".")) if key else ()
    if not isinstance(tree, Mapping):
        raise _invalid(source, [f"{key or '<root>'}: got {tree!r}; expected a section (a "
                                "mapping of keys)"])
    try:
        config = model.model_validate(tree)
    except ValidationError as exc:
        raise _invalid(source, [_describe(err, prefix) for err in exc.errors()]) from exc
    problems = list(_non_finite(config.model_dump(by_alias=True), key))
    if problems:
        raise _invalid(source, problems)
    return config


def subtree(tree: Mapping[str, Any], key: str) -> object:
    """The value at dotted `key` of a params tree; an absent section is an empty one (its
    defaults), as in the whole tree."""
    node: object = tree
    for part in key.split("."):
        if not isinstance(node, Mapping):
            return node
        node = node.get(part, {})
    return node


def _invalid(source: str, lines: list[str]) -> ConfigError:
    return ConfigError(
        f"invalid configuration in {source} ({len(lines)} problem"
        f"{'s' if len(lines) != 1 else ''}):\n  - " + "\n  - ".join(lines)
    )


def load_params(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(
            f"no parameter file at {path}; run from the project root or pass --params FILE"
        )
    try:  # bytes: PyYAML reads UTF-8 (or UTF-16/32 with a BOM) and reports bad bytes itself
        tree = yaml.safe_load(path.read_bytes()) or {}
    except (yaml.YAMLError, ValueError, TypeError) as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    except RecursionError as exc:
        raise ConfigError(
            f"{path} is not usable YAML: it nests lists or mappings too deeply"
        ) from exc
    if not isinstance(tree, dict):
        raise ConfigError(f"{path} must hold a mapping of sections, found {type(tree).__name__}")
    return tree


def params_hash(model: BaseModel) -> str:
    """A short stable hash of a config model, used to tag runs and name studies."""
    payload = json.dumps(model.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]
