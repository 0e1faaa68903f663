"""What `--model` names: a model directory or a models:/ URI, parsed here and nowhere else."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sentiment_pipeline.models.artifacts.manifest import ArtifactError

CHAMPION = "champion"
SPEC_FORMS = "a model directory, models:/<name>@<alias> or models:/<name>/<version>"
MODELS_URI = re.compile(r"models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>\d+))")
URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:/")


@dataclass(frozen=True)
class RegistrySpec:
    """A registered model's version, named by an alias or by its number (one of the two)."""

    name: str
    alias: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        if self.alias is not None:
            return f"models:/{self.name}@{self.alias}"
        return f"models:/{self.name}/{self.version}"


def parse_spec(spec: str) -> RegistrySpec | None:
    """The registry version a models:/ URI names; None for a model directory.

    Any other URI (runs:/, s3://, a models:/ URI of another form) is an ArtifactError naming
    the accepted forms.
    """
    match = MODELS_URI.fullmatch(spec)
    if match is not None:
        return RegistrySpec(match["name"], match["alias"], match["version"])
    if spec.startswith("models:/") or URI_SCHEME.match(spec):
        raise ArtifactError(f"cannot resolve the model {spec!r}; expected {SPEC_FORMS}")
    return None

