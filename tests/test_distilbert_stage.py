"""train_distilbert end to end on the CPU with a tiny model: study, MLflow, pruning, resume."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import optuna
import pandas as pd
import pytest

pytest.importorskip("transformers")

import torch  # noqa: E402

from sentiment_pipeline import tracking  # noqa: E402
from sentiment_pipeline.models import train_distilbert as dt  # noqa: E402
from sentiment_pipeline.models.artifacts.loader import load_model  # noqa: E402
from sentiment_pipeline.models.artifacts.placeholder import save_placeholder  # noqa: E402
from sentiment_pipeline.models.distilbert import trainer as tr  # noqa: E402
from sentiment_pipeline.models.distilbert import tuned  # noqa: E402
from sentiment_pipeline.models.distilbert.params import DistilBERTTrialParams  # noqa: E402
from sentiment_pipeline.tuning import best as bests  # noqa: E402
from sentiment_pipeline.tuning import storage  # noqa: E402
from synthetic import LABELS  # noqa: E402

pytestmark = pytest.mark.slow


def _config(manager, paths, model, *extra: str):
    overrides = [
        "train.distilbert.allow_cpu=true",
        f"train.distilbert.model_name_or_path={model}",
        "train.distilbert.n_trials=3",
        "train.distilbert.max_length=32",
        "train.distilbert.max_train_samples=96",
        "train.distilbert.lr=[1.0e-3, 5.0e-3]",
        "train.distilbert.epochs=[1, 1]",
        "train.distilbert.batch_size=[16]",
        *extra,
    ]
    return manager(paths, *overrides).config.train.distilbert


def _runs(paths, study: str) -> tuple[list, list]:
    """(parent runs, trial runs) of the stage's experiment for one study."""
    tracking.configure(paths)
    runs = mlflow.search_runs(
        experiment_names=[tracking.experiment_name(dt.STAGE.name)], output_format="list"
    )
    runs = [r for r in runs if r.data.tags.get("optuna_study") == study]
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = sorted(
        (r for r in runs if "mlflow.parentRunId" in r.data.tags),
        key=lambda r: int(r.data.tags["optuna_trial"]),
    )
    return parents, children


def _study(paths, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=storage.storage_url(paths)[0])


def _fail_on_call(monkeypatch, call: int, error: BaseException) -> None:
    real, calls = tr.run_trial, []

    def run_trial(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(tr, "run_trial", run_trial)


class PruneTrial(optuna.pruners.BasePruner):
    """Prunes exactly one trial, at its first report."""

    def __init__(self, number: int) -> None:
        self.number = number

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return trial.number == self.number


def test_three_trials_on_the_cpu_keep_the_best_model_and_track_everything(
    processed, manager, tiny_transformer
) -> None:
    config = _config(
        manager, processed, tiny_transformer,
        "train.distilbert.epochs=[1, 2]", "train.distilbert.batch_size=[8, 16]",
        "train.distilbert.pruner=none",
    )
    result = dt.run(config, processed)

    assert result.status == "trained" and result.trials["complete"] == 3
    assert result.details["device"] == "cpu" and result.details["precision"] == "fp32"
    metrics = json.loads(processed.distilbert_metrics.read_text())
    assert metrics == result.model_dump(mode="json")
    assert set(metrics) == set(json.loads(processed.lightgbm_metrics.read_text())
                               if processed.lightgbm_metrics.exists() else metrics)
    assert metrics["best_val_macro_f1"] == pytest.approx(result.best_val_macro_f1)
    assert set(metrics["best_params"]) == set(DistilBERTTrialParams.model_fields)
    assert metrics["mlflow_run_id"] == result.mlflow_run_id and metrics["train_samples_per_second"]

    model = load_model(processed.distilbert_model)
    manifest = model.manifest
    assert (manifest.kind, manifest.labels) == ("transformers", LABELS)
    assert manifest.params["max_length"] == 32
    assert manifest.params["trial_number"] == result.best_trial
    assert manifest.metrics["val_macro_f1"] == pytest.approx(result.best_val_macro_f1)
    proba = model.predict_proba(["great flight thanks", "awful rude crew", "the gate"])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)

    trials = pd.read_csv(processed.distilbert_results / "trials.csv")
    assert trials["number"].tolist() == [0, 1, 2]
    assert set(trials["state"]) == {"complete"}
    assert {"value", "duration_s", "params_learning_rate", "params_per_device_train_batch_size",
            "optimizer_steps", "train_samples_per_second", "mlflow_run_id"} <= set(trials.columns)
    study_json = json.loads((processed.distilbert_results / "study.json").read_text())
    assert study_json["best_trial"] == result.best_trial and study_json["trials"]["complete"] == 3
    assert study_json["study_name"] == result.study_name
    assert study_json["details"]["device"] == "cpu"
    for plot in ("optimization_history.png", "param_importances.png"):
        assert (processed.distilbert_results / plot).stat().st_size > 1000

    parents, children = _runs(processed, result.study_name)
    assert [p.info.run_id for p in parents] == [result.mlflow_run_id]
    parent = parents[0]
    assert parent.data.metrics["best_val_macro_f1"] == pytest.approx(result.best_val_macro_f1)
    assert parent.data.metrics["best_trial"] == result.best_trial
    assert float(parent.data.params["best.learning_rate"]) == pytest.approx(
        result.best_params["learning_rate"]
    )
    assert len(children) == 3
    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.data.tags["state"] == "complete"
        assert set(DistilBERTTrialParams.model_fields) <= set(child.data.params)
        assert {"val_loss", "val_macro_f1", "train_samples_per_second", "duration_s"} <= set(
            child.data.metrics
        )
    best_child = children[result.best_trial]
    assert manifest.mlflow_run_id == best_child.info.run_id  # the run that trained it
    history = mlflow.MlflowClient().get_metric_history(best_child.info.run_id, "val_macro_f1")
    # 2 evaluations per epoch by default
    reports = result.best_params["num_train_epochs"] * config.evals_per_epoch
    assert [m.step for m in history] == list(range(1, reports + 1))

    # The evaluation stage evaluates it beside a skipped baseline.
    from sentiment_pipeline.evaluation import model_evaluation

    save_placeholder(processed.baseline_model, "baseline", LABELS, "disabled")
    evaluation = manager(
        processed, "evaluation.models=[baseline, distilbert]", "evaluation.behavioural_tests=false"
    ).config.evaluation
    best = model_evaluation.run(evaluation, processed)
    assert best.name == "distilbert" and best.kind == "transformers"
    assert best.skipped == {"baseline": "disabled"} and best.evaluated == ["distilbert"]


def test_a_failed_trial_is_failed_a_pruned_trial_is_pruned_and_the_study_goes_on(
    processed, manager, tiny_transformer, monkeypatch
) -> None:
    monkeypatch.setattr(tuned, "make_pruner", lambda kind, schedule, floor: PruneTrial(2))
    _fail_on_call(monkeypatch, 2, torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)"))
    config = _config(manager, processed, tiny_transformer, "train.distilbert.max_length=128")
    result = dt.run(config, processed)
    # The tiny model has 64 positions: longer texts are truncated there.
    assert load_model(processed.distilbert_model).manifest.params["max_length"] == 64

    states = {t.number: t.state.name for t in _study(processed, result.study_name).trials}
    assert states == {0: "COMPLETE", 1: "FAIL", 2: "PRUNED", 3: "COMPLETE"}
    assert result.trials == {"complete": 2, "pruned": 1, "failed": 1, "running": 0, "waiting": 0}
    _, children = _runs(processed, result.study_name)
    assert [c.data.tags["state"] for c in children] == ["complete", "failed", "pruned", "complete"]
    assert [c.info.status for c in children] == ["FINISHED", "FAILED", "FINISHED", "FINISHED"]
    assert "val_macro_f1" in children[2].data.metrics  # it reported before being stopped
    trials = pd.read_csv(processed.distilbert_results / "trials.csv")
    assert trials["state"].tolist() == ["complete", "failed", "pruned", "complete"]


def test_pruners_count_in_evaluations_and_budget_for_the_longest_trial() -> None:
    from sentiment_pipeline.config.distilbert import DistilBERTConfig

    schedule = tuned.pruning_schedule(DistilBERTConfig(epochs=(1, 4), evals_per_epoch=3))
    # hyperband's budget: the reports of a 4-epoch trial ("auto" would take those of the
    # first finished trial); the chance floor waits one epoch, the median rule does not wait.
    assert (schedule.min_resource, schedule.max_resource) == (1, 12)
    assert (schedule.floor_warmup_steps, schedule.median_warmup_steps) == (3, 0)


def test_an_interrupted_study_resumes_with_the_trials_still_owed(
    processed, manager, tiny_transformer, monkeypatch
) -> None:
    config = _config(manager, processed, tiny_transformer)
    with monkeypatch.context() as patch:
        _fail_on_call(patch, 2, KeyboardInterrupt())
        with pytest.raises(KeyboardInterrupt):
            dt.run(config, processed)
    name = next(p.name for p in (processed.root / ".optuna" / "distilbert").iterdir())
    study = _study(processed, name)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "FAIL"]
    assert (bests.best_dir(processed, "distilbert", name) / "model" / "model.safetensors").is_file()
    study.ask()  # a trial left RUNNING, as by a killed process

    result = dt.run(config, processed)
    assert result.study_name == name
    assert result.trials["complete"] + result.trials["pruned"] == 3
    assert result.trials["failed"] == 2 and result.trials["running"] == 0
    assert load_model(processed.distilbert_model).manifest.params["trial_number"] == (
        result.best_trial
    )
    parents, _ = _runs(processed, name)
    assert len(parents) == 2

    # DVC deletes the outs before a rerun: nothing is owed, the best model comes back.
    for path in (processed.distilbert_model, processed.distilbert_results):
        import shutil

        shutil.rmtree(path)
    again = dt.run(config, processed)
    assert again.best_trial == result.best_trial and again.trials == result.trials
    assert load_model(processed.distilbert_model).manifest.kind == "transformers"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_auto_device_trains_on_cuda_in_mixed_precision(processed, manager, tiny_transformer):
    config = _config(
        manager, processed, tiny_transformer,
        "train.distilbert.allow_cpu=false", "train.distilbert.n_trials=1",
    )
    result = dt.run(config, processed)
    expected = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    assert (result.status, result.details["device"], result.details["precision"]) == (
        "trained", "cuda", expected
    )
    model = load_model(processed.distilbert_model)
    assert model.device.type == "cuda"
    np.testing.assert_allclose(model.predict_proba(["great", "awful"]).sum(axis=1), 1.0)
