"""What counts as a missing raw value: one rule for the ingest and validate stages."""

from __future__ import annotations

import math

import pandas as pd


def is_missing(value: object) -> bool:
    """None, NaN or pd.NA (scalar-safe: a list is not missing)."""
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))
