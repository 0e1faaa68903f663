"""What every configuration model shares: frozen, no unknown keys, and the bound checks."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    """A configuration section: immutable, and an unknown key is an error."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())


def ordered_pair(value: tuple, low_positive: bool = False) -> tuple:
    """A [low, high] range: low <= high, and low > 0 when asked."""
    low, high = value
    if low_positive and low <= 0:
        raise ValueError(f"the lower bound must be > 0, got {low}")
    if low > high:
        raise ValueError(f"expected [low, high] with low <= high, got [{low}, {high}]")
    return value


def auto_or_count(value: object, most: int | None = None) -> object:
    """'auto', or a whole number >= 1 (at most `most`); digits in a string are read as one."""
    if value == "auto":
        return value
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    too_big = most is not None and isinstance(value, int) and value > most
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or too_big:
        allowed = f"from 1 to {most}" if most is not None else ">= 1"
        raise ValueError(f"expected auto or an integer {allowed}, got {value!r}")
    return value
