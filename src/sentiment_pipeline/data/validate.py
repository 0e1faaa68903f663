"""Validate stage: schema and per-row checks, split into validated and rejected rows.

Rows of predefined splits (an `origin` column from ingest) are validated source by source with
the same checks, each counted in the report's `sources`; their classes must be data.source's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from sentiment_pipeline import runner
from sentiment_pipeline.config.data import ORIGIN, DataConfig
from sentiment_pipeline.data.values import (
    as_text,
    escape_undecodable,
    has_undecodable,
    is_missing,
    map_values,
)
from sentiment_pipeline.errors import DataError
from sentiment_pipeline.io import write_json, write_parquet
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.runner import Stage

logger = logging.getLogger(__name__)

# One reason per rejected row: the first that applies, in this order.
REASONS = (
    "missing_text",
    "non_string_text",
    "bad_encoding",
    "empty_text",
    "too_short",
    "too_long",
    "missing_label",
    "unknown_label",
    "conflicting_duplicate",
    "duplicate",
)
REQUIRED_COLUMNS = ("text", "label")
# What ingest says about each row (optional: a frame built in memory has only text and label).
TEXT_TYPE, UNDECODABLE = "text_type", "undecodable"


@dataclass(frozen=True)
class ValidationResult:
    total: int
    accepted: int
    rejected: int
    rejected_fraction: float
    reasons: dict[str, int] = field(default_factory=dict)


def class_lookup(label_map: dict[str, str]) -> dict[str, str] | None:
    """Raw label -> class name (a class name maps to itself); None: every label is a class."""
    if not label_map:
        return None
    lookup = {name: name for name in label_map.values()}
    lookup.update(label_map)
    return lookup


def check_schema(frame: pd.DataFrame, where: str = "the raw dataset") -> None:
    """Raise a DataError listing every schema problem (missing columns, non-text dtype)."""
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(
            f"expected columns {list(REQUIRED_COLUMNS)} in {where}, found {list(frame.columns)} "
            f"(missing {missing}); rerun the ingest stage"
        )
    dtype = frame["text"].dtype
    if not (pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype)):
        raise DataError(
            f"the text column in {where} has dtype {dtype}, expected strings; "
            "check that data.text_column names the column holding the text"
        )


def _row_reasons(frame: pd.DataFrame, config: DataConfig) -> pd.Series:
    """The first failing text check per row (None where the text passes).

    A value that is not a string is one in the frame or, from ingest, one whose `text_type`
    is not "string" (stored as its JSON text); an undecodable row is one that ingest flagged
    `undecodable` or whose text or label holds undecodable bytes (lone surrogates).
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
    flag(_undecodable(frame), "bad_encoding")
    length = text.where(is_str, "").map(lambda v: len(v.strip())).astype("int64")
    flag(is_str & (length == 0), "empty_text")
    flag(is_str & (length < config.min_text_chars), "too_short")
    flag(is_str & (length > config.max_text_chars), "too_long")
    return reason


def _undecodable(frame: pd.DataFrame) -> pd.Series:
    found = pd.Series(False, index=frame.index)
    for column in REQUIRED_COLUMNS:
        found |= frame[column].map(lambda v: isinstance(v, str) and has_undecodable(v))
    if UNDECODABLE in frame.columns:
        found |= frame[UNDECODABLE].map(lambda v: not is_missing(v) and bool(v))
    return found.astype(bool)


def _storable(value: object) -> str | None:
    """A rejected value as text Parquet can hold (JSON for a non-string, bytes escaped)."""
    text = as_text(value)
    return None if text is None else escape_undecodable(text)


def validate_frame(
    frame: pd.DataFrame, config: DataConfig
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Split `frame` (columns text, label) into good rows (label = class name) and rejected rows.

    `frame` may carry ingest's `text_type` and `undecodable` columns. Returns (good, rejected,
    report); rejected holds text and label as text (a non-string as JSON, undecodable bytes as
    \\xNN) and the `reason`.
    """
    check_schema(frame)
    frame = frame.reset_index(drop=True)
    reason = _row_reasons(frame, config)

    raw_label = map_values(frame["label"], lambda v: None if is_missing(v) else str(v))
    reason[raw_label.isna() & reason.isna()] = "missing_label"
    lookup = class_lookup(config.label_map)
    if lookup is None:
        classes = raw_label
    else:
        classes = map_values(raw_label, lambda v: lookup.get(v) if v is not None else None)
    reason[classes.isna() & reason.isna()] = "unknown_label"

    ok = reason.isna()
    candidates = pd.DataFrame({"text": frame["text"][ok], "label": classes[ok]})
    labels_per_text = candidates.groupby("text", sort=False)["label"].transform("nunique")
    conflicting = labels_per_text > 1
    reason[conflicting[conflicting].index] = "conflicting_duplicate"
    consistent = candidates[~conflicting]
    reason[consistent.index[consistent.duplicated(["text", "label"], keep="first")]] = "duplicate"

    ok = reason.isna()
    good = pd.DataFrame(
        {"text": frame["text"][ok].astype("str"), "label": classes[ok].astype("str")}
    ).reset_index(drop=True)
    rejected = frame.loc[~ok, list(REQUIRED_COLUMNS)].copy()
    # Parquet needs one type per column; the reason says what was wrong with the value.
    for column in REQUIRED_COLUMNS:
        rejected[column] = map_values(rejected[column], _storable).astype("str")
    rejected["reason"] = reason[~ok].astype("str")
    rejected = rejected.reset_index(drop=True)

    total = len(frame)
    counts = {name: int((reason == name).sum()) for name in REASONS}
    class_names = sorted(set(good["label"]) | set(config.label_map.values()))
    class_counts = {name: int((good["label"] == name).sum()) for name in class_names}
    report = {
        "total": total,
        "accepted": len(good),
        "rejected": len(rejected),
        "rejected_fraction": len(rejected) / total if total else 0.0,
        "reasons": counts,
        "class_balance": {
            "counts": class_counts,
            "shares": {k: v / len(good) if len(good) else 0.0 for k, v in class_counts.items()},
        },
    }
    return good, rejected, report


def validate_sources(
    frame: pd.DataFrame, config: DataConfig
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """validate_frame for each source in the raw dataset's `origin` column, one after another.

    Without that column every row is data.source's: validate_frame's result as it is. With it,
    good and rejected rows keep their `origin`, and the report sums the sources and lists each
    one (its location and its own report) under `sources`.
    """
    locations = config.sources()
    if ORIGIN not in frame.columns:
        if len(locations) > 1:
            raise DataError(
                f"the raw dataset holds only data.source's rows, but {list(locations)[1:]} are "
                "set too; rerun the source and ingest stages"
            )
        return validate_frame(frame, config)
    check_schema(frame)
    unknown = sorted(set(map(str, frame[ORIGIN].unique())) - set(locations))
    if unknown:
        raise DataError(
            f"the raw dataset holds rows of {unknown}, which the configuration does not set "
            f"(sources: {list(locations)}); rerun the source and ingest stages"
        )
    goods, rejects, reports = [], [], {}
    for key, location in locations.items():
        part = frame[frame[ORIGIN] == key].drop(columns=ORIGIN)
        good, rejected, report = validate_frame(part, config)
        goods.append(good.assign(**{ORIGIN: key}))
        rejects.append(rejected.assign(**{ORIGIN: key}))
        reports[key] = {"location": location, **report}
    good = pd.concat(goods, ignore_index=True)
    rejected = pd.concat(rejects, ignore_index=True)
    return good, rejected, {**_summed(list(reports.values()), good, config), "sources": reports}


def _summed(
    reports: list[dict[str, Any]], good: pd.DataFrame, config: DataConfig
) -> dict[str, Any]:
    total = sum(r["total"] for r in reports)
    rejected = sum(r["rejected"] for r in reports)
    class_names = sorted(set(good["label"]) | set(config.label_map.values()))
    counts = {name: int((good["label"] == name).sum()) for name in class_names}
    return {
        "total": total,
        "accepted": len(good),
        "rejected": rejected,
        "rejected_fraction": rejected / total if total else 0.0,
        "reasons": {name: sum(r["reasons"][name] for r in reports) for name in REASONS},
        "class_balance": {
            "counts": counts,
            "shares": {k: v / len(good) if len(good) else 0.0 for k, v in counts.items()},
        },
    }


def check_sources(report: dict[str, Any], good: pd.DataFrame, config: DataConfig) -> list[str]:
    """check_report for each source, and the classes of each predefined split (data.source's).

    Thresholds apply to each source on its own, except data.min_rows_per_class, which is about
    what the models learn from: data.source only.
    """
    if "sources" not in report:
        return check_report(report, config)
    problems = []
    for key, own in report["sources"].items():
        where = "" if key == "source" else f"data.{key} ({own['location']}): "
        problems += [where + p for p in check_report(own, config, key)]
    known = set(good.loc[good[ORIGIN] == "source", "label"])
    for key, own in report["sources"].items():
        extra = sorted(set(good.loc[good[ORIGIN] == key, "label"]) - known)
        if key != "source" and extra:
            problems.append(
                f"data.{key} ({own['location']}) holds the classes {extra}, which data.source "
                f"({config.source}) does not have (its classes: {sorted(known)}); the models "
                f"learn their classes from data.source only: fix data.{key}, or map its labels "
                "onto data.source's classes with data.label_map"
            )
    return problems


def check_report(report: dict[str, Any], config: DataConfig, key: str = "source") -> list[str]:
    """Every threshold the report breaks, as messages naming the figures and the key to change.

    `key` is the data.* key of the source the report is about: the class minimum applies to
    data.source's rows only.
    """
    problems = []
    if report["total"] == 0 and key == "source":
        return ["the raw dataset has no rows; check data.source"]
    if report["total"] == 0:
        return [f"the raw dataset has no rows of it; check data.{key} or rerun the ingest stage"]
    if report["rejected_fraction"] > config.max_rejected_fraction:
        worst = sorted(report["reasons"].items(), key=lambda kv: -kv[1])
        top = ", ".join(f"{name}={count}" for name, count in worst if count)
        hint = (
            "; rows rejected as bad_encoding hold bytes that data.encoding does not decode: if "
            "the whole file is in another encoding, set data.encoding (e.g. cp1252 or latin-1)"
            if report["reasons"].get("bad_encoding")
            else ""
        )
        problems.append(
            f"{report['rejected']} of {report['total']} rows rejected "
            f"({report['rejected_fraction']:.1%}) > data.max_rejected_fraction "
            f"({config.max_rejected_fraction:g}); reasons: {top}; fix the data or raise "
            f"data.max_rejected_fraction{hint}"
        )
    small = {
        name: count
        for name, count in report["class_balance"]["counts"].items()
        if count < config.min_rows_per_class and key == "source"
    }
    if small:
        problems.append(
            f"classes with fewer than data.min_rows_per_class ({config.min_rows_per_class}) "
            f"rows: {small}; add data, lower data.min_rows_per_class or adjust data.label_map"
        )
    return problems


def run(config: DataConfig, paths: ProjectPaths) -> ValidationResult:
    from sentiment_pipeline import tracking

    # Stale outs from an earlier run must not pass for the result of this one if it fails.
    for out in (paths.validated, paths.rejected, paths.validation_report):
        out.unlink(missing_ok=True)
    if not paths.raw_dataset.is_file():
        raise DataError(f"no raw dataset at {paths.raw_dataset}; run the ingest stage first")
    frame = pd.read_parquet(paths.raw_dataset)
    good, rejected, report = validate_sources(frame, config)
    problems = check_sources(report, good, config)
    with tracking.stage_run(STAGE.name, config, paths):
        tracking.log_metrics(
            {k: v for k, v in report.items() if k not in ("class_balance", "sources")}
        )
        for key, own in report.get("sources", {}).items():
            if key != "source":
                tracking.log_metrics({key: {k: own[k] for k in ("total", "accepted", "rejected")}})
        tracking.log_metrics({"class_count": report["class_balance"]["counts"]})
        if problems:
            raise DataError("validation failed: " + "; ".join(problems))
        write_parquet(paths.validated, good)
        write_parquet(paths.rejected, rejected)
        write_json(paths.validation_report, report)
    logger.info(
        "validated %d rows: %d accepted, %d rejected %s",
        report["total"],
        report["accepted"],
        report["rejected"],
        {k: v for k, v in report["reasons"].items() if v},
    )
    return ValidationResult(
        total=report["total"],
        accepted=report["accepted"],
        rejected=report["rejected"],
        rejected_fraction=report["rejected_fraction"],
        reasons=report["reasons"],
    )


STAGE = Stage("validate", "data", DataConfig, run)

if __name__ == "__main__":
    runner.main(STAGE)
