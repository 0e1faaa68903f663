"""Prepare stage: model-neutral text normalisation and a stratified train/val/test split.

A predefined split (rows whose `origin` is val_source or test_source) is used as given, after
the same normalisation; only the splits that are not given are carved from data.source, whose
rows holding a text of a given split are dropped first and counted in
reports/data_preparation.json.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from sentiment_pipeline import runner
from sentiment_pipeline.config.data import ORIGIN, PREDEFINED_SPLITS
from sentiment_pipeline.config.split import SplitConfig
from sentiment_pipeline.data.splits import KEY_OF, normalize_text, remove_overlap
from sentiment_pipeline.errors import DataError
from sentiment_pipeline.io import write_json, write_parquet
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.runner import Stage

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
DROPS = ("dropped_empty", "dropped_duplicates", "dropped_conflicting")


@dataclass(frozen=True)
class PrepareResult:
    train: int
    val: int
    test: int
    labels: tuple[str, ...]
    dropped_empty: int
    dropped_duplicates: int
    dropped_conflicting: int
    given: tuple[str, ...] = ()  # the splits used as given (data.val_source, data.test_source)
    # rows dropped from the training side: data.* key -> key of the split holding the text -> n
    overlap_removed: dict[str, dict[str, int]] = field(default_factory=dict)


def normalize_frame(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Normalised texts without the rows that became empty or duplicates; and the drop counts.

    Texts that now coincide with different labels are all dropped (no label to trust);
    with the same label the first is kept.
    """
    text = frame["text"].astype("str").map(normalize_text)
    out = pd.DataFrame({"text": text, "label": frame["label"].astype("str")})
    empty = out["text"] == ""
    out = out[~empty]
    conflicting = out.groupby("text", sort=False)["label"].transform("nunique") > 1
    out = out[~conflicting]
    duplicated = out.duplicated("text", keep="first")
    out = out[~duplicated].reset_index(drop=True)
    drops = {
        "dropped_empty": int(empty.sum()),
        "dropped_conflicting": int(conflicting.sum()),
        "dropped_duplicates": int(duplicated.sum()),
    }
    return out, drops


def check_stratifiable(
    labels: pd.Series, config: SplitConfig, carved: Sequence[str] = ("val", "test")
) -> None:
    """Raise a DataError when a class has too few rows to appear in train and each carved split."""
    counts = labels.value_counts().sort_index()
    fractions = {name: getattr(config, f"{name}_fraction") for name in carved}
    # Fewer rows than this cannot give every split at least one row of the class.
    needed = max(len(carved) + 1, math.ceil(1 / min(fractions.values()) - 1e-9))
    small = {str(k): int(v) for k, v in counts.items() if v < needed}
    if small:
        shown = " and ".join(f"split.{name}_fraction={v:g}" for name, v in fractions.items())
        raise DataError(
            f"too few rows to stratify the split: classes {small} have fewer than {needed} rows "
            f"(needed with {shown}); add data for these classes or raise the fractions"
        )


def _stratified(
    frame: pd.DataFrame, size: float, config: SplitConfig
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rest, part): a stratified share `size` of the rows, reproducible from the seed."""
    from sklearn.model_selection import train_test_split

    try:
        rest, part = train_test_split(
            frame, test_size=size, stratify=frame["label"], random_state=config.seed
        )
    except ValueError as exc:
        counts = frame["label"].value_counts().sort_index().to_dict()
        raise DataError(
            f"cannot stratify the split with class counts {counts}: {exc}; add data or change "
            "split.val_fraction / split.test_fraction"
        ) from exc
    return rest.reset_index(drop=True), part.reset_index(drop=True)


def split_frame(frame: pd.DataFrame, config: SplitConfig) -> dict[str, pd.DataFrame]:
    """Stratified train/val/test split of (text, label-id) rows, reproducible from the seed."""
    rest, test = _stratified(frame, config.test_fraction, config)
    train, val = _stratified(rest, config.val_fraction / (1 - config.test_fraction), config)
    return {"train": train, "val": val, "test": test}


def carve(
    pool: pd.DataFrame, config: SplitConfig, missing: Sequence[str]
) -> dict[str, pd.DataFrame]:
    """train and the `missing` splits from data.source's rows; a split's fraction is of those."""
    if list(missing) == ["val", "test"]:
        return split_frame(pool, config)
    if not missing:
        return {"train": pool.reset_index(drop=True)}
    (name,) = missing
    train, part = _stratified(pool, getattr(config, f"{name}_fraction"), config)
    return {"train": train, name: part}


def by_origin(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Validated rows by the data.* key they came from (all data.source's without `origin`)."""
    if ORIGIN not in frame.columns:
        return {"source": frame}
    origin = frame[ORIGIN].astype("str")
    keys = ("source", *PREDEFINED_SPLITS)
    unknown = sorted(set(origin) - set(keys))
    if unknown:
        raise DataError(
            f"the validated data holds rows of the origin {unknown}, expected one of "
            f"{list(keys)}; rerun the validate stage"
        )
    parts = {
        key: frame[origin == key].drop(columns=ORIGIN) for key in keys if (origin == key).any()
    }
    if "source" not in parts:
        raise DataError(
            "the validated data holds no rows of data.source, only of predefined splits; "
            "rerun the validate stage"
        )
    return parts


def check_given_labels(given: Mapping[str, pd.DataFrame], labels: Sequence[str]) -> None:
    """A given split may hold only classes that training (data.source's rows) holds."""
    for name, part in given.items():
        extra = sorted(set(part["label"]) - set(labels))
        if extra:
            raise DataError(
                f"the predefined {name} split (data.{KEY_OF[name]}) holds the classes {extra}, "
                f"which data.source's training rows do not (classes {list(labels)}); a model "
                f"cannot learn them: fix data.{KEY_OF[name]} or map its labels onto these "
                "classes with data.label_map"
            )


def prepare_frame(
    frame: pd.DataFrame, config: SplitConfig
) -> tuple[dict[str, pd.DataFrame], list[str], dict[str, Any]]:
    """Validated rows (text, class name[, origin]) -> splits with int64 label ids, class order,
    and a report: rows dropped per source (`dropped`), the splits used as `given`, and the
    rows removed from the training side because a given split holds their text
    (`overlap_removed`, see remove_overlap)."""
    cleaned: dict[str, pd.DataFrame] = {}
    dropped: dict[str, dict[str, int]] = {}
    for key, part in by_origin(frame).items():
        cleaned[key], dropped[key] = normalize_frame(part)
    given = {split: cleaned[key] for key, split in PREDEFINED_SPLITS.items() if key in cleaned}
    pool, given, removed = remove_overlap(cleaned["source"], given)
    if pool.empty:
        because = " and the removal of the texts of the predefined splits" if removed else ""
        raise DataError(
            f"no rows left to split after normalisation{because}; check the validated data"
        )
    missing = [name for name in ("val", "test") if name not in given]
    if missing:
        check_stratifiable(pool["label"], config, missing)
    labels = sorted(pool["label"].unique())
    check_given_labels(given, labels)
    ids = {name: i for i, name in enumerate(labels)}

    def with_ids(part: pd.DataFrame) -> pd.DataFrame:
        return part.assign(label=part["label"].map(ids).astype("int64")).reset_index(drop=True)

    splits = carve(with_ids(pool), config, missing)
    splits.update({name: with_ids(part) for name, part in given.items()})
    for name, part in splits.items():
        if part.empty:  # only a given val split can end up empty: carved ones are stratified
            raise DataError(
                f"no rows left in the predefined {name} split: every text of "
                f"data.{KEY_OF[name]} is in data.test_source too; give another val split or "
                f"set data.{KEY_OF[name]} to null to carve it from data.source"
            )
    report = {
        "dropped": dropped,
        "given": [name for name in SPLITS if name in given],
        "overlap_removed": removed,
    }
    return {name: splits[name] for name in SPLITS}, labels, report


def run(config: SplitConfig, paths: ProjectPaths) -> PrepareResult:
    from sentiment_pipeline import tracking

    if not paths.validated.is_file():
        raise DataError(f"no validated data at {paths.validated}; run the validate stage first")
    frame = pd.read_parquet(paths.validated)
    splits, labels, report = prepare_frame(frame, config)
    sizes = {name: len(splits[name]) for name in SPLITS}
    drops = {k: sum(d[k] for d in report["dropped"].values()) for k in DROPS}
    written = {
        "rows": sizes,
        "labels": labels,
        "split_from": {
            name: f"data.{KEY_OF[name]}" if name in report["given"] else "data.source"
            for name in SPLITS
        },
        **report,
    }
    with tracking.stage_run(STAGE.name, config, paths):
        tracking.log_metrics(
            {
                **{f"{k}_rows": v for k, v in sizes.items()},
                **drops,
                "overlap_removed": report["overlap_removed"],
            }
        )
        for name in SPLITS:
            write_parquet(paths.split(name), splits[name])
        write_json(paths.labels, labels)
        write_json(paths.preparation_report, written)
    logger.info(
        "split %s rows over classes %s (given: %s); dropped %s; removed from the training side "
        "as texts of a given split: %s",
        sizes, labels, report["given"] or "none", drops, report["overlap_removed"] or "none",
    )
    return PrepareResult(
        **sizes,
        labels=tuple(labels),
        **drops,
        given=tuple(report["given"]),
        overlap_removed=report["overlap_removed"],
    )


STAGE = Stage("prepare", "split", SplitConfig, run)

if __name__ == "__main__":
    runner.main(STAGE)
