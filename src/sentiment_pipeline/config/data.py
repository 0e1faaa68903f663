"""data: where the labelled data comes from and what a valid row is (source, ingest, validate)."""

from __future__ import annotations

from typing import ClassVar, Literal
from urllib.parse import urlparse

from pydantic import Field, field_validator, model_validator

from sentiment_pipeline.config.base import Frozen

REDDIT_URL = (
    "https://raw.githubusercontent.com/Himanshu-1703/reddit-sentiment-analysis/"
    "refs/heads/main/data/reddit.csv"
)


# Predefined splits: the data.* key of each optional source -> the split it is used as. Rows
# ingested from several sources carry the key they came from in the ORIGIN column.
PREDEFINED_SPLITS = {"val_source": "val", "test_source": "test"}
ORIGIN = "origin"


class LabelledSourceConfig(Frozen):
    """A labelled table and what a valid row of it is: what the comments data (data) and the
    aspect data (aspects) share. SECTION is the params.yaml section, as messages name keys."""

    SECTION: ClassVar[str] = "data"

    source: str | None = Field(
        None, description="Local path or http(s) URL of the labelled data (null: none)."
    )
    val_source: str | None = Field(
        None,
        min_length=1,
        description="Optional predefined validation set (local path or http(s) URL), read and "
        "validated like the source and used as the val split as given (null: carved from the "
        "source).",
    )
    test_source: str | None = Field(
        None,
        min_length=1,
        description="Optional predefined test set (e.g. a benchmark's published test set), read "
        "and validated like the source and used as the test split as given (null: carved from "
        "the source).",
    )
    format: Literal["auto", "csv", "tsv", "parquet", "jsonl"] = Field(
        "auto", description="File format; 'auto' picks it from the file extension."
    )
    encoding: str = Field(
        "auto",
        min_length=1,
        description="Text encoding of CSV/TSV/JSON Lines: 'auto' reads UTF-8 (with or without a "
        "BOM) and rejects rows that do not decode (bad_encoding); or any Python codec name.",
    )
    text_column: str = Field("text", min_length=1, description="Column holding the text.")
    label_column: str = Field("label", min_length=1, description="Column holding the label.")
    label_map: dict[str, str] = Field(
        default_factory=lambda: {name: name for name in ("negative", "neutral", "positive")},
        description="Raw label -> class name. A raw label equal to a class name is kept as is.",
    )
    min_text_chars: int = Field(1, ge=1, description="Shortest accepted text, in characters.")
    max_text_chars: int = Field(5000, ge=1, description="Longest accepted text, in characters.")
    max_rejected_fraction: float = Field(
        0.2, ge=0, le=1, description="Fail validation when more rows than this are rejected."
    )
    min_rows_per_class: int = Field(
        10, ge=1, description="Fail validation when a class keeps fewer rows than this."
    )

    @field_validator("source", "val_source", "test_source")
    @classmethod
    def _local_or_http(cls, value: str | None) -> str | None:
        if value is None:
            return value
        # A one-letter scheme is a Windows drive ("C:\\data.csv"), not a URL.
        scheme = urlparse(value).scheme
        if len(scheme) > 1 and scheme not in ("http", "https"):
            raise ValueError(
                f"the scheme {scheme!r} is not supported; give an http(s) URL or a local path "
                "(relative to the project folder, or absolute)"
            )
        return value

    @field_validator("encoding")
    @classmethod
    def _known_codec(cls, value: str) -> str:
        if value == "auto":
            return value
        try:
            "a".encode(value).decode(value)
        except LookupError as exc:
            raise ValueError(
                f"{value!r} is not a text encoding Python knows ({exc}); use auto (UTF-8) or a "
                "codec name such as latin-1, cp1252 or utf-16"
            ) from exc
        except (TypeError, AttributeError, UnicodeError) as exc:
            raise ValueError(f"{value!r} is not a text encoding ({exc}); use auto or e.g. latin-1")\
                from exc
        return value

    @field_validator("label_map", mode="before")
    @classmethod
    def _stringify_keys(cls, value: object) -> object:
        # YAML reads `-1: negative` with an int key; raw labels are compared as strings.
        if isinstance(value, dict):
            return {str(k): str(v) for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _check_lengths(self) -> LabelledSourceConfig:
        if self.min_text_chars > self.max_text_chars:
            raise ValueError(
                f"{self.SECTION}.min_text_chars ({self.min_text_chars}) must not exceed "
                f"{self.SECTION}.max_text_chars ({self.max_text_chars})"
            )
        return self

    @model_validator(mode="after")
    def _check_distinct_sources(self) -> LabelledSourceConfig:
        seen: dict[str, str] = {}
        section = self.SECTION
        for key, location in self.sources().items():
            if location in seen:
                raise ValueError(
                    f"{section}.{key} and {section}.{seen[location]} are both {location!r}; a "
                    f"predefined split must be another file than {section}.source and the other "
                    f"split (null: carve it from {section}.source)"
                )
            seen[location] = key
        return self

    def columns(self) -> dict[str, tuple[str, str]]:
        """Each column of the raw contract -> (the key naming its source column, that column)."""
        return {
            "text": ("text_column", self.text_column),
            "label": ("label_column", self.label_column),
        }

    def sources(self) -> dict[str, str]:
        """The source and each predefined split that is set, by key (source first; none when
        the source is null)."""
        if self.source is None:
            return {}
        given = {key: getattr(self, key) for key in PREDEFINED_SPLITS}
        return {"source": self.source, **{k: v for k, v in given.items() if v is not None}}


class DataConfig(LabelledSourceConfig):
    """Where the raw data comes from and what a valid row is (ingest and validate stages)."""

    source: str = Field(REDDIT_URL, description="Local path or http(s) URL of the labelled data.")
    text_column: str = Field("clean_comment", min_length=1, description="Column holding the text.")
    label_column: str = Field("category", min_length=1, description="Column holding the label.")
    label_map: dict[str, str] = Field(
        default_factory=lambda: {"-1": "negative", "0": "neutral", "1": "positive"},
        description="Raw label -> class name. A raw label equal to a class name is kept as is.",
    )
    download_timeout_s: float = Field(60.0, gt=0, description="Seconds to wait for a download.")

