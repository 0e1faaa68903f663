"""Environment settings: where things live, never experiment parameters."""

from __future__ import annotations

from functools import lru_cache

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Read from the environment (prefix SENTIMENT_PIPELINE_), with local defaults."""

    model_config = SettingsConfigDict(env_prefix="SENTIMENT_PIPELINE_", extra="ignore")

    mlflow_tracking_uri: str | None = Field(
        None,
        validation_alias=AliasChoices(
            "MLFLOW_TRACKING_URI", "SENTIMENT_PIPELINE_MLFLOW_TRACKING_URI"
        ),
        description="MLflow tracking URI; default: a SQLite store mlruns.db in the project folder.",
    )
    optuna_storage: str | None = Field(
        None, description="Optuna RDB storage URL; default: SQLite optuna.db in the project folder."
    )
    optuna_heartbeat_interval: int = Field(
        60, ge=0, description="Seconds between a running trial's heartbeats on a shared RDB "
        "storage (0: none, so a dead worker's trial is never queued again).",
    )
    optuna_grace_period: int | None = Field(
        None, ge=1, description="Seconds without a heartbeat after which a trial's worker is "
        "taken for dead and the trial queued again; default: twice the interval.",
    )
    trust_artifacts: bool = Field(
        False, description="Allow loading scikit-learn artifacts from outside the project folder."
    )
    verbose: bool = Field(
        False,
        description="Stage entries log at DEBUG and print tracebacks; `run --verbose` sets it.",
    )
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
def get_settings() -> Settings:
    return Settings()
