"""train_lightgbm stage: TF-IDF + LightGBM tuned by a resumable Optuna study."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import optuna
import pandas as pd
from optuna.trial import TrialState
from pydantic import BaseModel, ConfigDict
from scipy import sparse
from sklearn.pipeline import Pipeline

from sentiment_pipeline import stages, tracking, tuning
from sentiment_pipeline.config.entities import LightGBMConfig
from sentiment_pipeline.errors import PipelineError
from sentiment_pipeline.io import write_json
from sentiment_pipeline.models.artifacts import ModelManifest, save_sklearn
from sentiment_pipeline.models.text_features import (
    MLFLOW_MODEL_NAME,
    load_labels,
    load_split,
    log_sklearn_model,
    make_tfidf,
    plain_vocabulary,
    scores,
)
from sentiment_pipeline.paths import ProjectPaths

logger = logging.getLogger(__name__)

STAGE = "train_lightgbm"
MODEL_NAME = "lightgbm"
# One OpenMP thread per fit: on 2 shared cores, 2 threads made a 10k-tweet fit 10-25x slower
# (33 s instead of 2-3 s, threads spin-waiting for a busy core). Scale out with more Optuna
# workers on a shared storage instead.
N_JOBS = 1
REPORT_EVERY = 25  # boosting rounds between pruning checks
# Config keys that change how long the study runs, not what it searches.
_BUDGET_KEYS = {"n_trials", "timeout"}


class LightGBMResult(BaseModel):
    """What train_lightgbm reports; also written as lightgbm_metrics.json."""

    model_config = ConfigDict(frozen=True)

    study_name: str
    storage: str
    best_trial_number: int
    best_params: dict[str, Any]
    best_val_macro_f1: float
    best_iteration: int
    val_macro_f1: float
    val_accuracy: float
    val_f1_per_class: dict[str, float]
    n_trials_by_state: dict[str, int]
    trials_run_now: int
    train_rows: int
    val_rows: int
    mlflow_run_id: str
    model_uri: str
    run_model_uri: str


@dataclass(frozen=True)
class Features:
    """The TF-IDF matrices of one study (the vectorizer is fitted once, on train)."""

    vectorizer: Any
    x_train: sparse.csr_matrix
    y_train: np.ndarray
    x_val: sparse.csr_matrix
    y_val: np.ndarray
    labels: list[str]


@dataclass(frozen=True)
class TrialFit:
    val_macro_f1: float
    val_accuracy: float
    best_iteration: int


def prepare_features(
    config: LightGBMConfig, train: pd.DataFrame, val: pd.DataFrame, labels: list[str]
) -> Features:
    vectorizer = make_tfidf(config.tfidf)
    x_train = vectorizer.fit_transform(train["text"])
    plain_vocabulary(vectorizer)
    return Features(
        vectorizer=vectorizer,
        x_train=x_train,
        y_train=train["label"].to_numpy(),
        x_val=vectorizer.transform(val["text"]),
        y_val=val["label"].to_numpy(),
        labels=labels,
    )


def search_space(trial: optuna.Trial, config: LightGBMConfig) -> dict[str, Any]:
    """The hyper-parameters one trial tries, within the bounds of the config."""
    return {
        "learning_rate": trial.suggest_float("learning_rate", *config.learning_rate, log=True),
        "num_leaves": trial.suggest_int("num_leaves", *config.num_leaves),
        "min_child_samples": trial.suggest_int("min_child_samples", *config.min_child_samples),
        "colsample_bytree": trial.suggest_float("colsample_bytree", *config.colsample_bytree),
        "reg_lambda": trial.suggest_float("reg_lambda", *config.reg_lambda, log=True),
    }


def make_classifier(
    params: Mapping[str, Any], config: LightGBMConfig, n_estimators: int
) -> lgb.LGBMClassifier:
    return lgb.LGBMClassifier(
        n_estimators=n_estimators,
        class_weight="balanced" if config.imbalance == "class_weight" else None,
        random_state=config.seed,
        n_jobs=N_JOBS,
        verbose=-1,
        **params,
    )


def _predict_ids(raw: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Class ids from a Booster's probabilities (one column for a binary task)."""
    if raw.ndim == 1:
        return classes[(raw > 0.5).astype(int)]
    return classes[np.argmax(raw, axis=1)]


class PruningCallback:
    """A LightGBM callback: every `every` rounds, report val macro-F1 and prune if told to."""

    def __init__(
        self, trial: Any, features: Features, classes: np.ndarray, every: int | None = None
    ) -> None:
        self.trial = trial
        self.features = features
        self.classes = classes
        self.every = every or REPORT_EVERY

    def __call__(self, env: lgb.callback.CallbackEnv) -> None:
        step = env.iteration + 1
        if step % self.every:
            return
        raw = env.model.predict(self.features.x_val, num_iteration=step)
        predicted = _predict_ids(raw, self.classes)
        value = scores(self.features.y_val, predicted, self.features.labels)["macro_f1"]
        self.trial.report(value, step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"val macro-F1 {value:.4f} at round {step}")


def fit_trial(
    params: Mapping[str, Any], config: LightGBMConfig, features: Features, trial: Any
) -> TrialFit:
    """Fit one trial with early stopping on the validation set and pruning checks."""
    model = make_classifier(params, config, config.max_estimators)
    model.fit(
        features.x_train,
        features.y_train,
        eval_X=features.x_val,
        eval_y=features.y_val,
        callbacks=[
            lgb.early_stopping(config.early_stopping_rounds, verbose=False),
            PruningCallback(trial, features, np.unique(features.y_train)),
        ],
    )
    best_iteration = int(model.best_iteration_ or config.max_estimators)
    val = scores(features.y_val, model.predict(features.x_val), features.labels)
    return TrialFit(val["macro_f1"], val["accuracy"], best_iteration)


def refit(
    params: Mapping[str, Any], config: LightGBMConfig, features: Features, n_estimators: int
) -> Pipeline:
    """The best params on train, in the serving shape: the study's TF-IDF + LightGBM."""
    model = make_classifier(params, config, n_estimators)
    model.fit(features.x_train, features.y_train)
    return Pipeline([("tfidf", features.vectorizer), ("clf", model)])


def frame_fingerprint(frame: pd.DataFrame) -> str:
    hashes = pd.util.hash_pandas_object(frame[["text", "label"]], index=False)
    return hashlib.sha256(hashes.to_numpy().tobytes()).hexdigest()


def study_name(config: LightGBMConfig, data_fingerprint: str) -> str:
    """Same search space, features, seed and data -> same study, so a rerun resumes it."""
    payload = {
        "config": config.model_dump(mode="json", exclude=_BUDGET_KEYS),
        "data": data_fingerprint,
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
    return f"lightgbm-{digest}"


def make_pruner(config: LightGBMConfig) -> optuna.pruners.BasePruner:
    if config.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2 * REPORT_EVERY)
    if config.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=REPORT_EVERY, max_resource=max(config.max_estimators, REPORT_EVERY)
        )
    return optuna.pruners.NopPruner()


def _log_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    value = f"{trial.value:.4f}" if trial.value is not None else "-"
    seconds = trial.duration.total_seconds() if trial.duration else float("nan")
    logger.info(
        "trial %d %s: val macro-F1 %s, best iteration %s, %.1f s",
        trial.number,
        trial.state.name.lower(),
        value,
        trial.user_attrs.get("best_iteration", "-"),
        seconds,
    )


def run(config: LightGBMConfig, paths: ProjectPaths) -> LightGBMResult:
    import mlflow

    labels = load_labels(paths)
    train_frame = load_split(paths, "train", len(labels))
    val_frame = load_split(paths, "val", len(labels))
    features = prepare_features(config, train_frame, val_frame, labels)

    fingerprint = hashlib.sha256(
        "".join(frame_fingerprint(f) for f in (train_frame, val_frame)).encode()
        + json.dumps(labels).encode()
    ).hexdigest()
    name = study_name(config, fingerprint)
    storage, shared = tuning.storage_url(paths)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = tuning.open_study(
        name, storage, shared=shared, pruner=make_pruner(config), seed=config.seed
    )
    n_owed = tuning.owed_trials(study, config.n_trials)
    logger.info(
        "study %s (%s): %d trial(s) owed of %d",
        name, tuning.redact(storage), n_owed, config.n_trials,
    )

    def objective(trial: optuna.Trial) -> float:
        params = search_space(trial, config)
        with tracking.child_run(
            f"trial-{trial.number}", params=params, tags={"optuna_trial": str(trial.number)}
        ) as child:
            trial.set_user_attr("mlflow_run_id", child.info.run_id)
            start = time.perf_counter()

            def record(state: str) -> None:
                mlflow.set_tag("state", state)
                tracking.log_metrics({"duration_s": time.perf_counter() - start})

            try:
                fit = fit_trial(params, config, features, trial)
            except optuna.TrialPruned:
                record("pruned")
                # A pruned trial ended as planned: FINISHED, not the FAILED an exception implies.
                mlflow.end_run()
                raise
            except BaseException:
                record("failed")
                raise
            record("complete")
            trial.set_user_attr("best_iteration", fit.best_iteration)
            trial.set_user_attr("val_accuracy", fit.val_accuracy)
            tracking.log_metrics(
                {
                    "val_macro_f1": fit.val_macro_f1,
                    "val_accuracy": fit.val_accuracy,
                    "best_iteration": fit.best_iteration,
                }
            )
        return fit.val_macro_f1

    with tracking.stage_run(STAGE, config, paths) as active:
        run_id = active.info.run_id
        mlflow.set_tags({"optuna_study": name, "optuna_storage": tuning.redact(storage)})
        before = len(study.get_trials(deepcopy=False))
        if n_owed:
            study.optimize(
                objective,
                n_trials=n_owed,
                timeout=config.timeout,
                catch=(Exception,),
                callbacks=[
                    _log_trial,
                    optuna.study.MaxTrialsCallback(
                        config.n_trials, states=(TrialState.COMPLETE, TrialState.PRUNED)
                    ),
                ],
            )
        counts = tuning.count_states(study)
        if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            raise PipelineError(
                f"study {name} in {tuning.redact(storage)} has no completed trial ({counts}); "
                "see the failed trials' warnings above, fix the cause and rerun"
            )
        best = study.best_trial
        best_iteration = int(best.user_attrs.get("best_iteration", config.max_estimators))
        pipeline = refit(best.params, config, features, best_iteration)
        val = scores(val_frame["label"], pipeline.predict(val_frame["text"]), labels)
        logger.info(
            "best trial %d: val macro-F1 %.4f; refit (%d rounds): macro-F1 %.4f, accuracy %.4f",
            best.number,
            best.value,
            best_iteration,
            val["macro_f1"],
            val["accuracy"],
        )
        mlflow.log_params({f"best.{k}": v for k, v in best.params.items()})
        tracking.log_metrics(
            {
                "best_val_macro_f1": best.value,
                "best_trial_number": best.number,
                "best_iteration": best_iteration,
                "val_macro_f1": val["macro_f1"],
                "val_accuracy": val["accuracy"],
                "val_f1": val["f1_per_class"],
                "n_trials": counts,
            }
        )
        model_uri = log_sklearn_model(pipeline, train_frame["text"].head(5))
        result = LightGBMResult(
            study_name=name,
            storage=tuning.redact(storage),
            best_trial_number=best.number,
            best_params=best.params,
            best_val_macro_f1=float(best.value),
            best_iteration=best_iteration,
            val_macro_f1=val["macro_f1"],
            val_accuracy=val["accuracy"],
            val_f1_per_class=val["f1_per_class"],
            n_trials_by_state=counts,
            trials_run_now=len(study.get_trials(deepcopy=False)) - before,
            train_rows=len(train_frame),
            val_rows=len(val_frame),
            mlflow_run_id=run_id,
            model_uri=model_uri,
            run_model_uri=f"runs:/{run_id}/{MLFLOW_MODEL_NAME}",
        )
        manifest = ModelManifest(
            name=MODEL_NAME,
            kind="sklearn",
            labels=labels,
            metrics={"val_macro_f1": val["macro_f1"], "val_accuracy": val["accuracy"]},
            params={
                **best.params,
                "n_estimators": best_iteration,
                "tfidf": config.tfidf.model_dump(mode="json"),
                "study_name": name,
            },
            mlflow_run_id=run_id,
        )
        save_sklearn(paths.lightgbm_model, pipeline, manifest)
        write_json(paths.lightgbm_metrics, result.model_dump(mode="json"))
    return result


def main() -> None:
    stages.main(STAGE)


if __name__ == "__main__":
    main()
