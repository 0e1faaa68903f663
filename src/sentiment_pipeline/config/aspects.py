"""aspects: the (text, aspect, sentiment) data of the aspect model (prepare_aspects)."""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import urlparse

from pydantic import Field, field_validator, model_validator

from sentiment_pipeline.config.base import Frozen
from sentiment_pipeline.config.data import LabelledSourceConfig
from sentiment_pipeline.config.split import SplitConfig

# The aspect model's classes, in their id order (data/processed/aspects/labels.json).
ASPECT_CLASSES = ("negative", "neutral", "positive")


class AspectsDataConfig(LabelledSourceConfig):
    """Where the aspect data comes from and what a valid row is (prepare_aspects stage).

    Read, validated and split by the rules of the comments data (data.*); rows are keyed on
    (text, aspect) and the split is grouped by text. The split fractions and seed are split.*.
    """

    SECTION: ClassVar[str] = "aspects"

    source: str | None = Field(
        None,
        min_length=1,
        description="Local path of the (text, aspect, label) rows; CSV, TSV, Parquet or JSON "
        "Lines (null: no aspect data, the aspect stages write placeholders).",
    )
    aspect_column: str = Field(
        "aspect",
        min_length=1,
        description="Column holding the aspect: a term as it occurs in the row's text.",
    )
    label_column: str = Field(
        "sentiment", min_length=1, description="Column holding the sentiment toward the aspect."
    )
    label_map: dict[str, str] = Field(
        default_factory=lambda: {name: name for name in ASPECT_CLASSES},
        description="Raw label -> negative, neutral or positive (a class name is kept as is; "
        "any other label is rejected). An adopted model's names: train.aspects.label_map.",
    )

    def columns(self) -> dict[str, tuple[str, str]]:
        """The comments data's columns and the aspect (see LabelledSourceConfig.columns)."""
        return {**super().columns(), "aspect": ("aspect_column", self.aspect_column)}

    @field_validator("source", "val_source", "test_source")
    @classmethod
    def _local_only(cls, value: str | None) -> str | None:
        if value is not None and urlparse(value).scheme in ("http", "https"):
            raise ValueError(
                f"{value!r} is a URL; the aspect data is read from a local file: download it "
                "and give its path (relative to the project folder, or absolute)"
            )
        return value

    @field_validator("label_map")
    @classmethod
    def _our_classes(cls, value: dict[str, str]) -> dict[str, str]:
        other = sorted(set(value.values()) - set(ASPECT_CLASSES))
        if other:
            raise ValueError(
                f"maps labels onto {other}; the aspect classes are {list(ASPECT_CLASSES)}: map "
                "every raw label to one of them"
            )
        return value

    @model_validator(mode="after")
    def _splits_need_a_source(self) -> AspectsDataConfig:
        given = [key for key in ("val_source", "test_source") if getattr(self, key) is not None]
        if self.source is None and given:
            raise ValueError(
                f"aspects.{given[0]} is set but aspects.source is null; set aspects.source to "
                "the training rows, or set the predefined splits to null too"
            )
        return self


class PrepareAspectsConfig(Frozen):
    """What prepare_aspects reads: the aspect data, and the split of the comments data."""

    aspects: AspectsDataConfig = Field(default_factory=AspectsDataConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
