"""The row rules of labelled data (comments and aspects): why a row is rejected, and the report."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from sentiment_pipeline.config.data import ORIGIN, LabelledSourceConfig
from sentiment_pipeline.data.values import (
    as_text,
    escape_undecodable,
    has_undecodable,
    is_missing,
    map_values,
)
from sentiment_pipeline.errors import DataError

# One reason per rejected row: the first that applies, in this order (a caller's own checks
# come after the text checks, see validate_frame).
TEXT_REASONS = (
    "missing_text",
    "non_string_text",
    "bad_encoding",
    "empty_text",
    "too_short",
    "too_long",
)
LABEL_REASONS = ("missing_label", "unknown_label", "conflicting_duplicate", "duplicate")
REASONS = TEXT_REASONS + LABEL_REASONS
REQUIRED_COLUMNS = ("text", "label")
# What ingest says about each row (optional: a frame built in memory has only text and label).
TEXT_TYPE, UNDECODABLE = "text_type", "undecodable"
# A check of the caller's: its reason, and the rows it rejects (a boolean mask of the frame).
Check = tuple[str, Callable[[pd.DataFrame], pd.Series]]


def reasons_with(checks: Sequence[Check] = ()) -> tuple[str, ...]:
    """Every reason in the order they are tried: the text checks, the caller's, the label's."""
    return TEXT_REASONS + tuple(name for name, _ in checks) + LABEL_REASONS


def class_lookup(label_map: dict[str, str]) -> dict[str, str] | None:
    """Raw label -> class name (a class name maps to itself); None: every label is a class."""
    if not label_map:
        return None
    lookup = {name: name for name in label_map.values()}
    lookup.update(label_map)
    return lookup


def check_schema(
    frame: pd.DataFrame, where: str = "the raw dataset", columns: Sequence[str] = REQUIRED_COLUMNS
) -> None:
    """Raise a DataError listing every schema problem (missing columns, non-text dtype)."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"expected columns {list(columns)} in {where}, found {list(frame.columns)} "
            f"(missing {missing}); rerun the ingest stage"
        )
    dtype = frame["text"].dtype
    if not (pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype)):
        raise DataError(
            f"the text column in {where} has dtype {dtype}, expected strings; "
            "check that data.text_column names the column holding the text"
        )


def _row_reasons(
    frame: pd.DataFrame, config: LabelledSourceConfig, columns: Sequence[str]
) -> pd.Series:
    """The first failing text check per row (None where the text passes).

    A value that is not a string is one in the frame or, from ingest, one whose `text_type`
    is not "string" (stored as its JSON text); an undecodable row is one that ingest flagged
    `undecodable` or whose text, label or other `columns` hold undecodable bytes (lone
    surrogates).
    """
    text = frame["text"]
    reason = pd.Series([None] * len(frame), index=frame.index, dtype=object)

    def flag(mask: pd.Series, name: str) -> None:
        reason[mask & reason.isna()] = name

    missing = text.map(is_missing).astype(bool)
    flag(missing, "missing_text")
    is_str = text.map(lambda v: isinstance(v, str)).astype(bool)
    if TEXT_TYPE in frame.columns:
        declared = frame[TEXT_TYPE].map(lambda v: "string" if is_missing(v) else v)
        is_str &= (declared == "string").astype(bool)
    flag(~missing & ~is_str, "non_string_text")
    flag(_undecodable(frame, columns), "bad_encoding")
    length = text.where(is_str, "").map(lambda v: len(v.strip())).astype("int64")
    flag(is_str & (length == 0), "empty_text")
    flag(is_str & (length < config.min_text_chars), "too_short")
    flag(is_str & (length > config.max_text_chars), "too_long")
    return reason


def _undecodable(frame: pd.DataFrame, columns: Sequence[str]) -> pd.Series:
    found = pd.Series(False, index=frame.index)
    for column in columns:
        found |= frame[column].map(lambda v: isinstance(v, str) and has_undecodable(v))
    if UNDECODABLE in frame.columns:
        found |= frame[UNDECODABLE].map(lambda v: not is_missing(v) and bool(v))
    return found.astype(bool)


def _storable(value: object) -> str | None:
    """A rejected value as text Parquet can hold (JSON for a non-string, bytes escaped)."""
    text = as_text(value)
    return None if text is None else escape_undecodable(text)


def validate_frame(
    frame: pd.DataFrame,
    config: LabelledSourceConfig,
    *,
    key: Sequence[str] = ("text",),
    checks: Sequence[Check] = (),
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Split `frame` (columns text, label) into good rows (label = class name) and rejected rows.

    `key`: the columns that make a row one example (text; for aspect data text and aspect):
    rows of one key with different labels are all rejected as conflicting_duplicate, and with
    the same label all but the first as duplicate; key columns other than text are carried
    into both outputs. `checks` reject rows after the text checks, each with its own reason.
    `frame` may carry ingest's `text_type` and `undecodable` columns. Returns (good, rejected,
    report); rejected holds its columns as text (a non-string as JSON, undecodable bytes as
    \\xNN) and the `reason`.
    """
    columns = ["text", *[c for c in key if c != "text"], "label"]
    check_schema(frame, columns=columns)
    frame = frame.reset_index(drop=True)
    reason = _row_reasons(frame, config, columns)
    for name, rejects in checks:
        reason[rejects(frame).astype(bool) & reason.isna()] = name

    raw_label = map_values(frame["label"], lambda v: None if is_missing(v) else str(v))
    reason[raw_label.isna() & reason.isna()] = "missing_label"
    lookup = class_lookup(config.label_map)
    if lookup is None:
        classes = raw_label
    else:
        classes = map_values(raw_label, lambda v: lookup.get(v) if v is not None else None)
    reason[classes.isna() & reason.isna()] = "unknown_label"

    ok = reason.isna()
    candidates = frame.loc[ok, list(key)].assign(label=classes[ok])
    labels_per_key = candidates.groupby(list(key), sort=False)["label"].transform("nunique")
    conflicting = labels_per_key > 1
    reason[conflicting[conflicting].index] = "conflicting_duplicate"
    consistent = candidates[~conflicting]
    reason[consistent.index[consistent.duplicated([*key, "label"], keep="first")]] = "duplicate"

    ok = reason.isna()
    good = frame.loc[ok, columns].astype("str").assign(label=classes[ok].astype("str"))
    good = good.reset_index(drop=True)
    rejected = frame.loc[~ok, columns].copy()
    # Parquet needs one type per column; the reason says what was wrong with the value.
    for column in columns:
        rejected[column] = map_values(rejected[column], _storable).astype("str")
    rejected["reason"] = reason[~ok].astype("str")
    rejected = rejected.reset_index(drop=True)

    total = len(frame)
    counts = {name: int((reason == name).sum()) for name in reasons_with(checks)}
    report = {
        "total": total,
        "accepted": len(good),
        "rejected": len(rejected),
        "rejected_fraction": len(rejected) / total if total else 0.0,
        "reasons": counts,
        "class_balance": _balance(good, config),
    }
    return good, rejected, report


def _balance(good: pd.DataFrame, config: LabelledSourceConfig) -> dict[str, Any]:
    class_names = sorted(set(good["label"]) | set(config.label_map.values()))
    counts = {name: int((good["label"] == name).sum()) for name in class_names}
    return {
        "counts": counts,
        "shares": {k: v / len(good) if len(good) else 0.0 for k, v in counts.items()},
    }


def validate_sources(
    frame: pd.DataFrame,
    config: LabelledSourceConfig,
    *,
    key: Sequence[str] = ("text",),
    checks: Sequence[Check] = (),
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """validate_frame for each source in the raw dataset's `origin` column, one after another.

    Without that column every row is the source's: validate_frame's result as it is. With it,
    good and rejected rows keep their `origin`, and the report sums the sources and lists each
    one (its location and its own report) under `sources`.
    """
    locations = config.sources()
    if ORIGIN not in frame.columns:
        if len(locations) > 1:
            raise DataError(
                f"the raw dataset holds only {config.SECTION}.source's rows, but "
                f"{list(locations)[1:]} are set too; rerun the source and ingest stages"
            )
        return validate_frame(frame, config, key=key, checks=checks)
    check_schema(frame)
    unknown = sorted(set(map(str, frame[ORIGIN].unique())) - set(locations))
    if unknown:
        raise DataError(
            f"the raw dataset holds rows of {unknown}, which the configuration does not set "
            f"(sources: {list(locations)}); rerun the source and ingest stages"
        )
    goods, rejects, reports = [], [], {}
    for name, location in locations.items():
        part = frame[frame[ORIGIN] == name].drop(columns=ORIGIN)
        good, rejected, report = validate_frame(part, config, key=key, checks=checks)
        goods.append(good.assign(**{ORIGIN: name}))
        rejects.append(rejected.assign(**{ORIGIN: name}))
        reports[name] = {"location": location, **report}
    good = pd.concat(goods, ignore_index=True)
    rejected = pd.concat(rejects, ignore_index=True)
    own = list(reports.values())
    total = sum(r["total"] for r in own)
    dropped = sum(r["rejected"] for r in own)
    summed = {
        "total": total,
        "accepted": len(good),
        "rejected": dropped,
        "rejected_fraction": dropped / total if total else 0.0,
        "reasons": {name: sum(r["reasons"][name] for r in own) for name in reasons_with(checks)},
        "class_balance": _balance(good, config),
    }
    return good, rejected, {**summed, "sources": reports}


def check_sources(
    report: dict[str, Any], good: pd.DataFrame, config: LabelledSourceConfig
) -> list[str]:
    """check_report for each source, and the classes of each predefined split (data.source's).

    Thresholds apply to each source on its own, except data.min_rows_per_class, which is about
    what the models learn from: data.source only.
    """
    if "sources" not in report:
        return check_report(report, config)
    data = config.SECTION
    problems = []
    for key, own in report["sources"].items():
        where = "" if key == "source" else f"{data}.{key} ({own['location']}): "
        problems += [where + p for p in check_report(own, config, key)]
    known = set(good.loc[good[ORIGIN] == "source", "label"])
    for key, own in report["sources"].items():
        extra = sorted(set(good.loc[good[ORIGIN] == key, "label"]) - known)
        if key != "source" and extra:
            problems.append(
                f"{data}.{key} ({own['location']}) holds the classes {extra}, which "
                f"{data}.source ({config.source}) does not have (its classes: {sorted(known)}); "
                f"the models learn their classes from {data}.source only: fix {data}.{key}, or "
                f"map its labels onto {data}.source's classes with {data}.label_map"
            )
    return problems


def check_report(
    report: dict[str, Any], config: LabelledSourceConfig, key: str = "source"
) -> list[str]:
    """Every threshold the report breaks, as messages naming the figures and the key to change.

    `key` is the key of the source the report is about (source, val_source, test_source): the
    class minimum applies to the source's rows only.
    """
    data = config.SECTION
    problems = []
    if report["total"] == 0 and key == "source":
        return [f"the raw dataset has no rows; check {data}.source"]
    if report["total"] == 0:
        return [f"the raw dataset has no rows of it; check {data}.{key} or rerun the ingest stage"]
    if report["rejected_fraction"] > config.max_rejected_fraction:
        worst = sorted(report["reasons"].items(), key=lambda kv: -kv[1])
        top = ", ".join(f"{name}={count}" for name, count in worst if count)
        hint = (
            f"; rows rejected as bad_encoding hold bytes that {data}.encoding does not decode: "
            f"if the whole file is in another encoding, set {data}.encoding (e.g. cp1252 or "
            "latin-1)"
            if report["reasons"].get("bad_encoding")
            else ""
        )
        problems.append(
            f"{report['rejected']} of {report['total']} rows rejected "
            f"({report['rejected_fraction']:.1%}) > {data}.max_rejected_fraction "
            f"({config.max_rejected_fraction:g}); reasons: {top}; fix the data or raise "
            f"{data}.max_rejected_fraction{hint}"
        )
    small = {
        name: count
        for name, count in report["class_balance"]["counts"].items()
        if count < config.min_rows_per_class and key == "source"
    }
    if small:
        problems.append(
            f"classes with fewer than {data}.min_rows_per_class ({config.min_rows_per_class}) "
            f"rows: {small}; add data, lower {data}.min_rows_per_class or adjust "
            f"{data}.label_map"
        )
    return problems
