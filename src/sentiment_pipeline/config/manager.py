"""ConfigurationManager: params.yaml + `--set` overrides -> the whole validated tree."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import yaml
from pydantic import BaseModel

from sentiment_pipeline.config.loading import (
    DEFAULT_PARAMS,
    apply_overrides,
    load_params,
    validate_section,
)
from sentiment_pipeline.config.pipeline import PipelineConfig
from sentiment_pipeline.errors import ConfigError


def validate_tree(tree: object, source: str) -> PipelineConfig:
    """Validate a whole params tree, raising one ConfigError that lists every problem."""
    return validate_section(PipelineConfig, tree, source)


def section_of(config: BaseModel, key: str) -> BaseModel:
    """The section at dotted `key` (params.yaml's names, e.g. "register", "train.lightgbm")."""
    node = config
    for part in key.split("."):
        fields = type(node).model_fields
        name = next((n for n, f in fields.items() if (f.alias or n) == part), None)
        value = getattr(node, name) if name else None
        if not isinstance(value, BaseModel):
            raise ConfigError(f"{key} is not a section of the configuration")
        node = value
    return node


class ConfigurationManager:
    """Reads params.yaml once, applies overrides, validates everything up front."""

    def __init__(
        self, params_path: str | Path = DEFAULT_PARAMS, overrides: Iterable[str] = ()
    ) -> None:
        self.params_path = Path(params_path)
        self.overrides = list(overrides)
        self.tree = apply_overrides(load_params(self.params_path), self.overrides)
        self.config = validate_tree(self.tree, str(self.params_path))

    def section(self, key: str) -> BaseModel:
        """One stage's configuration by its params.yaml key, e.g. section("train.distilbert")."""
        return section_of(self.config, key)

    def to_yaml(self) -> str:
        """The resolved, validated configuration (defaults filled in) as YAML."""
        return yaml.safe_dump(self.config.model_dump(mode="json", by_alias=True), sort_keys=False)
