"""The aspect data's split: stratified as far as the texts allow, grouped by text."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from sentiment_pipeline.config.split import SplitConfig
from sentiment_pipeline.errors import DataError


def grouped_part(
    frame: pd.DataFrame, fraction: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rest, part): about `fraction` of the texts with all their rows, the classes stratified.

    One fold of StratifiedGroupKFold with round(1 / fraction) folds, shuffled by `seed`: a
    text's rows all land on one side.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    folds = max(2, round(1 / fraction))
    texts = frame["text"].nunique()
    if texts < folds:
        raise DataError(
            f"too few texts to split the aspect data: {texts} distinct texts, and a share of "
            f"{fraction:g} needs at least {folds}; add aspect data or raise split.val_fraction "
            "/ split.test_fraction"
        )
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    rest, part = next(splitter.split(frame, frame["label"], groups=frame["text"]))
    return frame.iloc[rest].reset_index(drop=True), frame.iloc[part].reset_index(drop=True)


def carve_grouped(
    pool: pd.DataFrame, config: SplitConfig, missing: Sequence[str]
) -> dict[str, pd.DataFrame]:
    """train and the `missing` splits (val, test) from the pool, grouped by text.

    A split's fraction is of the pool, as for the comments data (prepare.carve).
    """
    parts: dict[str, pd.DataFrame] = {}
    rest, share = pool.reset_index(drop=True), 1.0
    for name in ("test", "val"):
        if name in missing:
            fraction = getattr(config, f"{name}_fraction")
            rest, parts[name] = grouped_part(rest, fraction / share, config.seed)
            share -= fraction
    return {"train": rest, **parts}
