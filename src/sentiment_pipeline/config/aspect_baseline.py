"""train.aspect_baseline: the pair baseline, TF-IDF + LogisticRegression on pair documents."""

from __future__ import annotations

from pydantic import Field

from sentiment_pipeline.config.baseline import BaselineConfig


class AspectBaselineConfig(BaselineConfig):
    """train.aspect_baseline: the baseline's TF-IDF + LR on pair documents."""

    # Chosen on the SemEval-2014 laptops val split (BENCHMARKS.md 11): the pair documents' extra
    # near-aspect features want less regularisation than the comments' texts.
    C: float = Field(3.0, gt=0, description="Inverse regularisation strength.")
