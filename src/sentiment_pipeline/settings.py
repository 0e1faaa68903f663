"""Environment settings: where things live, never experiment parameters."""

from __future__ import annotations

from functools import lru_cache

from pydantic import AliasChoices, Field
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
    trust_artifacts: bool = Field(
        False, description="Allow loading scikit-learn artifacts from outside the project folder."
    )
    verbose: bool = Field(
        False,
        description="Stage entries log at DEBUG and print tracebacks; `run --verbose` sets it.",
    )
    host: str = Field("127.0.0.1", description="Serving host.")
    port: int = Field(8000, ge=1, le=65535, description="Serving port.")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
