"""prepare_aspects stage: the aspect data read, validated and split like the comments data.

aspects.source (and the predefined aspects.val_source / test_source) are read by the table
reader, normalised, and validated by the comments data's row rules keyed on (text, aspect),
plus one: the aspect must occur in its text (aspect_not_in_text). The split follows split.*,
grouped by text (a sentence never sits on two sides); a given split is used as given, and its
texts leave the training side. aspects.source null: empty splits and a "skipped" report.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from sentiment_pipeline import runner
from sentiment_pipeline.config.aspects import (
    ASPECT_CLASSES,
    AspectsDataConfig,
    PrepareAspectsConfig,
)
from sentiment_pipeline.config.data import ORIGIN, PREDEFINED_SPLITS
from sentiment_pipeline.config.split import SplitConfig
from sentiment_pipeline.data import tables
from sentiment_pipeline.data.aspect_split import carve_grouped
from sentiment_pipeline.data.columns import select_columns
from sentiment_pipeline.data.rows import check_sources, validate_sources
from sentiment_pipeline.data.splits import KEY_OF, normalize_text, remove_overlap
from sentiment_pipeline.data.values import map_values
from sentiment_pipeline.errors import DataError
from sentiment_pipeline.io import write_json, write_parquet
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.runner import Stage

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
COLUMNS = ("text", "aspect", "label")
SKIPPED = "no aspect data configured (aspects.source is null)"
OPTIONS = tables.TableOptions(
    format="aspects.format",
    encoding="aspects.encoding",
    source="aspects.source",
    columns="aspects.text_column, aspects.aspect_column or aspects.label_column",
)


@dataclass(frozen=True)
class PrepareAspectsResult:
    status: str  # "prepared" or "skipped"
    train: int = 0
    val: int = 0
    test: int = 0
    rejected: int = 0
    given: tuple[str, ...] = ()
    reasons: dict[str, int] = field(default_factory=dict)


def aspect_missing(frame: pd.DataFrame) -> pd.Series:
    """Rows whose aspect is blank or does not occur in the text (case-insensitively)."""
    return pd.Series(
        [
            not (isinstance(a, str) and a.strip() and isinstance(t, str))
            or a.strip().casefold() not in t.casefold()
            for t, a in zip(frame["text"], frame["aspect"], strict=True)
        ],
        index=frame.index,
        dtype=bool,
    )


CHECKS = (("aspect_not_in_text", aspect_missing),)


def _normalised(value: object) -> object:
    return normalize_text(value) if isinstance(value, str) else value


def read_sources(config: AspectsDataConfig, paths: ProjectPaths) -> pd.DataFrame:
    """Every configured source's rows (text, aspect, label, flags), normalised, with `origin`."""
    tables.codec_of(config.encoding, OPTIONS)
    parts = []
    for key, location in config.sources().items():
        path = paths.resolve(location)
        where = f"{path} (aspects.{key})"
        frame = tables.read_table(path, config.format, encoding=config.encoding, options=OPTIONS)
        raw = select_columns(frame, config, where)
        for column in ("text", "aspect"):
            raw[column] = map_values(raw[column], _normalised)
        parts.append(raw.assign(**{ORIGIN: key}))
    return pd.concat(parts, ignore_index=True)


def split_rows(
    good: pd.DataFrame, config: SplitConfig
) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """Validated rows (text, aspect, class name, origin) -> the three splits with int64 ids."""
    ids = {name: i for i, name in enumerate(ASPECT_CLASSES)}
    by_key = {
        key: good[good[ORIGIN] == key][list(COLUMNS)].reset_index(drop=True)
        for key in ("source", *PREDEFINED_SPLITS)
    }
    given = {split: by_key[key] for key, split in PREDEFINED_SPLITS.items() if len(by_key[key])}
    pool, given, removed = remove_overlap(by_key["source"], given)
    if pool.empty:
        raise DataError(
            "no rows of aspects.source left to train on after validation and the removal of "
            "the texts of the predefined splits; check aspects.source"
        )
    missing = [name for name in ("val", "test") if name not in given]
    splits = carve_grouped(pool, config, missing)
    splits.update(given)
    for name, part in splits.items():
        if part.empty:  # a given val split whose every text is in the given test split
            raise DataError(
                f"no rows left in the predefined {name} split: every text of "
                f"aspects.{KEY_OF[name]} is in aspects.test_source too; give another val split "
                f"or set aspects.{KEY_OF[name]} to null to carve it from aspects.source"
            )
    out = {
        name: typed(splits[name].assign(label=splits[name]["label"].map(ids)))
        for name in SPLITS
    }
    report = {
        "given": [name for name in SPLITS if name in given],
        "overlap_removed": removed,
        "rows": {name: len(part) for name, part in out.items()},
        "texts": {name: int(part["text"].nunique()) for name, part in out.items()},
        "classes": {
            name: {c: int((part["label"] == i).sum()) for c, i in ids.items()}
            for name, part in out.items()
        },
    }
    return out, report


def typed(frame: pd.DataFrame) -> pd.DataFrame:
    """The output contract: text and aspect strings, label an int64 id (no other columns)."""
    return pd.DataFrame(
        {
            "text": frame["text"].astype("str"),
            "aspect": frame["aspect"].astype("str"),
            "label": frame["label"].astype("int64"),
        }
    ).reset_index(drop=True)


def empty_rejected() -> pd.DataFrame:
    return pd.DataFrame(
        {name: pd.Series([], dtype="str") for name in (*COLUMNS, "reason", ORIGIN)}
    )


def _write(
    paths: ProjectPaths,
    splits: dict[str, pd.DataFrame],
    rejected: pd.DataFrame,
    report: dict[str, Any],
) -> None:
    for name in SPLITS:
        write_parquet(paths.aspects_split(name), splits[name])
    write_json(paths.aspects_labels, list(ASPECT_CLASSES))
    write_parquet(paths.aspects_rejected, rejected)
    write_json(paths.aspects_report, report)


def run(config: PrepareAspectsConfig, paths: ProjectPaths) -> PrepareAspectsResult:
    from sentiment_pipeline import tracking

    aspects = config.aspects
    if aspects.source is None:
        empty = typed(pd.DataFrame({name: [] for name in COLUMNS}))
        report = {"status": "skipped", "reason": SKIPPED, "labels": list(ASPECT_CLASSES)}
        _write(paths, dict.fromkeys(SPLITS, empty), empty_rejected(), report)
        logger.info("prepare_aspects skipped: %s", SKIPPED)
        return PrepareAspectsResult(status="skipped")
    frame = read_sources(aspects, paths)
    good, rejected, validation = validate_sources(
        frame, aspects, key=("text", "aspect"), checks=CHECKS
    )
    problems = check_sources(validation, good, aspects)
    if problems:
        raise DataError("aspect data validation failed: " + "; ".join(problems))
    splits, prepared = split_rows(good, config.split)
    report = {"status": "prepared", "labels": list(ASPECT_CLASSES), **validation, **prepared}
    with tracking.stage_run(STAGE.name, config, paths):
        tracking.log_metrics(
            {
                **{f"{name}_rows": n for name, n in prepared["rows"].items()},
                "rejected": validation["rejected"],
                "reasons": validation["reasons"],
            }
        )
        _write(paths, splits, rejected, report)
    logger.info(
        "prepared the aspect data: %s rows (%s texts), %d rejected %s; given: %s",
        prepared["rows"], prepared["texts"], validation["rejected"],
        {k: v for k, v in validation["reasons"].items() if v}, prepared["given"] or "none",
    )
    return PrepareAspectsResult(
        status="prepared",
        **prepared["rows"],
        rejected=validation["rejected"],
        given=tuple(prepared["given"]),
        reasons=validation["reasons"],
    )


STAGE = Stage("prepare_aspects", ("aspects", "split"), PrepareAspectsConfig, run)

if __name__ == "__main__":
    runner.main(STAGE)
