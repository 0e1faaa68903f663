"""train_lightgbm stage: TF-IDF + LightGBM tuned by the tuning core (a resumable Optuna study)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import optuna
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from scipy import sparse
from sklearn.pipeline import Pipeline

from sentiment_pipeline import runner
from sentiment_pipeline.config.lightgbm import LightGBMConfig
from sentiment_pipeline.data.contract import read_labels, read_split
from sentiment_pipeline.machine import usable_cores
from sentiment_pipeline.models.artifacts.manifest import ModelManifest, content_hash
from sentiment_pipeline.models.artifacts.sklearn_model import save_sklearn
from sentiment_pipeline.models.text_features import make_tfidf, plain_vocabulary, scores
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.runner import Stage
from sentiment_pipeline.tuning.core import Outputs, StudySpec, TunedStage, optimize
from sentiment_pipeline.tuning.pruning import PruningSchedule, chance_macro_f1, make_pruner
from sentiment_pipeline.tuning.results import TuningSummary
from sentiment_pipeline.tuning.study import data_fingerprint
from sentiment_pipeline.tuning.trial import TrialReporter, TrialResult

logger = logging.getLogger(__name__)

MODEL_NAME = "lightgbm"
REPORT_EVERY = 25  # boosting rounds between pruning checks
# Config keys that set the budget of a study or how it uses the machine, not what its trials
# measure: left out of its key (so a study resumes on another machine or with other threads).
RUN_ONLY_KEYS = frozenset({"n_trials", "timeout", "threads", "parallel_trials"})
# `auto` on this many usable cores or fewer: one thread, one trial at a time (on 2 shared cores,
# 2 OpenMP threads made a 10k-tweet fit 10-25x slower, threads spin-waiting for a busy core;
# benchmarks/bench_lightgbm_threads.py measures 2 threads and 2 parallel trials there).
SERIAL_CORES = 2
# `auto` above that: trials at once first (independent fits scale better than the threads of one
# fit on sparse TF-IDF, whose boosting rounds take milliseconds), at most MAX_AUTO_TRIALS so the
# sampler still learns from most results, two cores or more each; then threads per trial with
# the cores left, at most MAX_AUTO_THREADS; trials x threads <= cores.
MAX_AUTO_TRIALS = 4
MAX_AUTO_THREADS = 4


@dataclass(frozen=True)
class Parallelism:
    """How a study uses the machine: LightGBM threads per trial, trials at once."""

    threads: int
    trials: int
    cores: int  # usable cores it was chosen for


def auto_parallelism(cores: int) -> tuple[int, int]:
    """(threads per trial, trials at once) for `cores` usable cores (the rule of `auto`)."""
    if cores <= SERIAL_CORES:
        return 1, 1
    trials = max(1, min(MAX_AUTO_TRIALS, cores // 2))
    threads = max(1, min(MAX_AUTO_THREADS, cores // trials))
    return threads, trials


def parallelism(config: LightGBMConfig, cores: int | None = None) -> Parallelism:
    """threads and parallel_trials of the config, `auto` resolved for the machine; a fixed value
    is used as given (the auto one of the other fills the cores it leaves)."""
    cores = usable_cores() if cores is None else cores
    auto_threads, auto_trials = auto_parallelism(cores)
    threads, trials = config.threads, config.parallel_trials
    if threads == "auto" and trials == "auto":
        threads, trials = auto_threads, auto_trials
    elif threads == "auto":
        threads = 1 if cores <= SERIAL_CORES else max(1, min(MAX_AUTO_THREADS, cores // trials))
    elif trials == "auto":
        trials = 1 if cores <= SERIAL_CORES else max(1, min(MAX_AUTO_TRIALS, cores // threads))
    return Parallelism(threads=int(threads), trials=int(trials), cores=cores)


class LightGBMTrialParams(BaseModel):
    """What Optuna tunes; each field is the LGBMClassifier argument of the same name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    learning_rate: float = Field(gt=0, description="Shrinkage of each boosting round.")
    num_leaves: int = Field(ge=2, description="Leaves per tree.")
    min_child_samples: int = Field(ge=1, description="Rows a leaf needs at least.")
    colsample_bytree: float = Field(gt=0, le=1, description="Share of features per tree.")
    reg_lambda: float = Field(ge=0, description="L2 regularisation of leaf values.")


@dataclass(frozen=True)
class Features:
    """The TF-IDF matrices of one study (the vectorizer is fitted once, on train)."""

    vectorizer: Any
    x_train: sparse.csr_matrix
    y_train: np.ndarray
    x_val: sparse.csr_matrix
    y_val: np.ndarray
    labels: list[str]


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


def search_space(trial: optuna.Trial, config: LightGBMConfig) -> LightGBMTrialParams:
    """The hyper-parameters one trial tries, within the bounds of the config."""
    return LightGBMTrialParams(
        learning_rate=trial.suggest_float("learning_rate", *config.learning_rate, log=True),
        num_leaves=trial.suggest_int("num_leaves", *config.num_leaves),
        min_child_samples=trial.suggest_int("min_child_samples", *config.min_child_samples),
        colsample_bytree=trial.suggest_float("colsample_bytree", *config.colsample_bytree),
        reg_lambda=trial.suggest_float("reg_lambda", *config.reg_lambda, log=True),
    )


def study_key(config: LightGBMConfig, data: str) -> dict[str, Any]:
    """What changes what a trial measures: the whole config but its budget, and the data."""
    return {"config": config.model_dump(mode="json", exclude=set(RUN_ONLY_KEYS)), "data": data}


def make_classifier(
    params: LightGBMTrialParams, config: LightGBMConfig, n_estimators: int, threads: int = 1
) -> lgb.LGBMClassifier:
    return lgb.LGBMClassifier(
        n_estimators=n_estimators,
        class_weight="balanced" if config.imbalance == "class_weight" else None,
        random_state=config.seed,
        n_jobs=threads,
        verbose=-1,
        **params.model_dump(),
    )


def _predict_ids(raw: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Class ids from a Booster's probabilities (one column for a binary task)."""
    if raw.ndim == 1:
        return classes[(raw > 0.5).astype(int)]
    return classes[np.argmax(raw, axis=1)]


class PruningCallback:
    """A LightGBM callback: every `every` rounds, report val macro-F1; stop when pruned."""

    def __init__(
        self, reporter: TrialReporter, features: Features, classes: np.ndarray, every: int
    ) -> None:
        self.reporter = reporter
        self.features = features
        self.classes = classes
        self.every = every
        self.pruned_at: int | None = None
        self.last_value = float("nan")

    def __call__(self, env: lgb.callback.CallbackEnv) -> None:
        step = env.iteration + 1
        self.reporter.advance(step, env.end_iteration)
        if step % self.every:
            return
        raw = env.model.predict(self.features.x_val, num_iteration=step)
        predicted = _predict_ids(raw, self.classes)
        self.last_value = scores(self.features.y_val, predicted, self.features.labels)["macro_f1"]
        if self.reporter.report(step, self.last_value):
            self.pruned_at = step
            raise lgb.callback.EarlyStopException(env.iteration, env.evaluation_result_list)


def fit_one(
    params: LightGBMTrialParams,
    reporter: TrialReporter,
    *,
    config: LightGBMConfig,
    features: Features,
    every: int = REPORT_EVERY,
    threads: int = 1,
) -> TrialResult:
    """Fit one trial with early stopping on the validation set, reporting for pruning."""
    model = make_classifier(params, config, config.max_estimators, threads)
    pruning = PruningCallback(reporter, features, np.unique(features.y_train), every)
    model.fit(
        features.x_train,
        features.y_train,
        eval_X=features.x_val,
        eval_y=features.y_val,
        callbacks=[lgb.early_stopping(config.early_stopping_rounds, verbose=False), pruning],
    )
    if pruning.pruned_at is not None:
        return TrialResult(pruning.last_value, pruned=True, metrics={"rounds": pruning.pruned_at})
    best_iteration = int(model.best_iteration_ or config.max_estimators)
    val = scores(features.y_val, model.predict(features.x_val), features.labels)
    return TrialResult(
        val["macro_f1"],
        metrics={"val_accuracy": val["accuracy"], "best_iteration": best_iteration},
        model=Pipeline([("tfidf", features.vectorizer), ("clf", model)]),
    )


def save_model(
    pipeline: Pipeline, target: Path, info: Mapping[str, Any], *, config: LightGBMConfig,
    labels: list[str],
) -> None:
    """The trial's TF-IDF + LightGBM pipeline, in the serving shape (predicting with the
    early-stopped number of rounds)."""
    manifest = ModelManifest(
        name=MODEL_NAME,
        kind="sklearn",
        labels=labels,
        metrics=dict(info["metrics"]),
        params={
            **info["params"],
            "tfidf": config.tfidf.model_dump(mode="json"),
            "study_name": info["study_name"],
            "trial_number": info["trial_number"],
        },
        mlflow_run_id=info["mlflow_run_id"],
    )
    save_sklearn(target, pipeline, manifest)


def run(config: LightGBMConfig, paths: ProjectPaths) -> TuningSummary:
    labels = read_labels(paths)
    train, val = read_split(paths, "train", labels), read_split(paths, "val", labels)
    features = prepare_features(config, train, val, labels)
    use = parallelism(config)
    logger.info(
        "%d LightGBM thread(s) per trial, %d trial(s) at once (%d usable cores; "
        "train.lightgbm.threads=%s, parallel_trials=%s)",
        use.threads, use.trials, use.cores, config.threads, config.parallel_trials,
    )
    schedule = PruningSchedule(
        min_resource=REPORT_EVERY,
        max_resource=config.max_estimators,
        median_warmup_steps=2 * REPORT_EVERY,
        floor_warmup_steps=2 * REPORT_EVERY,
        n_startup_trials=5,
    )
    spec = StudySpec(
        key=study_key(config, data_fingerprint(train, val) + "|" + "|".join(labels)),
        n_trials=config.n_trials,
        timeout=config.timeout,
        seed=config.seed,
        pruner=make_pruner(config.pruner, schedule, chance_macro_f1(features.y_val)),
        parallel_trials=use.trials,
    )
    stage = TunedStage(
        prefix=MODEL_NAME,
        stage=STAGE.name,
        suggest=partial(search_space, config=config),
        fit_one=partial(fit_one, config=config, features=features, threads=use.threads),
        save_model=partial(save_model, config=config, labels=labels),
        content_hash=content_hash,
    )
    outputs = Outputs(
        paths.lightgbm_model,
        paths.lightgbm_results,
        paths.lightgbm_metrics,
        details={"train_rows": len(train), "val_rows": len(val)},
    )
    return optimize(stage, spec, config, paths, outputs)


STAGE = Stage("train_lightgbm", "train.lightgbm", LightGBMConfig, run)

if __name__ == "__main__":
    runner.main(STAGE)
