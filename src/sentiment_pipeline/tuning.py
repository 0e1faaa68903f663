"""Optuna plumbing shared by the tuned stages: storage, resumable studies, trial accounting."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sentiment_pipeline.errors import ConfigError, PipelineError
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.settings import Settings, get_settings

if TYPE_CHECKING:
    import optuna

logger = logging.getLogger(__name__)

STATES = ("complete", "pruned", "failed", "running", "waiting")


def state_name(state: optuna.trial.TrialState) -> str:
    """complete, pruned, failed, running or waiting (the names used in reports and MLflow)."""
    name = state.name.lower()
    return "failed" if name == "fail" else name


def storage_url(paths: ProjectPaths, settings: Settings | None = None) -> tuple[str, bool]:
    """The Optuna storage and whether it is shared with other workers.

    SENTIMENT_PIPELINE_OPTUNA_STORAGE names a shared one; by default a private SQLite file
    in the project folder, outside the DVC outs (which DVC deletes before a rerun).
    """
    settings = settings or get_settings()
    if settings.optuna_storage:
        return settings.optuna_storage, True
    return f"sqlite:///{paths.optuna_db}", False


def redact(url: str) -> str:
    """A storage URL without its password."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def open_storage(url: str) -> optuna.storages.RDBStorage:
    import optuna
    from sqlalchemy.exc import ArgumentError, OperationalError

    try:
        return optuna.storages.RDBStorage(url)
    except (ImportError, ArgumentError) as exc:
        raise ConfigError(
            f"cannot use the Optuna storage {redact(url)!r} ({exc}); set "
            "SENTIMENT_PIPELINE_OPTUNA_STORAGE to an RDB URL such as sqlite:///optuna.db or "
            "postgresql://user:password@host/db (with its driver installed), or unset it"
        ) from None
    except OperationalError as exc:
        raise PipelineError(
            f"cannot open the Optuna storage {redact(url)!r}: {exc.orig}; check that the "
            "database is reachable and writable"
        ) from None


def fail_stale_trials(study: optuna.Study, storage: optuna.storages.BaseStorage) -> int:
    """Mark trials a killed run left RUNNING as FAIL; return how many.

    Only for a private storage: on a shared one those trials may belong to live workers.
    """
    from optuna.trial import TrialState

    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    study_id = storage.get_study_id_from_name(study.study_name)
    for trial in stale:
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
    if stale:
        logger.warning(
            "study %s: marked %d trial(s) left running by an interrupted run as failed",
            study.study_name, len(stale),
        )
    return len(stale)


def open_study(
    name: str,
    url: str,
    *,
    shared: bool,
    pruner: optuna.pruners.BasePruner,
    seed: int,
    n_startup_trials: int = 10,
) -> optuna.Study:
    """Create or resume a maximising study; a rerun continues where the last one stopped."""
    import optuna

    storage = open_storage(url)
    study = optuna.create_study(
        study_name=name, storage=storage, direction="maximize", pruner=pruner, load_if_exists=True
    )
    if shared:
        running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        if running:
            logger.info("study %s: %d trial(s) running elsewhere", name, len(running))
    else:
        fail_stale_trials(study, storage)
    # Reseed by the trials already there, so a resumed study does not replay its first
    # random start-up points.
    study.sampler = optuna.samplers.TPESampler(
        seed=seed + len(study.get_trials(deepcopy=False)), n_startup_trials=n_startup_trials
    )
    return study


def count_states(study: optuna.Study) -> dict[str, int]:
    counts = dict.fromkeys(STATES, 0)
    for trial in study.get_trials(deepcopy=False):
        counts[state_name(trial.state)] += 1
    return counts


def owed_trials(study: optuna.Study, n_trials: int) -> int:
    """Trials still owed: complete and pruned ones count as done, failed ones do not."""
    counts = count_states(study)
    return max(0, n_trials - counts["complete"] - counts["pruned"])
