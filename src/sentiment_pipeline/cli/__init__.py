"""The `sentiment-pipeline` command line: one Typer app, its commands in two modules."""

from sentiment_pipeline.cli import inference, pipeline  # noqa: F401 - each registers its commands
from sentiment_pipeline.cli.common import app

__all__ = ["app"]
