"""The train_distilbert stage: fine-tune a transformer encoder tuned by a resumable Optuna study."""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import math
import shutil
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from sentiment_pipeline import stages, tracking, tuning
from sentiment_pipeline.config.entities import DistilBERTConfig
from sentiment_pipeline.errors import ConfigError, DataError, PipelineError
from sentiment_pipeline.io import atomic_dir, read_json, write_json
from sentiment_pipeline.models.artifacts import (
    ArtifactError,
    ModelManifest,
    read_manifest,
    save_placeholder,
)
from sentiment_pipeline.paths import ProjectPaths

if TYPE_CHECKING:
    import optuna

    from sentiment_pipeline.models.distilbert_data import Reporter, TrainingSetup

logger = logging.getLogger(__name__)

STAGE = "train_distilbert"
MODEL_NAME = "distilbert"
INSTALL_HINT = (
    "pip install 'sentiment-pipeline[transformers]' (on a machine without a GPU, install a "
    "CPU build of torch first, so that pip does not pull the multi-GB CUDA build)"
)
Device = Literal["cuda", "cpu"]
Precision = Literal["bf16", "fp16", "fp32"]


@dataclass(frozen=True)
class DistilBERTResult:
    """What the stage did; also written as models/advanced/distilbert_metrics.json."""

    status: Literal["trained", "skipped"]
    reason: str | None = None
    best_val_macro_f1: float | None = None
    best_val_accuracy: float | None = None
    best_params: dict[str, Any] | None = None
    best_trial: int | None = None
    trials: dict[str, int] = field(default_factory=dict)
    train_samples_per_second: float | None = None
    device: str | None = None
    precision: str | None = None
    study_name: str | None = None
    mlflow_run_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# --- decisions before any training --------------------------------------------------------


def missing_dependencies() -> list[str]:
    """The optional packages (torch, transformers) that cannot be imported."""
    missing = []
    for name in ("torch", "transformers"):
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def resolve_device(config: DistilBERTConfig, cuda_available: bool) -> Device | None:
    """The device to train on, or None when the stage must skip (auto, no CUDA, no allow_cpu)."""
    if config.device == "cuda" and not cuda_available:
        raise ConfigError(
            "train.distilbert.device is 'cuda' but no CUDA device is available "
            "(torch.cuda.is_available() is False); use 'auto' (skips without CUDA, or trains "
            "on the CPU with train.distilbert.allow_cpu=true) or 'cpu'"
        )
    if config.device == "cpu":
        return "cpu"
    if cuda_available:
        return "cuda"
    return "cpu" if config.allow_cpu else None


def resolve_precision(setting: str, device: Device, bf16_supported: bool) -> Precision:
    """Mixed precision on CUDA (bf16 where supported, else fp16); fp32 on the CPU."""
    if device == "cpu":
        if setting in ("bf16", "fp16"):
            logger.warning(
                "train.distilbert.mixed_precision=%s is ignored on the CPU; training in fp32",
                setting,
            )
        return "fp32"
    if setting == "auto":
        return "bf16" if bf16_supported else "fp16"
    if setting == "bf16" and not bf16_supported:
        raise ConfigError(
            "train.distilbert.mixed_precision is 'bf16' but this GPU does not support bf16; "
            "use 'auto', 'fp16' or 'no'"
        )
    return "fp32" if setting == "no" else setting  # type: ignore[return-value]


# --- the study ----------------------------------------------------------------------------


def search_space(trial: optuna.Trial, config: DistilBERTConfig) -> dict[str, Any]:
    """The hyper-parameters of one trial, inside the bounds of train.distilbert."""
    return {
        "lr": trial.suggest_float("lr", *config.lr, log=True),
        "batch_size": trial.suggest_categorical("batch_size", list(config.batch_size)),
        "weight_decay": trial.suggest_float("weight_decay", *config.weight_decay),
        "epochs": trial.suggest_int("epochs", *config.epochs),
        "warmup_ratio": trial.suggest_float("warmup_ratio", *config.warmup_ratio),
    }


def study_name(config: DistilBERTConfig, data_fingerprint: str) -> str:
    """A name that changes whenever the search space, the data or the model does."""
    key = {
        "search_space": config.model_dump(
            mode="json", include={"lr", "batch_size", "weight_decay", "epochs", "warmup_ratio"}
        ),
        "data": data_fingerprint,
        "model": config.model_name_or_path,
        "max_length": config.max_length,
        "seed": config.seed,
        "pruner": config.pruner,
        "evals_per_epoch": config.evals_per_epoch,
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    return f"{MODEL_NAME}-{digest}"


def make_pruner(config: DistilBERTConfig, chance_floor: float) -> optuna.pruners.BasePruner:
    """The configured pruner; reports are evaluations, `evals_per_epoch` per epoch.

    median: Optuna's median rule behind a chance floor (a trial still no better than always
    predicting the majority class after one epoch is stopped; see ChanceFloorPruner).
    hyperband: Optuna's, budgeted for the longest trial the search space allows; it stays
    unwrapped because Optuna's samplers look for a HyperbandPruner to sample per bracket.
    """
    import optuna

    from sentiment_pipeline.pruning import ChanceFloorPruner

    if config.pruner == "median":
        median = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
        return ChanceFloorPruner(median, chance_floor, n_warmup_steps=config.evals_per_epoch)
    if config.pruner == "hyperband":
        # "auto" would take the budget from the first finished trial, wrong whenever the
        # epochs are tuned.
        return optuna.pruners.HyperbandPruner(
            min_resource=1,
            max_resource=config.epochs[1] * config.evals_per_epoch,
            reduction_factor=3,
        )
    return optuna.pruners.NopPruner()


def best_dir(paths: ProjectPaths, name: str) -> Path:
    """Best-so-far weights of a study; outside the DVC outs, which DVC deletes before a rerun."""
    return paths.root / ".optuna" / MODEL_NAME / name / "best"


def saved_best(path: Path) -> ModelManifest | None:
    """The manifest of the best-so-far folder, or None when there is none."""
    try:
        return read_manifest(path)
    except ArtifactError:
        return None


def reconcile_best(study: optuna.Study, path: Path) -> None:
    """Drop a best-so-far folder that no complete trial of the study accounts for."""
    import optuna

    record = saved_best(path)
    if record is None:
        shutil.rmtree(path, ignore_errors=True)
        return
    number = record.params.get("trial_number")
    complete = {
        t.number: t.value for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    }
    if number not in complete or complete[number] != record.metrics.get("val_macro_f1"):
        logger.warning("discarding %s: it does not belong to a complete trial of %s",
                       path, study.study_name)
        shutil.rmtree(path, ignore_errors=True)


def optuna_reporter(
    trial: optuna.Trial, log: Callable[..., None] = tracking.log_metrics
) -> Reporter:
    """Report each evaluation to Optuna (step = eval index) and the trial's MLflow run."""

    def report(index: int, metrics: Mapping[str, float]) -> bool:
        log(
            {
                "val_loss": metrics.get("eval_loss"),
                "val_macro_f1": metrics.get("eval_macro_f1"),
                "val_accuracy": metrics.get("eval_accuracy"),
            },
            step=index,
        )
        value = metrics.get("eval_macro_f1")
        if value is None:
            return False
        trial.report(float(value), step=index)
        return trial.should_prune()

    return report


def make_objective(
    config: DistilBERTConfig, setup: TrainingSetup, name: str, best_path: Path
) -> Callable[[optuna.Trial], float]:
    """One trial: train, report, record its state in MLflow, keep its weights if it is the best."""
    import mlflow
    import optuna

    from sentiment_pipeline.models.distilbert_data import run_trial
    from sentiment_pipeline.models.transformers_model import save_transformers

    def objective(trial: optuna.Trial) -> float:
        params = search_space(trial, config)
        tags = {"optuna_study": name, "optuna_trial": str(trial.number)}
        pruned: optuna.TrialPruned | None = None
        with tracking.child_run(f"trial-{trial.number}", params=params, tags=tags) as child:
            run_id = child.info.run_id
            trial.set_user_attr("mlflow_run_id", run_id)
            state = "failed"
            try:
                outcome = run_trial(setup, params, optuna_reporter(trial))
                summary = {
                    "train_samples_per_second": outcome.train_samples_per_second,
                    "optimizer_steps": outcome.optimizer_steps,
                    "duration_s": outcome.duration_s,
                }
                for key, value in summary.items():
                    trial.set_user_attr(key, value)
                tracking.log_metrics(summary)
                if outcome.stopped:
                    state = "pruned"
                    pruned = optuna.TrialPruned(f"pruned after evaluation {outcome.evaluations}")
                elif math.isnan(outcome.val_macro_f1):
                    raise PipelineError(f"trial {trial.number} finished without an evaluation")
                else:
                    value = outcome.val_macro_f1
                    trial.set_user_attr("val_accuracy", outcome.val_accuracy)
                    tracking.log_metrics(
                        {"final_val_macro_f1": value, "final_val_accuracy": outcome.val_accuracy}
                    )
                    keep_if_best(
                        best_path,
                        outcome,
                        setup,
                        {
                            **params,
                            "max_length": setup.max_length,
                            "model_name_or_path": config.model_name_or_path,
                            "precision": setup.precision,
                            "study_name": name,
                            "trial_number": trial.number,
                            "trial_mlflow_run_id": run_id,
                        },
                        run_id,
                        save_transformers,
                    )
                    state = "complete"
            finally:
                mlflow.set_tag("state", state)
                mlflow.log_param("state", state)
        if pruned is not None:
            raise pruned
        logger.info("trial %d complete: val macro-F1 %.4f, %.1f samples/s, %.0f s",
                    trial.number, value, outcome.train_samples_per_second, outcome.duration_s)
        return value

    return objective


def keep_if_best(
    best_path: Path,
    outcome: Any,
    setup: TrainingSetup,
    params: dict[str, Any],
    run_id: str,
    save: Callable[..., ModelManifest],
) -> bool:
    """Replace the best-so-far folder when this trial beats it; return whether it did."""
    record = saved_best(best_path)
    if record is not None and outcome.val_macro_f1 <= record.metrics.get("val_macro_f1", -1.0):
        return False
    manifest = ModelManifest(
        name=MODEL_NAME,
        kind="transformers",
        labels=setup.labels,
        metrics={
            "val_macro_f1": outcome.val_macro_f1,
            "val_accuracy": outcome.val_accuracy,
            "val_loss": outcome.val_loss,
        },
        params=params,
        mlflow_run_id=run_id,
    )
    save(best_path, outcome.model, setup.tokenizer, manifest)
    logger.info(
        "trial %s is the best so far (val macro-F1 %.4f); weights kept in %s",
        params.get("trial_number"), outcome.val_macro_f1, best_path,
    )
    return True


# --- results ------------------------------------------------------------------------------


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: number, state, value, duration and its params and measurements."""
    rows = []
    for t in study.trials:
        duration = t.user_attrs.get("duration_s")
        if duration is None and t.datetime_start and t.datetime_complete:
            duration = (t.datetime_complete - t.datetime_start).total_seconds()
        rows.append(
            {
                "number": t.number,
                "state": tuning.state_name(t.state),
                "value": t.value,
                "duration_s": duration,
                **{f"params_{k}": v for k, v in t.params.items()},
                "train_samples_per_second": t.user_attrs.get("train_samples_per_second"),
                "optimizer_steps": t.user_attrs.get("optimizer_steps"),
                "mlflow_run_id": t.user_attrs.get("mlflow_run_id"),
            }
        )
    return pd.DataFrame(rows)


def save_plots(study: optuna.Study, directory: Path) -> dict[str, str]:
    """Optimisation history and parameter importances as PNG; returns file -> note."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as ovm

    notes: dict[str, str] = {}
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    varying = {k for k in complete[0].params if len({str(t.params.get(k)) for t in complete}) > 1}
    plots = {"optimization_history.png": ovm.plot_optimization_history}
    if len(complete) >= 2 and varying:
        plots["param_importances.png"] = ovm.plot_param_importances
    else:
        notes["param_importances.png"] = "skipped: needs 2 complete trials with varying params"
    for file, plot in plots.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                axes = plot(study)
            except (ValueError, RuntimeError) as exc:
                notes[file] = f"skipped: {exc}"
                continue
        figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
        figure.savefig(directory / file, dpi=100, bbox_inches="tight")
        plt.close(figure)
        notes[file] = "written"
    return notes


def write_results(
    study: optuna.Study, target: Path, info: Mapping[str, Any]
) -> dict[str, Any]:
    """Atomically write distilbert_results/: trials.csv, study.json and the plots."""
    best = study.best_trial
    summary = {
        "status": "trained",
        "study_name": study.study_name,
        **info,
        "best_trial": best.number,
        "best_value": best.value,
        "best_params": best.params,
        "trials": tuning.count_states(study),
    }
    with atomic_dir(target) as tmp:
        trials_frame(study).to_csv(tmp / "trials.csv", index=False)
        summary["plots"] = save_plots(study, tmp)
        write_json(tmp / "study.json", summary)
    return summary


# --- the stage ----------------------------------------------------------------------------


def read_labels(paths: ProjectPaths) -> list[str]:
    if not paths.labels.is_file():
        raise DataError(f"no label list at {paths.labels}; run the prepare stage first")
    labels = read_json(paths.labels)
    if not isinstance(labels, list) or not labels:
        raise DataError(f"{paths.labels} must hold a non-empty list of class names, got {labels!r}")
    return [str(label) for label in labels]


def read_split(paths: ProjectPaths, name: str, n_labels: int) -> pd.DataFrame:
    file = paths.split(name)
    if not file.is_file():
        raise DataError(f"no {name} split at {file}; run the prepare stage first")
    frame = pd.read_parquet(file)
    missing = {"text", "label"} - set(frame.columns)
    if missing:
        raise DataError(
            f"expected columns 'text' and 'label' in {file}, found {list(frame.columns)}"
        )
    bad = sorted(set(frame["label"].tolist()) - set(range(n_labels)))
    if bad:
        raise DataError(
            f"{file} has label ids {bad[:5]} outside 0..{n_labels - 1} (labels.json lists "
            f"{n_labels} classes); rerun the prepare stage"
        )
    if frame.empty:
        raise DataError(f"{file} has no rows")
    return frame


def write_placeholders(
    config: DistilBERTConfig, paths: ProjectPaths, labels: list[str], reason: str
) -> DistilBERTResult:
    """Every declared out, marked skipped, so the DAG stays whole."""
    save_placeholder(
        paths.distilbert_model, MODEL_NAME, labels, reason,
        params={"model_name_or_path": config.model_name_or_path},
    )
    with atomic_dir(paths.distilbert_results) as tmp:
        write_json(tmp / "study.json", {"status": "skipped", "reason": reason})
    result = DistilBERTResult(status="skipped", reason=reason)
    write_json(paths.distilbert_metrics, result.to_json())
    return result


def load_tokenizer(model_name_or_path: str) -> tuple[Any, int | None]:
    """The tokenizer and the longest input (position embeddings) of the checkpoint."""
    from transformers import AutoConfig, AutoTokenizer

    try:
        model_config = AutoConfig.from_pretrained(model_name_or_path)
        tokenizer = AutoTokenizer.from_pretrained(model_name_or_path)
    except Exception as exc:  # hub, file-system and parsing errors all mean "cannot use it"
        raise PipelineError(
            f"cannot load train.distilbert.model_name_or_path={model_name_or_path!r} "
            f"({type(exc).__name__}: {exc}). A hub id needs network access (or a filled hub "
            "cache); a local directory with config.json, the weights and the tokenizer files "
            "works the same way"
        ) from None
    if not getattr(tokenizer, "is_fast", False):
        logger.warning("the tokenizer of %s is not a fast tokenizer; tokenising will be slow",
                       model_name_or_path)
    return tokenizer, getattr(model_config, "max_position_embeddings", None)


def effective_max_length(max_length: int, positions: int | None) -> int:
    """train.distilbert.max_length, capped at what the model's position embeddings allow."""
    if positions is not None and max_length > positions:
        logger.warning(
            "train.distilbert.max_length=%d exceeds the model's %d positions; truncating at %d",
            max_length, positions, positions,
        )
        return positions
    return max_length


def quiet_libraries(verbose: bool) -> None:
    """Trainer bars and library chatter only with --verbose."""
    import optuna
    from transformers.utils import logging as hf_logging

    if verbose:
        hf_logging.set_verbosity_info()
        hf_logging.enable_progress_bar()
        optuna.logging.set_verbosity(optuna.logging.INFO)
    else:
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        optuna.logging.set_verbosity(optuna.logging.WARNING)


def prepare(
    config: DistilBERTConfig,
    train: pd.DataFrame,
    val: pd.DataFrame,
    labels: list[str],
    device: Device,
    precision: Precision,
    verbose: bool = False,
) -> tuple[TrainingSetup, str]:
    """Subsample, tokenise once for the whole study; return the setup and the study name."""
    from sentiment_pipeline.models import distilbert_data as dd

    train = dd.subsample(train, config.max_train_samples, config.seed)
    val = dd.subsample(val, config.max_eval_samples, config.seed)
    tokenizer, positions = load_tokenizer(config.model_name_or_path)
    max_length = effective_max_length(config.max_length, positions)
    setup = dd.TrainingSetup(
        model_name_or_path=config.model_name_or_path,
        tokenizer=tokenizer,
        train=dd.encode(tokenizer, train, max_length),
        val=dd.encode(tokenizer, val, max_length),
        max_length=max_length,
        labels=labels,
        device=device,
        precision=precision,
        eval_batch_size=config.eval_batch_size,
        evals_per_epoch=config.evals_per_epoch,
        group_by_length=config.group_by_length,
        seed=config.seed,
        verbose=verbose,
    )
    return setup, study_name(config, dd.fingerprint(train, val))


def run(config: DistilBERTConfig, paths: ProjectPaths) -> DistilBERTResult:
    labels = read_labels(paths)
    if not config.enable:
        logger.info("train.distilbert.enable is false; writing placeholders")
        return write_placeholders(config, paths, labels, "disabled")
    missing = missing_dependencies()
    if missing:
        logger.warning(
            "skipping the transformer stage: %s not installed; to train it: %s",
            " and ".join(missing), INSTALL_HINT,
        )
        return write_placeholders(config, paths, labels, "missing_dependency")
    import torch

    device = resolve_device(config, torch.cuda.is_available())
    if device is None:
        logger.warning(
            "skipping the transformer stage: no CUDA device; to train on the CPU (slow; "
            "max_train_samples helps) pass --set train.distilbert.allow_cpu=true"
        )
        return write_placeholders(config, paths, labels, "no_cuda")
    precision = resolve_precision(
        config.mixed_precision, device, device == "cuda" and torch.cuda.is_bf16_supported()
    )
    train = read_split(paths, "train", len(labels))
    val = read_split(paths, "val", len(labels))
    return _tune(config, paths, labels, train, val, device, precision)


def _tune(
    config: DistilBERTConfig,
    paths: ProjectPaths,
    labels: list[str],
    train: pd.DataFrame,
    val: pd.DataFrame,
    device: Device,
    precision: Precision,
) -> DistilBERTResult:
    import mlflow
    import torch
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState
    from tqdm.auto import tqdm

    from sentiment_pipeline.models.distilbert_data import chance_macro_f1
    from sentiment_pipeline.models.transformers_model import copy_transformers

    verbose = logging.getLogger("sentiment_pipeline").isEnabledFor(logging.DEBUG)
    quiet_libraries(verbose)
    setup, name = prepare(config, train, val, labels, device, precision, verbose)
    storage, shared = tuning.storage_url(paths)
    study = tuning.open_study(
        name,
        storage,
        shared=shared,
        pruner=make_pruner(config, chance_macro_f1(setup.val.labels)),
        seed=config.seed,
        n_startup_trials=max(2, min(10, config.n_trials // 2)),
    )
    best_path = best_dir(paths, name)
    reconcile_best(study, best_path)
    owed = tuning.owed_trials(study, config.n_trials)
    logger.info(
        "study %s (%s): %d of %d trials owed; %d train / %d val texts on %s (%s)",
        name, tuning.redact(storage), owed, config.n_trials, len(setup.train), len(setup.val),
        device, precision,
    )
    with tracking.stage_run(STAGE, config, paths, run_name=f"{STAGE} {name}") as parent:
        mlflow.set_tags({"optuna_study": name, "device": device, "precision": precision})
        if owed:
            with tqdm(total=owed, desc="distilbert trials", unit="trial", disable=None) as bar:

                def progress(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
                    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
                        bar.update(1)
                    if device == "cuda":
                        torch.cuda.empty_cache()  # a failed (OOM) trial leaves cached blocks
                    if _any_complete(study):
                        bar.set_postfix(best=f"{study.best_value:.4f}")

                # A failed trial (e.g. out of memory) does not count: the study goes on, with
                # at most one retry per trial owed so a trial that always fails cannot loop.
                finished = (TrialState.COMPLETE, TrialState.PRUNED)
                study.optimize(
                    make_objective(config, setup, name, best_path),
                    n_trials=2 * owed,
                    timeout=config.timeout,
                    catch=(Exception,),
                    callbacks=[MaxTrialsCallback(config.n_trials, states=finished), progress],
                    gc_after_trial=True,
                )
        counts = tuning.count_states(study)
        if not _any_complete(study):
            raise PipelineError(
                f"no trial of study {name} completed ({counts['failed']} failed, "
                f"{counts['pruned']} pruned); see the MLflow runs of experiment "
                f"{tracking.experiment_name(STAGE)} for the errors"
            )
        best = study.best_trial
        record = saved_best(best_path)
        if record is None or record.params.get("trial_number") != best.number:
            raise PipelineError(
                f"the weights of the best trial {best.number} of study {name} are missing from "
                f"{best_path}; delete the study (optuna delete-study --study-name {name} "
                f"--storage {tuning.redact(storage)}) and rerun"
            )
        info = {
            "storage": tuning.redact(storage),
            "device": device,
            "precision": precision,
            "n_trials": config.n_trials,
            "trials_run_now": owed,
            "mlflow_run_id": parent.info.run_id,
        }
        write_results(study, paths.distilbert_results, info)
        params = {
            **record.params,
            "best_trial_mlflow_run_id": best.user_attrs.get("mlflow_run_id"),
        }
        copy_transformers(
            best_path,
            paths.distilbert_model,
            record.model_copy(update={"params": params, "mlflow_run_id": parent.info.run_id}),
        )
        result = DistilBERTResult(
            status="trained",
            best_val_macro_f1=best.value,
            best_val_accuracy=best.user_attrs.get("val_accuracy"),
            best_params=best.params,
            best_trial=best.number,
            trials=counts,
            train_samples_per_second=best.user_attrs.get("train_samples_per_second"),
            device=device,
            precision=precision,
            study_name=name,
            mlflow_run_id=parent.info.run_id,
        )
        mlflow.log_params({f"best.{k}": v for k, v in best.params.items()})
        tracking.log_metrics(
            {
                "best_val_macro_f1": best.value,
                "best_val_accuracy": result.best_val_accuracy,
                "best_trial": best.number,
                **{f"trials_{state}": n for state, n in counts.items()},
            }
        )
        mlflow.log_artifacts(str(paths.distilbert_results), artifact_path="distilbert_results")
        write_json(paths.distilbert_metrics, result.to_json())
    return result


def _any_complete(study: optuna.Study) -> bool:
    import optuna

    return bool(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))


def main() -> None:
    stages.main(STAGE)


if __name__ == "__main__":
    main()
