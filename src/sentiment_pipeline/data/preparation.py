"""Prepare stage: model-neutral text normalisation and a stratified train/val/test split."""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from dataclasses import dataclass

import pandas as pd

from sentiment_pipeline import runner
from sentiment_pipeline.config.entities import PipelineConfig, SplitConfig
from sentiment_pipeline.errors import DataError
from sentiment_pipeline.io import write_json, write_parquet
from sentiment_pipeline.paths import ProjectPaths

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class PrepareResult:
    train: int
    val: int
    test: int
    labels: tuple[str, ...]
    dropped_empty: int
    dropped_duplicates: int
    dropped_conflicting: int


def normalize_text(text: str) -> str:
    """Unicode NFC, whitespace runs collapsed to one space, stripped."""
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


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


def check_stratifiable(labels: pd.Series, config: SplitConfig) -> None:
    """Raise a DataError when a class has too few rows to appear in train, val and test."""
    counts = labels.value_counts().sort_index()
    smallest_share = min(config.val_fraction, config.test_fraction)
    # Fewer rows than this cannot give every split at least one row of the class.
    needed = max(3, math.ceil(1 / smallest_share - 1e-9))
    small = {str(k): int(v) for k, v in counts.items() if v < needed}
    if small:
        raise DataError(
            f"too few rows to stratify the split: classes {small} have fewer than {needed} rows "
            f"(needed with split.val_fraction={config.val_fraction:g} and "
            f"split.test_fraction={config.test_fraction:g}); add data for these classes or "
            "raise the fractions"
        )


def split_frame(frame: pd.DataFrame, config: SplitConfig) -> dict[str, pd.DataFrame]:
    """Stratified train/val/test split of (text, label-id) rows, reproducible from the seed."""
    from sklearn.model_selection import train_test_split

    try:
        rest, test = train_test_split(
            frame,
            test_size=config.test_fraction,
            stratify=frame["label"],
            random_state=config.seed,
        )
        train, val = train_test_split(
            rest,
            test_size=config.val_fraction / (1 - config.test_fraction),
            stratify=rest["label"],
            random_state=config.seed,
        )
    except ValueError as exc:
        counts = frame["label"].value_counts().sort_index().to_dict()
        raise DataError(
            f"cannot stratify the split with class counts {counts}: {exc}; add data or change "
            "split.val_fraction / split.test_fraction"
        ) from exc
    return {
        name: part.reset_index(drop=True)
        for name, part in (("train", train), ("val", val), ("test", test))
    }


def prepare_frame(
    frame: pd.DataFrame, config: SplitConfig
) -> tuple[dict[str, pd.DataFrame], list[str], dict[str, int]]:
    """Validated rows (text, class name) -> splits with int64 label ids, class order, drops."""
    clean, drops = normalize_frame(frame)
    if clean.empty:
        raise DataError("no rows left to split after normalisation; check the validated data")
    check_stratifiable(clean["label"], config)
    labels = sorted(clean["label"].unique())
    ids = {name: i for i, name in enumerate(labels)}
    clean["label"] = clean["label"].map(ids).astype("int64")
    return split_frame(clean, config), labels, drops


def run(config: SplitConfig, paths: ProjectPaths) -> PrepareResult:
    from sentiment_pipeline import tracking

    if not paths.validated.is_file():
        raise DataError(f"no validated data at {paths.validated}; run the validate stage first")
    frame = pd.read_parquet(paths.validated)
    splits, labels, drops = prepare_frame(frame, config)
    sizes = {name: len(splits[name]) for name in SPLITS}
    with tracking.stage_run("prepare", config, paths):
        tracking.log_metrics({**{f"{k}_rows": v for k, v in sizes.items()}, **drops})
        for name in SPLITS:
            write_parquet(paths.split(name), splits[name])
        write_json(paths.labels, labels)
    logger.info("split %s rows over classes %s; dropped %s", sizes, labels, drops)
    return PrepareResult(**sizes, labels=tuple(labels), **drops)


def section(config: PipelineConfig) -> SplitConfig:
    return config.split


def main() -> None:
    runner.main("prepare", run, section)


if __name__ == "__main__":
    main()
