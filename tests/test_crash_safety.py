"""kill -9 in the middle of each long stage, then a rerun: nothing half-written, nothing lost.

Each stage runs in its own process, as `dvc repro` runs it (see crash.py), against the
project's SQLite MLflow store and private Optuna storage. After the SIGKILL the final outputs
are exactly what they were before (absent, or the previous complete version); what the kill
interrupted is at most a hidden temporary sibling that nothing reads. The rerun then completes:
a tuned stage's study ends with exactly n_trials finished trials (the killed trial failed, the
owed ones run), and a killed registration leaves one registered version for one champion.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient

from crash import Stage, finished, runs, snapshot, study_names, temporaries, trial_states
from sentiment_pipeline.config.evaluation import EvaluationConfig
from sentiment_pipeline.config.loading import apply_overrides, load_params
from sentiment_pipeline.config.register import RegisterConfig
from sentiment_pipeline.evaluation import model_evaluation
from sentiment_pipeline.evaluation.best_model import BestModel
from sentiment_pipeline.io import atomic_dir, read_json, restore_aside
from sentiment_pipeline.models.artifacts.loader import load_model
from sentiment_pipeline.models.artifacts.manifest import content_hash
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.registry import register_model
from sentiment_pipeline.registry.registration import RegistrationResult
from sentiment_pipeline.tuning import best as bests
from sentiment_pipeline.tuning.results import TuningSummary
from synthetic import LABELS
from tiny_sklearn import save_tiny_model

LIGHTGBM = "sentiment_pipeline.models.train_lightgbm"
DISTILBERT = "sentiment_pipeline.models.train_distilbert"
EVALUATION = "sentiment_pipeline.evaluation.model_evaluation"
REGISTER = "sentiment_pipeline.registry.register_model"
REGISTERED = "sentiment-crash"


def set_params(paths: ProjectPaths, *overrides: str) -> None:
    """Write the overrides into the project's params.yaml, which the stage process reads."""
    params = paths.root / "params.yaml"
    params.write_text(yaml.safe_dump(apply_overrides(load_params(params), overrides)))


def study_trials(paths: ProjectPaths, name: str) -> list[str]:
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{paths.optuna_db}")
    return [t.state.name for t in study.get_trials(deepcopy=False)]


def client(paths: ProjectPaths) -> MlflowClient:
    uri = f"sqlite:///{paths.mlflow_db}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def assert_hidden(*folders) -> None:
    """Whatever a kill left in these folders is a hidden temporary nothing reads as an output."""
    for folder in folders:
        for leftover in temporaries(folder):
            assert leftover.name.startswith("."), leftover


def kill_mid_study(stage: Stage, paths: ProjectPaths, prefix: str, n_trials: int) -> list[str]:
    """Wait until the study has a finished trial and a running one, SIGKILL, return the states
    the storage holds after the kill."""
    stage.wait_for(
        lambda: (s := trial_states(paths.optuna_db, prefix)) and finished(s) >= 1
        and "RUNNING" in s,
        f"a finished and a running {prefix} trial",
        timeout=180,
    )
    stage.kill()
    states = trial_states(paths.optuna_db, prefix)
    assert 1 <= finished(states) < n_trials, f"the kill came too late: {states}"
    return states


def check_tuned_outputs(
    paths: ProjectPaths, model_dir, metrics_path, results_dir, n_trials: int, failed: int
) -> TuningSummary:
    """Complete, loadable outputs, and a study of exactly n_trials finished trials."""
    summary = TuningSummary.model_validate(read_json(metrics_path))
    assert summary.status == "trained" and summary.n_trials == n_trials
    assert summary.trials["complete"] + summary.trials["pruned"] == n_trials
    assert summary.trials["failed"] == failed and summary.trials["running"] == 0
    states = study_trials(paths, summary.study_name)
    assert finished(states) == n_trials and states.count("FAIL") == failed, states
    assert "RUNNING" not in states
    study_json = read_json(results_dir / "study.json")
    assert {k: study_json[k] for k in summary.model_dump()} == summary.model_dump(mode="json")
    model = load_model(model_dir, expected_labels=LABELS, project=paths)
    assert model.manifest.params["trial_number"] == summary.best_trial
    assert model.manifest.params["study_name"] == summary.study_name
    proba = model.predict_proba(["great crew, thanks", "lost my bag again", "the gate"])
    assert proba.shape == (3, len(LABELS)) and abs(proba.sum(axis=1) - 1).max() < 1e-5
    # The best-so-far copy kept outside the DVC outs belongs to the study's best trial.
    best = bests.best_dir(paths, summary.study_name.split("-")[0], summary.study_name)
    assert bests.best_record(best)["number"] == summary.best_trial
    assert client(paths).get_run(summary.mlflow_run_id).info.status == "FINISHED"
    return summary


# --- train_lightgbm ----------------------------------------------------------------------------

LIGHTGBM_PARAMS = (
    "train.lightgbm.n_trials=4",
    # one trial at a time, one thread: the same trials on any machine, and one trial to kill
    "train.lightgbm.parallel_trials=1",
    "train.lightgbm.threads=1",
    "train.lightgbm.pruner=none",
    "train.lightgbm.max_estimators=75",
    "train.lightgbm.early_stopping_rounds=75",
    "train.lightgbm.tfidf.max_features=300",
    "train.lightgbm.tfidf.min_df=1",
    "train.lightgbm.num_leaves=[4,8]",
    "train.lightgbm.min_child_samples=[2,8]",
    "train.lightgbm.learning_rate=[0.01,0.05]",
)


@pytest.mark.slow
def test_train_lightgbm_killed_mid_trial_and_mid_publication_resumes_the_owed_trials(
    processed,
) -> None:
    paths = processed
    set_params(paths, *LIGHTGBM_PARAMS)
    outputs = [paths.lightgbm_model, paths.lightgbm_metrics, paths.lightgbm_results]
    before = snapshot(outputs)

    # 1. Killed in a trial that beat the best so far, in the middle of swapping its model into
    #    the best-so-far folder: between atomic_dir's two renames, the previous best moved
    #    aside and the new one not yet in place (trial 2 of this seeded study).
    stage = Stage(paths.root, LIGHTGBM, pause_at="os:replace", match=r"/best$", after=True)
    stage.wait_paused()
    stage.kill()
    states = trial_states(paths.optuna_db, "lightgbm")
    assert states[-1] == "RUNNING" and 1 <= finished(states) == len(states) - 1 < 4, states
    (name,) = study_names(paths.optuna_db)
    best = bests.best_dir(paths, "lightgbm", name)
    (aside,) = [p for p in temporaries(best.parent) if p.name.startswith(".best.old-")]
    assert not best.exists()
    assert snapshot(outputs) == before  # absent: nothing published
    assert_hidden(paths.lightgbm_model.parent)

    # 2. The rerun fails the killed trial, puts the previous best back, runs the owed trials
    #    and is killed as it starts publishing: the results are written, the model and the
    #    metrics (DVC's last out) are not.
    publishing = Stage(paths.root, LIGHTGBM, pause_at="sentiment_pipeline.tuning.core:copy_dir")
    publishing.wait_paused()
    publishing.kill()
    log = publishing.output()
    assert "marked 1 trial(s) left running by an interrupted run as failed" in log
    assert "put back the best model a killed run had moved aside" in log
    assert not aside.exists()
    assert not paths.lightgbm_model.exists() and not paths.lightgbm_metrics.exists()
    states = trial_states(paths.optuna_db, "lightgbm")
    assert finished(states) == 4 and states.count("FAIL") == 1, states

    # 3. The next rerun owes no trial: it only publishes.
    Stage(paths.root, LIGHTGBM).finish()
    summary = check_tuned_outputs(
        paths, paths.lightgbm_model, paths.lightgbm_metrics, paths.lightgbm_results, 4, failed=1
    )
    assert summary.trials_run_now == 0
    assert_hidden(paths.lightgbm_model.parent, best.parent)


# --- train_distilbert --------------------------------------------------------------------------


@pytest.mark.slow
def test_train_distilbert_killed_mid_trial_resumes_the_owed_trials(
    processed, tiny_transformer
) -> None:
    paths = processed
    set_params(
        paths,
        "train.distilbert.allow_cpu=true",
        f"train.distilbert.model_name_or_path={tiny_transformer}",
        "train.distilbert.n_trials=3",
        "train.distilbert.pruner=none",
        "train.distilbert.max_length=32",
        "train.distilbert.max_train_samples=96",
        "train.distilbert.lr=[1.0e-3, 5.0e-3]",
        "train.distilbert.epochs=[1, 1]",
        "train.distilbert.batch_size=[16]",
    )
    outputs = [paths.distilbert_model, paths.distilbert_metrics, paths.distilbert_results]
    before = snapshot(outputs)

    states = kill_mid_study(Stage(paths.root, DISTILBERT), paths, "distilbert", 3)
    assert snapshot(outputs) == before
    assert_hidden(paths.distilbert_model.parent)

    rerun = Stage(paths.root, DISTILBERT)
    rerun.finish()
    summary = check_tuned_outputs(
        paths, paths.distilbert_model, paths.distilbert_metrics, paths.distilbert_results, 3,
        failed=states.count("RUNNING"),
    )
    assert summary.trials_run_now == 3 - finished(states)
    if stale := states.count("RUNNING"):  # none if the kill fell between two trials
        assert f"marked {stale} trial(s) left running by an interrupted run as failed" in (
            rerun.output()
        )


# --- model_evaluation --------------------------------------------------------------------------


@pytest.mark.slow
def test_model_evaluation_killed_while_writing_its_report_keeps_the_previous_one(
    processed,
) -> None:
    paths = processed
    save_tiny_model(paths.baseline_model, name="baseline")
    save_tiny_model(paths.lightgbm_model, name="lightgbm", C=0.5)
    model_evaluation.run(EvaluationConfig(models=["baseline"], behavioural_tests=False), paths)
    outputs = [paths.evaluation_dir, paths.best_model]
    previous = snapshot(outputs)
    set_params(paths, "evaluation.models=[baseline, lightgbm]")

    # Killed in the middle of writing the report: its MLflow run has started, the per-model
    # metrics are in the temporary folder, the ROC curves are next.
    stage = Stage(paths.root, EVALUATION, pause_at="sentiment_pipeline.evaluation.plots:"
                                                   "save_roc_curves")
    stage.wait_paused()
    assert "RUNNING" in dict(runs(paths.mlflow_db, "sentiment-pipeline/model_evaluation")).values()
    stage.kill()
    assert snapshot(outputs) == previous  # the previous complete report and champion
    (partial,) = temporaries(paths.evaluation_dir.parent)
    assert (partial / "lightgbm_test_metrics.json").is_file()  # what the kill interrupted
    assert not (partial / "roc_curves.png").exists()

    Stage(paths.root, EVALUATION).finish()
    # the rerun closed the run the kill left RUNNING (its process is gone)
    statuses = list(dict(runs(paths.mlflow_db, "sentiment-pipeline/model_evaluation")).values())
    assert "RUNNING" not in statuses and statuses.count("KILLED") == 1, statuses
    best = BestModel.model_validate(read_json(paths.best_model))
    assert best.evaluated == ["baseline", "lightgbm"]
    for name in best.evaluated:
        metrics = read_json(paths.evaluation_dir / f"{name}_test_metrics.json")
        assert metrics["model"] == name and 0 <= metrics["macro_f1"] <= 1
    for file in ("roc_curves.png", "pr_curves.png", "comparison.md", "behavioural.json"):
        assert (paths.evaluation_dir / file).stat().st_size > 0
    assert "| lightgbm |" in (paths.evaluation_dir / "comparison.md").read_text()
    run = client(paths).get_run(best.evaluation_run_id)
    assert run.info.status == "FINISHED" and run.data.tags["champion"] == best.name
    assert_hidden(paths.evaluation_dir.parent, paths.best_model.parent)


# --- register_model ----------------------------------------------------------------------------


def write_champion(paths: ProjectPaths, C: float) -> None:
    """best_model.json naming a tiny baseline; another C is another model content."""
    save_tiny_model(paths.baseline_model, name="baseline", C=C)
    best = BestModel(
        name="baseline", path=paths.baseline_model.relative_to(paths.root).as_posix(),
        kind="sklearn", primary_metric="macro_f1", score=0.9, metrics={"macro_f1": 0.9},
        mlflow_run_id=None, evaluation_run_id=None, evaluated=["baseline"], skipped={},
    )
    paths.best_model.parent.mkdir(parents=True, exist_ok=True)
    paths.best_model.write_text(json.dumps(best.model_dump(mode="json")))


@pytest.mark.slow
def test_register_model_killed_twice_mid_run_leaves_one_version_per_champion(processed) -> None:
    paths = processed
    set_params(paths, f"register.model_name={REGISTERED}", "register.min_score=0.5")
    write_champion(paths, C=10.0)
    first = register_model.run(RegisterConfig(model_name=REGISTERED, min_score=0.5), paths)
    assert first.version == "1"
    previous = snapshot([paths.registration])
    write_champion(paths, C=0.5)  # a new champion
    registry = client(paths)

    def champion() -> str:
        return str(registry.get_model_version_by_alias(REGISTERED, "champion").version)

    def versions() -> list[str]:
        return sorted(str(v.version) for v in registry.search_model_versions(
            f"name = '{REGISTERED}'"))

    # 1. Killed once its MLflow run has started, as the model is about to be logged.
    stage = Stage(paths.root, REGISTER, pause_at="mlflow.pyfunc:log_model")
    stage.wait_paused()
    assert "RUNNING" in dict(runs(paths.mlflow_db, "sentiment-pipeline/register_model")).values()
    stage.kill()
    assert snapshot([paths.registration]) == previous
    assert (versions(), champion()) == (["1"], "1")

    # 2. Killed again with version 2 created (and its content hashes), before the alias moves.
    stage = Stage(paths.root, REGISTER,
                  pause_at="sentiment_pipeline.registry.registration:make_champion")
    stage.wait_paused()
    stage.kill()
    assert snapshot([paths.registration]) == previous
    assert (versions(), champion()) == (["1", "2"], "1")
    killed_run = registry.get_model_version(REGISTERED, "2").run_id

    # 3. The rerun finds the champion registered as version 2 and only moves the aliases.
    rerun = Stage(paths.root, REGISTER)
    rerun.finish()
    result = RegistrationResult.model_validate(read_json(paths.registration))
    assert (result.version, result.previous_version, result.already_registered) == (
        "2", "1", True
    )
    assert result.content_hash == content_hash(paths.baseline_model)
    assert result.run_id == killed_run
    assert (versions(), champion()) == (["1", "2"], "2")
    assert str(registry.get_model_version_by_alias(REGISTERED, "previous").version) == "1"
    assert registry.get_model_version(REGISTERED, "2").tags["content_hash"] == (
        result.content_hash
    )
    assert "already holds this champion" in rerun.output()
    assert_hidden(paths.root, paths.registration.parent)


# --- the swap a kill can interrupt -------------------------------------------------------------


def test_a_folder_left_aside_by_a_killed_swap_is_put_back_only_when_its_process_is_gone(
    tmp_path,
) -> None:
    target = tmp_path / "best"
    with atomic_dir(target) as tmp:
        (tmp / "model.txt").write_text("v1")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # what a process killed between atomic_dir's two renames leaves: target moved aside
    os.replace(target, tmp_path / f".best.old-{dead}")
    (tmp_path / ".best.abc123.tmp").mkdir()  # and the new folder it had not moved in

    assert restore_aside(target)
    assert (target / "model.txt").read_text() == "v1"
    assert not restore_aside(target)  # nothing to do: the folder is there

    os.replace(target, tmp_path / f".best.old-{os.getpid()}")  # a live process is mid-swap
    assert not restore_aside(target) and not target.exists()
