"""register_aspects stage: the aspect champion as its own registered model and champion alias."""

from __future__ import annotations

from sentiment_pipeline import runner
from sentiment_pipeline.config.register import RegisterConfig
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.registry.registration import Registration, RegistrationResult, register
from sentiment_pipeline.runner import Stage


def run(config: RegisterConfig, paths: ProjectPaths) -> RegistrationResult:
    return register(
        Registration(stage=STAGE.name, model_name=config.aspect_model_name,
                     min_score=config.min_score, best_model=paths.aspect_best_model,
                     evaluation_stage="evaluate_aspects", report=paths.aspect_registration,
                     params=config),
        paths,
    )


STAGE = Stage("register_aspects", "register", RegisterConfig, run)

if __name__ == "__main__":
    runner.main(STAGE)
