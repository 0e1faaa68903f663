"""serve: the HTTP service (`sentiment-pipeline serve`); no stage reads it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from sentiment_pipeline.config.base import Frozen


class ServeConfig(Frozen):
    """The HTTP service (`sentiment-pipeline serve`); host and port come from the environment."""

    model: str | None = Field(
        None,
        description="Model directory or models:/<name>@<alias> | models:/<name>/<version>; "
        "null: models:/<register.model_name>@champion, else the evaluation's champion folder.",
    )
    aspect_model: str | None = Field(
        None,
        description="The aspect (pair) model served beside it, as a model spec; null: "
        "models:/<register.aspect_model_name>@champion when one is registered, else none; "
        "'none': no aspect model.",
    )
    backend: Literal["auto", "torch", "onnx", "onnx-int8"] = Field(
        "auto",
        description="Transformer runtime; 'auto': int8 ONNX where exported, then fp32 ONNX, "
        "then torch. Scikit-learn models ignore it.",
    )
    max_texts_per_request: int = Field(
        256, ge=1, le=100_000, description="Texts one request may hold (more: 413)."
    )
    max_text_chars: int = Field(
        2000, ge=1, description="Characters per text; longer: truncated if truncate, else 413."
    )
    max_body_bytes: int = Field(
        4_000_000, ge=1024, description="Largest request body in bytes (more: 413)."
    )
    max_concurrent_requests: int = Field(
        512, ge=1, description="Requests in flight per worker, counted once a request's body has "
        "arrived; beyond it: 429 at once.",
    )
    header_timeout_s: float = Field(
        10.0, gt=0, description="Seconds a client has to send a request's headers (from the "
        "connection, or from the request's first byte); then 408 and the connection is closed.",
    )
    body_timeout_s: float = Field(
        60.0, gt=0, description="Seconds a client has, once its headers are in, to send the "
        "whole body; then 408 and the connection is closed.",
    )
    max_parse_workers: int = Field(
        2, ge=1, description="Processes per worker that parse large bodies, read uploads and "
        "run analyses, off the event loop.",
    )
    max_parse_queue: int = Field(
        16, ge=0, description="Jobs that may wait for a parse process; beyond it: 429 at once."
    )
    inline_parse_bytes: int = Field(
        1024, ge=0, description="Bodies up to this size are parsed on the event loop (faster "
        "than a process's round trip); larger ones in a parse process.",
    )
    max_batch_tokens: int = Field(
        16384, ge=1, description="Token budget of one model call that batches requests."
    )
    max_batch_requests: int = Field(
        32, ge=1, description="Requests one model call may batch together (1: no batching)."
    )
    max_wait_ms: float = Field(
        2.0, ge=0, le=1000, description="How long a batch waits for more requests to join."
    )
    threads: int | None = Field(
        None, ge=1, description="Inference threads per worker; null: cores // workers."
    )
    reload_interval_s: float = Field(
        60.0, ge=0, description="Poll the registry alias this often (s) and swap in a new "
        "champion; 0: never.",
    )
