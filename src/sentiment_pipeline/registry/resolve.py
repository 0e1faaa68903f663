"""Model resolution: what `--model` (serve, predict, analyze) names, as folders load_model opens.

A spec is a model directory, `models:/<name>@<alias>`, `models:/<name>/<version>`, or None:
then `models:/<register.model_name>@champion` from the configured registry and, when the
registry cannot be reached, the evaluation's champion (models/evaluation/best_model.json).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# The ONNX variants a transformer may carry, by serve.backend name.
VARIANTS = ("onnx", "onnx-int8")


@dataclass(frozen=True)
class ResolvedModel:
    """A model ready for load_model: its folder, its ONNX variants, and where it came from."""

    path: Path  # the primary model folder (sklearn, transformers, onnx or placeholder)
    name: str  # registered model name, or the manifest's name for a folder
    source: str  # what was resolved, e.g. "models:/sentiment-classifier@champion" or a path
    version: str | None = None  # registry version, None for a folder
    variants: dict[str, Path] = field(default_factory=dict)  # "onnx" / "onnx-int8" -> folder
