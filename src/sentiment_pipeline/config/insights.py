"""insights: analysing a video's comments (serve's /v1/analyze, `analyze`); no stage reads it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from sentiment_pipeline.config.base import Frozen


class InsightsConfig(Frozen):
    """Audience insights: analysing a video's comments (serve's /v1/analyze, `analyze`)."""

    language: str | None = Field(
        "en",
        description="ISO 639-1 code of the language the model was trained on; comments detected "
        "in another language are flagged and left out of the aggregates; null: no check.",
    )
    language_min_chars: int = Field(
        20, ge=1, description="Shorter comments are not language-checked (too little evidence)."
    )
    language_max_probability: float = Field(
        0.01, gt=0, lt=1,
        description="Flag a comment as another language when the identifier gives the model's "
        "language a probability below this (0.01: 6 of 14,482 English airline tweets flagged).",
    )
    include_other_languages: bool = Field(
        False, description="Count flagged other-language comments in the aggregates too."
    )
    max_comments: int = Field(
        1000, ge=1, description="Comments fetched from YouTube when a request names no number."
    )
    max_comments_limit: int = Field(
        10_000, ge=1, description="Most comments one analysis may hold (YouTube or a file)."
    )
    order: Literal["time", "relevance"] = Field(
        "time", description="YouTube commentThreads order."
    )
    top_n: int = Field(5, ge=1, le=100, description="Top comments shown per class.")
    uncertain_n: int = Field(10, ge=0, le=100, description="Least confident predictions shown.")
    terms_n: int = Field(10, ge=1, le=100, description="Distinctive terms shown per class.")
    terms_min_count: int = Field(
        3, ge=1, description="A term must occur this often to be ranked as distinctive."
    )
    max_upload_bytes: int = Field(
        20_000_000, ge=1024, description="Largest file /v1/analyze accepts as an upload (413)."
    )
    max_text_chars: int = Field(
        2000, ge=1,
        description="A comment's text and author are cut to this many characters (ending in "
        "'…') in the answer, the JSON, the CSV and the report; the model reads them whole.",
    )

    max_aspects: int = Field(
        20, ge=0, description="Most aspects one analysis may ask about (413 beyond)."
    )
    max_discover_aspects: int = Field(
        20, ge=0, description="Most aspects one analysis may ask to discover (413 beyond)."
    )
    max_aspect_mentions: int = Field(
        50_000, ge=1,
        description="Most (comment, aspect) mentions one analysis may classify (413 beyond).",
    )
    aspect_examples_n: int = Field(
        3, ge=0, le=100, description="Example comments shown per aspect and class."
    )

    @model_validator(mode="after")
    def _limits(self) -> InsightsConfig:
        if self.max_comments > self.max_comments_limit:
            raise ValueError(
                f"insights.max_comments ({self.max_comments}) must be <= "
                f"insights.max_comments_limit ({self.max_comments_limit})"
            )
        return self
