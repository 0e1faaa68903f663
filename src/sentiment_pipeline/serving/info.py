"""GET /info's answer: the primary model's keys as before, plus every model loaded."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from sentiment_pipeline.registry.opening import LoadedModel
from sentiment_pipeline.serving.schemas import InfoResponse as PrimaryInfo


class LoadedInfo(BaseModel):
    """One model the service has loaded."""

    model_config = ConfigDict(protected_namespaces=())

    role: Literal["primary", "aspect"] = Field(
        description="primary: the model /predict and /invocations serve; aspect: the (text, "
        "aspect) pair model the analyses' aspects use (serve.aspect_model)."
    )
    name: str = Field(description="Registered model name, or the manifest's name.")
    version: str | None = Field(description="Registry version; null for a folder.")
    alias: str | None = Field(description="The registry alias it follows (reloaded when it "
                              "moves); null for a folder or a pinned version.")
    source: str = Field(description="What was resolved: a models:/ URI or a folder.")
    kind: str = Field(description="Model kind: sklearn, transformers or onnx.")
    backend: str = Field(description="Runtime: sklearn, torch, onnx or onnx-int8.")
    input: Literal["text", "pair"] = Field(
        description="What one input is: a text, or a (text, aspect) pair."
    )
    labels: list[str] = Field(description="Class names in label-id order.")
    loaded_at: str = Field(description="When this model started serving (UTC, ISO 8601).")


# Named as before, so the OpenAPI document keeps its InfoResponse.
class InfoResponse(PrimaryInfo):
    """What is served, and how; `models` lists every model loaded (the primary first)."""

    models: list[LoadedInfo] = Field(description="The models loaded, the primary first.")


def loaded_info(role: str, loaded: LoadedModel) -> LoadedInfo:
    """`loaded` as /info lists it."""
    return LoadedInfo(
        role=role,
        name=loaded.resolved.name,
        version=loaded.resolved.version,
        alias=loaded.resolved.alias,
        source=loaded.resolved.source,
        kind=loaded.model.manifest.kind,
        backend=loaded.backend,
        input=loaded.model.manifest.input,
        labels=loaded.model.labels,
        loaded_at=loaded.loaded_at.isoformat(),
    )
