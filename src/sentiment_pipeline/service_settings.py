"""Environment settings of the service and the insights: host, port, token, CORS, YouTube."""

from __future__ import annotations

from functools import lru_cache

from pydantic import AliasChoices, Field, SecretStr

from sentiment_pipeline.settings import Settings


class ServiceSettings(Settings):
    """The pipeline's settings plus what `serve` and `analyze` read (prefix SENTIMENT_PIPELINE_)."""

    host: str = Field("127.0.0.1", description="Serving host.")
    port: int = Field(8000, ge=1, le=65535, description="Serving port.")
    # Audience insights (serve's /v1/* routes, the dashboard, `sentiment-pipeline analyze`).
    youtube_api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("SENTIMENT_PIPELINE_YOUTUBE_API_KEY", "YOUTUBE_API_KEY"),
        description="YouTube Data API v3 key of the machine that calls YouTube (never a "
        "browser's).",
    )
    youtube_base_url: str = Field(
        "https://www.googleapis.com/youtube/v3",
        description="Base URL of the YouTube Data API (a test points it at a local fake).",
    )
    api_token: SecretStr | None = Field(
        None,
        description="When set, every route but /health and the dashboard's static files needs "
        "`Authorization: Bearer <token>`.",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins that get CORS headers (JSON list, e.g. '[\"https://a.example\"]'); "
        "empty: none.",
    )
    youtube_rate_per_minute: float = Field(
        6.0, gt=0, description="YouTube analyses per client per minute (token bucket refill), "
        "per server process.",
    )
    youtube_burst: int = Field(
        3, ge=1, description="YouTube analyses a client may make at once (token bucket size)."
    )


@lru_cache(maxsize=1)
def get_service_settings() -> ServiceSettings:
    return ServiceSettings()
