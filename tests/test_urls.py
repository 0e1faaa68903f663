"""A URL fit for a message: its password hidden, whatever parser reads the URL."""

from __future__ import annotations

import pytest

from sentiment_pipeline.urls import redact


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://bob:s3cret@host:5000/x", "http://bob:***@host:5000/x"),
        ("postgresql+psycopg://bob:s3cret@db:5432/db", "postgresql+psycopg://bob:***@db:5432/db"),
        ("mysql://:s3cret@db/x", "mysql://:***@db/x"),
        # SQLAlchemy reads a password with an unencoded "/", and urlsplit one with an "@"
        ("postgresql://bob:s3/cr@et@db/x?ssl=1", "postgresql://bob:***@db/x?ssl=1"),
    ],
)
def test_the_password_is_hidden_and_the_rest_kept(url, shown):
    assert redact(url) == shown


@pytest.mark.parametrize(
    "url",
    [
        "http://host:5000",
        "postgresql://bob@db/optuna",
        "sqlite:///x/optuna.db",
        "sqlite:///home/a@b/mlruns.db",
        "journal:///shared/study.log",
        "databricks://my-profile",
        "/abs/mlruns",
        "http://[::1",  # not a URL urlsplit can read: nothing to hide, no error
    ],
)
def test_a_url_without_a_password_is_left_as_it_is(url):
    assert redact(url) == url
