"""Register the evaluation's champion in the MLflow Model Registry and move its aliases."""

from __future__ import annotations

from sentiment_pipeline import runner
from sentiment_pipeline.config.register import RegisterConfig
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.registry.registration import Registration, RegistrationResult, register
from sentiment_pipeline.runner import Stage


def run(config: RegisterConfig, paths: ProjectPaths) -> RegistrationResult:
    return register(
        Registration(stage=STAGE.name, model_name=config.model_name, min_score=config.min_score,
                     best_model=paths.best_model, evaluation_stage="model_evaluation",
                     report=paths.registration, params=config),
        paths,
    )


STAGE = Stage("register_model", "register", RegisterConfig, run)

if __name__ == "__main__":
    runner.main(STAGE)
