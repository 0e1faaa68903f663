"""`python -m sentiment_pipeline.cli`: the same as the `sentiment-pipeline` command."""

from sentiment_pipeline.cli import app

app(prog_name="sentiment-pipeline")
