"""Several `tune` worker processes on one study: PostgreSQL (and shared SQLite), a real MLflow
server, exactly n_trials, no repeated parameters, a killed worker's trial retried, and the best
model fetched from MLflow by a project folder that never trained it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path

import mlflow
import optuna
import pytest

from mlflow_server import free_port, mlflow_server
from pg_server import PostgresServer, postgres  # noqa: F401 - the session fixture
from sentiment_pipeline import tracking
from sentiment_pipeline.errors import PipelineError
from sentiment_pipeline.io import read_json
from sentiment_pipeline.models.artifacts.manifest import content_hash
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.tuning import best as bests
from sentiment_pipeline.tuning import storage as storages
from sentiment_pipeline.tuning import study as studies
from sentiment_pipeline.tuning import workers
from synthetic import LABELS, make_processed_splits

REPO_ROOT = Path(__file__).resolve().parents[1]
STAGE = "train_lightgbm"
# A fraction of a second per trial on 144 training rows.
TINY = (
    "train.lightgbm.threads=1",
    "train.lightgbm.parallel_trials=1",
    "train.lightgbm.max_estimators=30",
    "train.lightgbm.early_stopping_rounds=10",
    "train.lightgbm.tfidf.max_features=300",
    "train.lightgbm.num_leaves=[4,8]",
    "train.lightgbm.min_child_samples=[2,8]",
    "train.lightgbm.learning_rate=[0.1,0.3]",
)
# A worker whose first trial hangs (touching $TRIAL_STARTED first): the one a test kills.
HANGING_WORKER = """
import os, sys, time
from sentiment_pipeline.models import train_lightgbm
def hang(params, reporter, **kwargs):
    open(os.environ["TRIAL_STARTED"], "w").close()
    time.sleep(600)
train_lightgbm.fit_one = hang
from sentiment_pipeline.cli import app
app(sys.argv[1:], prog_name="sentiment-pipeline")
"""
WORKER_TIMEOUT_S = 240


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One MLflow server the workers share, as workers on several machines would."""
    with mlflow_server(tmp_path_factory.mktemp("mlflow-server")) as url:
        yield url


def make_project(root: Path) -> Path:
    """A project folder with params.yaml and the processed splits (a 'machine')."""
    processed = root / "data" / "processed"
    processed.mkdir(parents=True)
    shutil.copy(REPO_ROOT / "params.yaml", root / "params.yaml")
    for name, frame in make_processed_splits().items():
        frame.to_parquet(processed / f"{name}.parquet", index=False)
    (processed / "labels.json").write_text(json.dumps(LABELS))
    return root


def worker_command(storage: str, n_trials: int, code: str | None = None) -> list[str]:
    prefix = [sys.executable, "-c", code] if code else [
        sys.executable, "-c", "from sentiment_pipeline.cli import app; app()"
    ]
    overrides = [arg for key in (*TINY, f"train.lightgbm.n_trials={n_trials}")
                 for arg in ("--set", key)]
    return [*prefix, "tune", "lightgbm", "--storage", storage, *overrides]


def start_workers(
    projects: Sequence[Path], storage: str, n_trials: int, mlflow_uri: str,
    env: dict[str, str] | None = None, code: str | None = None,
) -> list[subprocess.Popen]:
    """Start one worker per project folder, all at once."""
    environment = {
        **os.environ, "MLFLOW_TRACKING_URI": mlflow_uri, **(env or {}),
    }
    environment.pop("SENTIMENT_PIPELINE_OPTUNA_STORAGE", None)
    return [
        subprocess.Popen(
            worker_command(storage, n_trials, code), cwd=project, env=environment,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for project in projects
    ]


def finish(processes: Sequence[subprocess.Popen]) -> list[str]:
    """Wait for every worker; each must succeed. Their outputs."""
    outputs = []
    for process in processes:
        out, _ = process.communicate(timeout=WORKER_TIMEOUT_S)
        assert process.returncode == 0, out[-4000:]
        assert "Traceback" not in out and "IntegrityError" not in out, out[-4000:]
        outputs.append(out)
    return outputs


def load_study(storage: str) -> optuna.Study:
    (name,) = optuna.get_all_study_names(storage)
    return optuna.load_study(study_name=name, storage=storage)


def finished(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(states=studies.FINISHED)


def param_sets(trials: Sequence[optuna.trial.FrozenTrial]) -> list[tuple]:
    return [tuple(sorted(t.params.items())) for t in trials]


def study_runs(mlflow_uri: str, study_name: str) -> list[mlflow.entities.Run]:
    mlflow.set_tracking_uri(mlflow_uri)
    return mlflow.search_runs(
        experiment_names=[tracking.experiment_name(STAGE)], output_format="list",
        filter_string=f"tags.optuna_study = '{study_name}'",
    )


def assert_exact_and_distinct(
    study: optuna.Study, n_trials: int, n_workers: int, every_worker: bool = False
) -> None:
    done = finished(study)
    assert len(done) == n_trials, [(t.number, t.state.name) for t in study.trials]
    assert len(set(param_sets(done))) == n_trials, "two trials tried the same parameters"
    assert not study.get_trials(states=(optuna.trial.TrialState.RUNNING,
                                        optuna.trial.TrialState.WAITING))
    ran = {t.user_attrs["worker"] for t in done}
    assert len(ran) == n_workers if every_worker else 1 <= len(ran) <= n_workers, ran


def assert_runs_per_worker(mlflow_uri: str, study: optuna.Study) -> None:
    """Each worker's trials are child runs of its own parent run, tagged with study and worker."""
    runs = study_runs(mlflow_uri, study.study_name)
    parents = {r.info.run_id: r for r in runs if "mlflow.parentRunId" not in r.data.tags}
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    by_worker = {r.data.tags["optuna_worker"]: r.info.run_id for r in parents.values()}
    assert len(by_worker) == len(parents)  # one parent run per worker
    for trial in study.trials:
        (child,) = [c for c in children if c.info.run_id == trial.user_attrs["mlflow_run_id"]]
        worker = trial.user_attrs["worker"]
        assert child.data.tags["optuna_worker"] == worker
        assert child.data.tags["mlflow.parentRunId"] == by_worker[worker]


@pytest.mark.slow
def test_two_workers_on_new_postgresql_database_share_the_study_exactly(
    postgres: PostgresServer, tracking_server: str, tmp_path: Path  # noqa: F811
) -> None:
    storage = postgres.url(postgres.create_database())
    machines = [make_project(tmp_path / f"machine-{i}") for i in range(2)]

    # Started together on a database without Optuna's tables: creation is race-free.
    outputs = finish(start_workers(machines, storage, 6, tracking_server))

    study = load_study(storage)
    assert_exact_and_distinct(study, 6, 2, every_worker=True)
    assert_runs_per_worker(tracking_server, study)
    # Both machines publish the study's best model, whichever trained it, byte for byte.
    best = study.best_trial
    models = [ProjectPaths.at(m).lightgbm_model for m in machines]
    assert {content_hash(m) for m in models} == {best.user_attrs[bests.HASH_ATTR]}
    assert [read_json(m / "model.json")["params"]["trial_number"] for m in models] == [
        best.number, best.number
    ]
    # the machine that did not train it fetched it from the trial's MLflow run
    assert sum("fetched the best model" in out for out in outputs) == 1


@pytest.mark.slow
def test_three_workers_then_a_fresh_folder_fetches_the_best_model_from_mlflow(
    postgres: PostgresServer, tracking_server: str, tmp_path: Path  # noqa: F811
) -> None:
    storage = postgres.url(postgres.create_database())
    shared = make_project(tmp_path / "machine")  # three workers in one project folder

    finish(start_workers([shared] * 3, storage, 7, tracking_server))

    study = load_study(storage)
    assert_exact_and_distinct(study, 7, 3)
    assert_runs_per_worker(tracking_server, study)
    best = study.best_trial
    expected = best.user_attrs[bests.HASH_ATTR]
    run = mlflow.MlflowClient(tracking_server).get_run(best.user_attrs["mlflow_run_id"])
    assert run.data.tags[bests.HASH_ATTR] == expected

    # The DVC stage on another machine: no local best folder, nothing owed.
    fresh = make_project(tmp_path / "elsewhere")
    (out,) = finish(start_workers([fresh], storage, 7, tracking_server))
    assert "fetched the best model" in out and "0 of 7 trials owed" in out
    assert len(load_study(storage).trials) == len(study.trials)  # no trial was run
    model = ProjectPaths.at(fresh).lightgbm_model
    assert content_hash(model) == expected
    kept = read_json(
        next((fresh / ".optuna" / "lightgbm").glob("*/best")) / bests.BEST_RECORD
    )
    assert kept["number"] == best.number and kept["from_mlflow_run"] == run.info.run_id


@pytest.mark.slow
def test_a_killed_workers_trial_is_retried_by_another(
    postgres: PostgresServer, tracking_server: str, tmp_path: Path  # noqa: F811
) -> None:
    storage = postgres.url(postgres.create_database())
    beats = {
        "SENTIMENT_PIPELINE_OPTUNA_HEARTBEAT_INTERVAL": "1",
        "SENTIMENT_PIPELINE_OPTUNA_GRACE_PERIOD": "3",
    }
    started = tmp_path / "trial-started"
    victim_folder = make_project(tmp_path / "victim")
    (victim,) = start_workers(
        [victim_folder], storage, 3, tracking_server, {**beats, "TRIAL_STARTED": str(started)},
        code=HANGING_WORKER,
    )
    deadline = time.monotonic() + WORKER_TIMEOUT_S
    while not started.exists():
        assert victim.poll() is None, victim.communicate()[0][-4000:]
        assert time.monotonic() < deadline
        time.sleep(0.2)
    victim.send_signal(signal.SIGKILL)  # mid-trial: no chance to tell the study
    victim.communicate()
    (dead,) = load_study(storage).get_trials(states=(optuna.trial.TrialState.RUNNING,))

    finish(start_workers([make_project(tmp_path / "survivor")], storage, 3,
                                  tracking_server, beats))

    study = load_study(storage)
    assert_exact_and_distinct(study, 3, 1)
    (failed,) = study.get_trials(states=(optuna.trial.TrialState.FAIL,))
    assert failed.number == dead.number
    (retry,) = [t for t in study.trials if t.system_attrs.get("failed_trial") == dead.number]
    assert retry.state in studies.FINISHED and retry.params == dead.params
    assert retry.user_attrs["worker"] != dead.user_attrs["worker"]


@pytest.mark.slow
def test_sqlite_workers_started_together_then_on_the_existing_study(
    tracking_server: str, tmp_path: Path
) -> None:
    """What was seen: on a new SQLite storage the second worker died with an IntegrityError
    (alembic_version); on an existing study both workers proposed the same parameters and 13
    trials ran for n_trials=12."""
    folder = make_project(tmp_path / "machine")
    storage = f"sqlite:///{tmp_path / 'x.db'}"

    finish(start_workers([folder, folder], storage, 3, tracking_server))
    first = len(load_study(storage).trials)
    assert_exact_and_distinct(load_study(storage), 3, 2)

    finish(start_workers([folder, folder], storage, 8, tracking_server))
    study = load_study(storage)
    assert_exact_and_distinct(study, 8, 4)  # two workers, then two more
    new = [t for t in finished(study) if t.number >= first]
    assert len({t.user_attrs["worker"] for t in new}) == 2, "one worker ran every trial"


def test_worker_seeds_differ_by_worker_and_private_seeds_stay_the_configured_one() -> None:
    assert studies.sampler_seed(42, False, "host-1") == 42
    assert studies.sampler_seed(42, True, "host-1") == workers.worker_seed(42, "host-1")
    assert workers.worker_seed(42, "host-1") != workers.worker_seed(42, "host-2")
    assert workers.worker_seed(42, "host-1") != workers.worker_seed(43, "host-1")
    assert workers.worker_seed(42, "host-1") == workers.worker_seed(42, "host-1")


def age_heartbeat(storage: optuna.storages.RDBStorage, trial_id: int, seconds: float) -> None:
    """Move a running trial's last heartbeat `seconds` into the past, as if its worker had been
    silent that long (Optuna compares it with the database's clock)."""
    import sqlalchemy as sa

    beats = sa.Table("trial_heartbeats", sa.MetaData(), autoload_with=storage.engine)
    with storage.engine.begin() as connection:
        last = connection.execute(
            sa.select(beats.c.heartbeat).where(beats.c.trial_id == trial_id)
        ).scalar_one()
        connection.execute(
            sa.update(beats).where(beats.c.trial_id == trial_id)
            .values(heartbeat=last - timedelta(seconds=seconds))
        )


def test_claims_stop_at_n_trials_and_queue_requeued_trials_first(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    grace = 600  # no trial goes stale while the test runs unless its heartbeat is aged
    storage = storages.open_storage(url, storages.Heartbeats(1, grace))
    study = studies.open_study("s", url, shared=True, pruner=optuna.pruners.NopPruner(), seed=1,
                               storage=storage, worker="w")
    first = studies.claim_trial(study, storage, url, 2)
    second = studies.claim_trial(study, storage, url, 2)
    assert first.trial.number == 0 and second.trial.number == 1
    # Both running: nothing to take, but they may die, so wait (heartbeats are on).
    assert studies.claim_trial(study, storage, url, 2) == studies.Claim(wait=True)
    study.tell(first.trial, 0.5)
    age_heartbeat(storage, second.trial_id, grace + 1)  # stale: failed and queued again
    retried = studies.claim_trial(study, storage, url, 2)
    assert retried.trial.number == 2
    assert study.trials[2].system_attrs["failed_trial"] == 1
    study.tell(retried.trial, 0.7)
    assert studies.claim_trial(study, storage, url, 2) == studies.Claim()


def test_journal_storage_url_opens_a_journal_file(tmp_path: Path) -> None:
    storage = storages.open_storage(f"journal://{tmp_path}/study.log")
    assert isinstance(storage, optuna.storages.JournalStorage)
    study = studies.open_study("s", f"journal://{tmp_path}/study.log", shared=True,
                               pruner=optuna.pruners.NopPruner(), seed=1, storage=storage)
    claim = studies.claim_trial(study, storage, f"journal://{tmp_path}/study.log", 1)
    study.tell(claim.trial, 1.0)
    # no heartbeats in a journal: nothing to wait for
    assert studies.claim_trial(study, storage, f"journal://{tmp_path}/study.log", 2).wait \
        is False
    assert (tmp_path / "study.log").is_file()


def test_an_unreachable_postgresql_storage_is_a_clear_error(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://u:secret@127.0.0.1:{free_port()}/optuna"
    started = time.monotonic()
    with pytest.raises(PipelineError, match=r"cannot open the Optuna storage "
                       r"'postgresql\+psycopg://u:\*\*\*@127\.0\.0\.1:\d+/optuna'") as error:
        storages.open_storage(url)
    assert "secret" not in str(error.value)
    assert time.monotonic() - started < 15
