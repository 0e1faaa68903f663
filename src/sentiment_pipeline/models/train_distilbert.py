"""train_distilbert stage: fine-tune a transformer encoder, tuned by the tuning core."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
from collections.abc import Mapping
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
import pandas as pd

from sentiment_pipeline import runner
from sentiment_pipeline.config.distilbert import DistilBERTConfig
from sentiment_pipeline.data.contract import read_labels, read_split
from sentiment_pipeline.models.artifacts.manifest import ModelManifest, content_hash
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
from sentiment_pipeline.runner import Stage
from sentiment_pipeline.tuning.core import Outputs, StudySpec, TunedStage, optimize
from sentiment_pipeline.tuning.pruning import PruningSchedule, chance_macro_f1, make_pruner
from sentiment_pipeline.tuning.results import TuningSummary, write_skipped
from sentiment_pipeline.tuning.study import data_fingerprint
from sentiment_pipeline.tuning.trial import TrialFailure, TrialReporter, TrialResult

if TYPE_CHECKING:
    from sentiment_pipeline.models.distilbert.trainer import TrainingSetup

logger = logging.getLogger(__name__)

MODEL_NAME = "distilbert"
MODULE = "sentiment_pipeline.models.train_distilbert"
# Config keys left out of the study key: the budget and where/how fast trials run (so workers
# on different machines join one study), and the subsample sizes (the data fingerprint covers
# the rows they select). Every other key changes what a trial measures. nproc_per_node is
# replaced by the number of processes that really train (see study_key).
RUN_ONLY_KEYS = frozenset(
    {"enable", "n_trials", "timeout", "device", "allow_cpu", "eval_batch_size",
     "max_train_samples", "max_eval_samples", "nproc_per_node"}
)


def search_space(trial: optuna.Trial, config: DistilBERTConfig) -> DistilBERTTrialParams:
    """The hyper-parameters of one trial, inside the bounds of train.distilbert."""
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


def study_key(config: DistilBERTConfig, data: str, processes: int = 1) -> dict[str, Any]:
    """What changes what a trial measures (see RUN_ONLY_KEYS for what does not).

    Data-parallel processes multiply the batch a trial's per-device batch size stands for, so
    several processes make another study (one process keeps the key it always had).
    """
    key: dict[str, Any] = {
        "config": config.model_dump(mode="json", exclude=set(RUN_ONLY_KEYS)), "data": data
    }
    if processes > 1:
        key["processes"] = processes
    return key


def pruning_schedule(config: DistilBERTConfig) -> PruningSchedule:
    """Reports are evaluations, `evals_per_epoch` per epoch; the floor waits one epoch."""
    return PruningSchedule(
        min_resource=1,
        max_resource=config.epochs[1] * config.evals_per_epoch,
        median_warmup_steps=0,
        floor_warmup_steps=config.evals_per_epoch,
        n_startup_trials=2,
    )


def skip_reason(config: DistilBERTConfig, cuda_available: bool | None) -> str | None:
    """Why the stage writes placeholders instead of training, or None (logged for the user)."""
    if not config.enable:
        logger.info("train.distilbert.enable is false; writing placeholders")
        return "disabled"
    if cuda_available is None:
        logger.warning(
            "skipping the transformer stage: %s not installed; to train it: %s",
            " and ".join(missing_dependencies()), INSTALL_HINT,
        )
        return "missing_dependency"
    if resolve_device(config, cuda_available) is None:
        logger.warning(
            "skipping the transformer stage: no CUDA device; to train on the CPU (slow; "
            "max_train_samples helps) pass --set train.distilbert.allow_cpu=true"
        )
        return "no_cuda"
    return None


def write_placeholders(
    config: DistilBERTConfig, paths: ProjectPaths, labels: list[str], reason: str
) -> TuningSummary:
    """Every declared out, marked skipped, so the DAG stays whole."""
    save_placeholder(
        paths.distilbert_model, MODEL_NAME, labels, reason,
        params={"model_name_or_path": config.model_name_or_path},
    )
    return write_skipped(paths.distilbert_results, paths.distilbert_metrics, reason)


def fit_one(
    params: DistilBERTTrialParams,
    reporter: TrialReporter,
    *,
    setup: TrainingSetup,
    channel: distributed.Channel | None = None,
) -> TrialResult:
    """One trial; with a channel (rank 0 of several), the other ranks train it alongside."""
    import torch

    from sentiment_pipeline.models.distilbert.trainer import run_trial

    leading = (
        contextlib.nullcontext(reporter) if channel is None
        else channel.trial(params.model_dump(mode="json"), reporter)
    )
    with leading as trial_reporter:
        try:
            outcome = run_trial(setup, params, trial_reporter)
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


def save_model(
    model: Any, target: Path, info: Mapping[str, Any], *, setup: TrainingSetup,
    config: DistilBERTConfig,
) -> None:
    """Weights (safetensors), tokenizer and manifest of a trial's fine-tuned model."""
    from sentiment_pipeline.models.artifacts.transformers_model import save_transformers

    manifest = ModelManifest(
        name=MODEL_NAME,
        kind="transformers",
        labels=setup.labels,
        metrics=dict(info["metrics"]),
        params={
            **info["params"],
            "max_length": setup.max_length,
            "model_name_or_path": config.model_name_or_path,
            "precision": setup.precision,
            "study_name": info["study_name"],
            "trial_number": info["trial_number"],
        },
        mlflow_run_id=info["mlflow_run_id"],
    )
    save_transformers(target, model, setup.tokenizer, manifest)


def prepare(
    config: DistilBERTConfig,
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
    tokenizer, positions = load_tokenizer(config.model_name_or_path)
    max_length = effective_max_length(config.max_length, positions)
    setup = TrainingSetup(
        model_name_or_path=config.model_name_or_path,
        tokenizer=tokenizer,
        train=encoding.encode(tokenizer, train, max_length),
        val=encoding.encode(tokenizer, val, max_length),
        max_length=max_length,
        labels=labels,
        device=device,
        precision=precision,
        eval_batch_size=config.eval_batch_size,
        evals_per_epoch=config.evals_per_epoch,
        group_by_length=config.group_by_length,
        seed=config.seed,
    )
    return setup, data_fingerprint(train, val) + "|" + "|".join(labels)


def follow(channel: distributed.Channel, setup: TrainingSetup) -> None:
    """A rank other than 0: train each trial rank 0 starts, with its parameters, until its study
    ends. Its model and measurements are rank 0's too (the ranks train one model); it keeps
    nothing and writes nothing."""
    from sentiment_pipeline.models.distilbert.trainer import run_trial

    reporter = distributed.FollowingReporter(channel)
    while (params := channel.next_trial()) is not None:
        run_trial(setup, DistilBERTTrialParams.model_validate(params), reporter)


def tune(
    config: DistilBERTConfig,
    paths: ProjectPaths,
    setup: TrainingSetup,
    data: str,
    channel: distributed.Channel | None = None,
) -> TuningSummary:
    """The study, on rank 0 (or the only process): Optuna, MLflow and every output."""
    import torch

    processes = 1 if channel is None else channel.ranks.world_size
    spec = StudySpec(
        key=study_key(config, data, processes),
        n_trials=config.n_trials,
        timeout=config.timeout,
        seed=config.seed,
        pruner=make_pruner(
            config.pruner, pruning_schedule(config), chance_macro_f1(setup.val.labels)
        ),
        n_startup_trials=max(2, min(10, config.n_trials // 2)),
    )
    stage = TunedStage(
        prefix=MODEL_NAME,
        stage=STAGE.name,
        suggest=partial(search_space, config=config),
        fit_one=partial(fit_one, setup=setup, channel=channel),
        save_model=partial(save_model, setup=setup, config=config),
        trial_errors=(torch.cuda.OutOfMemoryError,),
        content_hash=content_hash,
    )
    outputs = Outputs(
        paths.distilbert_model,
        paths.distilbert_results,
        paths.distilbert_metrics,
        details={"device": setup.device, "precision": setup.precision,
                 "max_length": setup.max_length, "train_rows": len(setup.train),
                 "val_rows": len(setup.val), "processes": processes},
    )
    return optimize(stage, spec, config, paths, outputs)


def run(config: DistilBERTConfig, paths: ProjectPaths) -> TuningSummary | None:
    """The stage in this process; under torchrun / accelerate launch (WORLD_SIZE > 1) rank 0
    runs the study and the other ranks train alongside it, writing nothing (they return None)."""
    ranks = distributed.ranks(os.environ)
    labels = read_labels(paths)
    cuda_available = None
    if config.enable and not missing_dependencies():
        import torch

        cuda_available = torch.cuda.is_available()
    reason = skip_reason(config, cuda_available)
    if reason is not None:
        return write_placeholders(config, paths, labels, reason) if ranks.leader else None
    import torch

    device = resolve_device(config, bool(cuda_available))
    precision = resolve_precision(
        config.mixed_precision, device, device == "cuda" and torch.cuda.is_bf16_supported()
    )
    train, val = read_split(paths, "train", labels), read_split(paths, "val", labels)
    setup, data = prepare(config, train, val, labels, device, precision)
    if ranks.distributed:
        return run_rank(config, paths, setup, data, ranks)
    if distributed.relaunch_command(config.nproc_per_node, os.environ, cuda_devices, MODULE, [],
                                    sys.executable):
        logger.warning(
            "train.distilbert.nproc_per_node=%s is for `python -m %s` (what dvc repro runs) and "
            "torchrun; this run trains in one process", config.nproc_per_node, MODULE,
        )
    logger.info("%d train / %d val texts on %s (%s), max_length %d", len(setup.train),
                len(setup.val), device, precision, setup.max_length)
    return tune(config, paths, setup, data)


def run_rank(
    config: DistilBERTConfig,
    paths: ProjectPaths,
    setup: TrainingSetup,
    data: str,
    ranks: distributed.Ranks,
) -> TuningSummary | None:
    """One rank of a data-parallel job: rank 0 leads the study, the others follow it."""
    channel = distributed.Channel.open(ranks, setup.device)
    if not ranks.leader:
        follow(channel, setup)
        channel.close()
        return None
    logger.info("%d train / %d val texts on %d %s processes (%s), max_length %d",
                len(setup.train), len(setup.val), ranks.world_size, setup.device,
                setup.precision, setup.max_length)
    with channel.leading():
        summary = tune(config, paths, setup, data, channel)
    channel.close()
    return summary


def run_or_relaunch(config: DistilBERTConfig, paths: ProjectPaths) -> TuningSummary | None:
    """`python -m` (what dvc repro runs): run(), or, when train.distilbert.nproc_per_node asks
    for several processes and no launcher started this one, this module again under torchrun
    (this process becomes torchrun; its exit status is the stage's)."""
    command = None
    if config.enable:
        command = distributed.relaunch_command(
            config.nproc_per_node, os.environ, cuda_devices, MODULE, sys.argv[1:],
            sys.executable,
        )
    if command is None:
        if not distributed.ranks(os.environ).leader:
            # The other ranks repeat rank 0's lines; their warnings and errors still show.
            logging.getLogger("sentiment_pipeline").setLevel(logging.WARNING)
        return run(config, paths)
    logger.info("train.distilbert.nproc_per_node=%s: relaunching under torchrun: %s",
                config.nproc_per_node, " ".join(command))
    for handler in logging.getLogger().handlers:
        handler.flush()
    os.execv(command[0], command)
    return None  # not reached


def cuda_devices() -> int:
    """Visible CUDA devices (0 without torch)."""
    if missing_dependencies():
        return 0
    import torch

    return torch.cuda.device_count()


STAGE = Stage("train_distilbert", "train.distilbert", DistilBERTConfig, run)

if __name__ == "__main__":
    runner.main(replace(STAGE, run=run_or_relaunch))
