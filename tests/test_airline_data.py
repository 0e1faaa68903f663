"""The data stages on the real airline tweets in ../shared/data, when they are there."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from conftest import SHARED_DATA
from sentiment_pipeline.config.data import DataConfig
from sentiment_pipeline.config.split import SplitConfig
from sentiment_pipeline.data import ingest, prepare, source, validate
from sentiment_pipeline.paths import ProjectPaths


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.skipif(not SHARED_DATA.is_file(), reason=f"no airline tweets at {SHARED_DATA}")
def test_airline_tweets_go_through_the_data_stages(project: ProjectPaths) -> None:
    data = DataConfig(
        source=str(SHARED_DATA), text_column="text", label_column="airline_sentiment"
    )

    source.run(data, project)
    ingested = ingest.run(data, project)
    validated = validate.run(data, project)
    prepared = prepare.run(SplitConfig(), project)

    assert ingested.rows == pytest.approx(14_640, abs=100)
    assert validated.rejected_fraction < 0.05
    assert prepared.labels == ("negative", "neutral", "positive")
    total = prepared.train + prepared.val + prepared.test
    assert total == pytest.approx(14_600, rel=0.02)
    assert prepared.test == pytest.approx(0.15 * total, abs=2)
    report = json.loads(project.validation_report.read_text())
    assert report["class_balance"]["shares"]["negative"] == pytest.approx(0.63, abs=0.02)
    test = pd.read_parquet(project.split("test"))
    assert sorted(test["label"].unique()) == [0, 1, 2]
