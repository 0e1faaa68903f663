"""Environment settings the stages read: where things live, never experiment parameters."""

from __future__ import annotations

from functools import lru_cache

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Read from the environment (prefix SENTIMENT_PIPELINE_), with local defaults.

    What only the service and the insights read is in service_settings.ServiceSettings, so
    editing it reruns no stage.
    """

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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
