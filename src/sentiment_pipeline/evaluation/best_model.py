"""The champion record an evaluation stage writes and its registration reads (best_model.json)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class BestModel(BaseModel):
    """models/evaluation/best_model.json: the champion, read by register_model."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    name: str
    path: str
    kind: str
    primary_metric: str
    score: float | None
    metrics: dict[str, Any]
    mlflow_run_id: str | None
    evaluation_run_id: str | None
    evaluated: list[str]
    skipped: dict[str, str]
    # Exports of the champion that passed their checks, by serve.backend name
    # ("onnx", "onnx-int8") -> project-relative folder.
    variants: dict[str, str] = {}


class NoChampion(BaseModel):
    """best_model.json of an evaluation with nothing to evaluate (no data, only placeholders)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: Literal["skipped"] = "skipped"
    reason: str
    skipped: dict[str, str] = {}
