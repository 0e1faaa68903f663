"""The fine-tuning stage every transformer stage is: placeholders, or a study on the tuning core."""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
import pandas as pd

from sentiment_pipeline.config.distilbert import FineTuneConfig
from sentiment_pipeline.models.artifacts.manifest import ModelManifest, content_hash
from sentiment_pipeline.models.artifacts.pairs import PairStyle
from sentiment_pipeline.models.artifacts.placeholder import save_placeholder
from sentiment_pipeline.models.distilbert import distributed
from sentiment_pipeline.models.distilbert.device import (
    INSTALL_HINT,
    Device,
    Precision,
    missing_dependencies,
    resolve_device,
    resolve_precision,
)
from sentiment_pipeline.models.distilbert.params import DistilBERTTrialParams
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.tuning.core import Outputs, StudySpec, TunedStage, optimize
from sentiment_pipeline.tuning.pruning import PruningSchedule, chance_macro_f1, make_pruner
from sentiment_pipeline.tuning.results import TuningSummary, write_skipped
from sentiment_pipeline.tuning.study import data_fingerprint
from sentiment_pipeline.tuning.trial import TrialFailure, TrialReporter, TrialResult

if TYPE_CHECKING:
    from sentiment_pipeline.models.distilbert.trainer import TrainingSetup

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FineTuneTask:
    """What one transformer stage is: its names, its outputs, its examples and its loss."""

    name: str  # the study prefix and the manifest's model name
    stage: str
    section: str  # its params.yaml section, named in messages
    model_dir: Path
    results_dir: Path
    metrics_path: Path
    # Config keys left out of the study key (what does not change what a trial measures).
    run_only_keys: frozenset[str]
    # None: a text model; else a (text, aspect) pair model whose first segment has this style.
    pair_style: PairStyle | None = None
    class_weight: str = "none"  # none | balanced | sqrt
    label_smoothing: float = 0.0
    manifest_params: Mapping[str, Any] = field(default_factory=dict)


def search_space(trial: optuna.Trial, config: FineTuneConfig) -> DistilBERTTrialParams:
    """The hyper-parameters of one trial, inside the bounds of the stage's section."""
    # The order of the suggestions is the one of the studies recorded in BENCHMARKS.md: a seeded
    # sampler then proposes the same trials.
    return DistilBERTTrialParams(
        learning_rate=trial.suggest_float("learning_rate", *config.lr, log=True),
        per_device_train_batch_size=trial.suggest_categorical(
            "per_device_train_batch_size", list(config.batch_size)
        ),
        weight_decay=trial.suggest_float("weight_decay", *config.weight_decay),
        num_train_epochs=trial.suggest_int("num_train_epochs", *config.epochs),
        warmup_steps=trial.suggest_float("warmup_steps", *config.warmup_ratio),
    )


def study_key(
    config: FineTuneConfig, data: str, run_only_keys: frozenset[str], processes: int = 1
) -> dict[str, Any]:
    """What changes what a trial measures (every key but `run_only_keys`).

    Data-parallel processes multiply the batch a trial's per-device batch size stands for, so
    several processes make another study (one process keeps the key it always had).
    """
    key: dict[str, Any] = {
        "config": config.model_dump(mode="json", exclude=set(run_only_keys)), "data": data
    }
    if processes > 1:
        key["processes"] = processes
    return key


def pruning_schedule(config: FineTuneConfig) -> PruningSchedule:
    """Reports are evaluations, `evals_per_epoch` per epoch; the floor waits one epoch."""
    return PruningSchedule(
        min_resource=1,
        max_resource=config.epochs[1] * config.evals_per_epoch,
        median_warmup_steps=0,
        floor_warmup_steps=config.evals_per_epoch,
        n_startup_trials=2,
    )


def skip_reason(config: FineTuneConfig, cuda_available: bool | None, section: str) -> str | None:
    """Why the stage writes placeholders instead of training, or None (logged for the user)."""
    if not config.enable:
        logger.info("%s.enable is false; writing placeholders", section)
        return "disabled"
    if cuda_available is None:
        logger.warning(
            "skipping the transformer stage: %s not installed; to train it: %s",
            " and ".join(missing_dependencies()), INSTALL_HINT,
        )
        return "missing_dependency"
    if resolve_device(config, cuda_available, section) is None:
        logger.warning(
            "skipping the transformer stage: no CUDA device; to train on the CPU (slow; "
            "max_train_samples helps) pass --set %s.allow_cpu=true", section,
        )
        return "no_cuda"
    return None


def placement(config: FineTuneConfig, section: str) -> tuple[Device, Precision] | str:
    """Where and in which precision to train, or why the stage skips (see skip_reason)."""
    cuda_available = None
    if config.enable and not missing_dependencies():
        import torch

        cuda_available = torch.cuda.is_available()
    reason = skip_reason(config, cuda_available, section)
    if reason is not None:
        return reason
    import torch

    device = resolve_device(config, bool(cuda_available), section)
    assert device is not None  # skip_reason said it trains
    bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
    return device, resolve_precision(config.mixed_precision, device, bf16, section)


def write_placeholders(
    task: FineTuneTask, config: FineTuneConfig, labels: list[str], reason: str
) -> TuningSummary:
    """Every declared out, marked skipped, so the DAG stays whole."""
    save_placeholder(
        task.model_dir, task.name, labels, reason,
        params={"model_name_or_path": config.model_name_or_path},
    )
    return write_skipped(task.results_dir, task.metrics_path, reason)


def fit_one(
    params: DistilBERTTrialParams,
    reporter: TrialReporter,
    *,
    setup: TrainingSetup,
    channel: distributed.Channel | None = None,
) -> TrialResult:
    """One trial; with a channel (rank 0 of several), the other ranks train it alongside."""
    import torch

    from sentiment_pipeline.models.distilbert import trainer

    leading = (
        contextlib.nullcontext(reporter) if channel is None
        else channel.trial(params.model_dump(mode="json"), reporter)
    )
    with leading as trial_reporter:
        try:
            outcome = trainer.run_trial(setup, params, trial_reporter)
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()  # the next trial (maybe a smaller batch) needs the memory
            raise
    if not math.isfinite(outcome.train_loss):
        raise TrialFailure(f"training loss is {outcome.train_loss}: a numerical failure")
    metrics = {
        "val_accuracy": outcome.val_accuracy,
        "val_loss": outcome.val_loss,
        "train_samples_per_second": outcome.train_samples_per_second,
        "optimizer_steps": outcome.optimizer_steps,
    }
    return TrialResult(outcome.val_macro_f1, outcome.stopped, metrics, outcome.model)


def manifest_of(task: FineTuneTask, **fields: Any) -> ModelManifest:
    """A transformers manifest of the task's model: a pair model says so (input, pair_style)."""
    pair = {} if task.pair_style is None else {"input": "pair", "pair_style": task.pair_style}
    return ModelManifest(name=task.name, kind="transformers", **pair, **fields)


def save_model(
    model: Any, target: Path, info: Mapping[str, Any], *, setup: TrainingSetup,
    config: FineTuneConfig, task: FineTuneTask,
) -> None:
    """Weights (safetensors), tokenizer and manifest of a trial's fine-tuned model."""
    from sentiment_pipeline.models.artifacts.transformers_model import save_transformers

    manifest = manifest_of(
        task,
        labels=setup.labels,
        metrics=dict(info["metrics"]),
        params={
            **info["params"],
            **task.manifest_params,
            "max_length": setup.max_length,
            "model_name_or_path": config.model_name_or_path,
            "precision": setup.precision,
            "study_name": info["study_name"],
            "trial_number": info["trial_number"],
        },
        mlflow_run_id=info["mlflow_run_id"],
    )
    save_transformers(target, model, setup.tokenizer, manifest)


def class_weights(labels: pd.Series, n_classes: int, mode: str) -> tuple[float, ...] | None:
    """Loss weights by class id: 'balanced' is n / (k * count) (sklearn's), 'sqrt' its square
    root; 'none' is None. A class absent from `labels` weighs as if seen once."""
    if mode == "none":
        return None
    counts = labels.value_counts().reindex(range(n_classes), fill_value=0).clip(lower=1)
    balanced = len(labels) / (n_classes * counts)
    weights = balanced if mode == "balanced" else balanced**0.5
    return tuple(float(w) for w in weights)


def prepare(
    task: FineTuneTask,
    config: FineTuneConfig,
    train: pd.DataFrame,
    val: pd.DataFrame,
    labels: list[str],
    device: Device,
    precision: Precision,
) -> tuple[TrainingSetup, str]:
    """Subsample, tokenise once for the whole study; return the setup and the data fingerprint."""
    from sentiment_pipeline.models.distilbert import encoding
    from sentiment_pipeline.models.distilbert.trainer import (
        TrainingSetup,
        effective_max_length,
        load_tokenizer,
    )

    train = encoding.subsample(train, config.max_train_samples, config.seed)
    val = encoding.subsample(val, config.max_eval_samples, config.seed)
    tokenizer, positions = load_tokenizer(config.model_name_or_path, task.section)
    max_length = effective_max_length(config.max_length, positions, task.section)
    if task.pair_style is None:
        encode = partial(encoding.encode, tokenizer, max_length=max_length)
    else:
        encode = partial(encoding.encode_pairs, tokenizer, max_length=max_length,
                         style=task.pair_style)
    weights = class_weights(train["label"], len(labels), task.class_weight)
    setup = TrainingSetup(
        model_name_or_path=config.model_name_or_path,
        tokenizer=tokenizer,
        train=encode(train),
        val=encode(val),
        max_length=max_length,
        labels=labels,
        device=device,
        precision=precision,
        eval_batch_size=config.eval_batch_size,
        evals_per_epoch=config.evals_per_epoch,
        group_by_length=config.group_by_length,
        seed=config.seed,
        class_weights=weights,
        label_smoothing=task.label_smoothing,
        section=task.section,
    )
    return setup, data_fingerprint(train, val) + "|" + "|".join(labels)


def tune(
    task: FineTuneTask,
    config: FineTuneConfig,
    paths: ProjectPaths,
    setup: TrainingSetup,
    data: str,
    channel: distributed.Channel | None = None,
) -> TuningSummary:
    """The study, on rank 0 (or the only process): Optuna, MLflow and every output."""
    import torch

    processes = 1 if channel is None else channel.ranks.world_size
    spec = StudySpec(
        key=study_key(config, data, task.run_only_keys, processes),
        n_trials=config.n_trials,
        timeout=config.timeout,
        seed=config.seed,
        pruner=make_pruner(
            config.pruner, pruning_schedule(config), chance_macro_f1(setup.val.labels)
        ),
        n_startup_trials=max(2, min(10, config.n_trials // 2)),
    )
    stage = TunedStage(
        prefix=task.name,
        stage=task.stage,
        suggest=partial(search_space, config=config),
        fit_one=partial(fit_one, setup=setup, channel=channel),
        save_model=partial(save_model, setup=setup, config=config, task=task),
        trial_errors=(torch.cuda.OutOfMemoryError,),
        content_hash=content_hash,
    )
    details: dict[str, Any] = {
        "device": setup.device, "precision": setup.precision, "max_length": setup.max_length,
        "train_rows": len(setup.train), "val_rows": len(setup.val), "processes": processes,
    }
    if setup.class_weights is not None:
        details["class_weights"] = dict(zip(setup.labels, setup.class_weights, strict=True))
    outputs = Outputs(task.model_dir, task.results_dir, task.metrics_path, details=details)
    return optimize(stage, spec, config, paths, outputs)
