"""One fine-tuning trial with the Hugging Face Trainer, evaluated at fixed fractions of an epoch."""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.metrics import accuracy_score, f1_score
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PrinterCallback,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)

from sentiment_pipeline.errors import PipelineError
from sentiment_pipeline.models.distilbert.device import Device, Precision
from sentiment_pipeline.models.distilbert.encoding import EncodedDataset, by_length, collator
from sentiment_pipeline.models.distilbert.params import DistilBERTTrialParams
from sentiment_pipeline.tuning.trial import NULL_REPORTER, TrialReporter

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingSetup:
    """Everything a trial needs that does not depend on its hyper-parameters."""

    model_name_or_path: str
    tokenizer: Any
    train: EncodedDataset
    val: EncodedDataset
    labels: list[str]
    device: Device
    precision: Precision
    max_length: int = 128
    eval_batch_size: int = 64
    evals_per_epoch: int = 1
    group_by_length: bool = True
    seed: int = 42
    # Cross-entropy weights by class id (None: unweighted) and label smoothing of the loss.
    class_weights: tuple[float, ...] | None = None
    label_smoothing: float = 0.0
    section: str = "train.distilbert"  # the params.yaml section messages name


@dataclass
class TrialOutcome:
    """A finished trial: the model in memory and what it measured."""

    model: Any
    val_macro_f1: float
    val_accuracy: float
    val_loss: float | None
    train_loss: float
    train_samples_per_second: float
    optimizer_steps: int
    duration_s: float
    stopped: bool  # the reporter asked to stop (pruned)
    evaluations: int


def load_tokenizer(
    model_name_or_path: str, section: str = "train.distilbert"
) -> tuple[Any, int | None]:
    """The tokenizer and the longest input (position embeddings) of the checkpoint."""
    try:
        model_config = AutoConfig.from_pretrained(model_name_or_path)
        tokenizer = AutoTokenizer.from_pretrained(model_name_or_path)
    except (OSError, ValueError, KeyError) as exc:  # hub, file-system and parsing errors
        raise PipelineError(
            f"cannot load {section}.model_name_or_path={model_name_or_path!r} "
            f"({type(exc).__name__}: {exc}). A hub id needs network access (or a filled hub "
            "cache); a local directory with config.json, the weights and the tokenizer files "
            "works the same way"
        ) from exc
    if not getattr(tokenizer, "is_fast", False):
        logger.warning("the tokenizer of %s is not a fast tokenizer; tokenising will be slow",
                       model_name_or_path)
    return tokenizer, getattr(model_config, "max_position_embeddings", None)


def effective_max_length(
    max_length: int, positions: int | None, section: str = "train.distilbert"
) -> int:
    """<section>.max_length, capped at what the model's position embeddings allow."""
    if positions is not None and max_length > positions:
        logger.warning(
            "%s.max_length=%d exceeds the model's %d positions; truncating at %d",
            section, max_length, positions, positions,
        )
        return positions
    return max_length


def compute_metrics(eval_pred: Any) -> dict[str, float]:
    logits, labels = eval_pred.predictions, eval_pred.label_ids
    if isinstance(logits, tuple):
        logits = logits[0]
    predicted = np.argmax(logits, axis=-1)
    return {
        "macro_f1": float(f1_score(labels, predicted, average="macro", zero_division=0)),
        "accuracy": float(accuracy_score(labels, predicted)),
    }


def evaluation_steps(max_steps: int, epochs: int, evals_per_epoch: int) -> list[int]:
    """The optimizer steps after which a trial evaluates: `evals_per_epoch` even points per epoch.

    The points sit at fixed fractions of an epoch, so evaluation k of every trial comes after the
    same number of training samples whatever its batch size; that is what lets a pruner compare
    trials at equal steps. The last point is the last step.
    """
    points = epochs * evals_per_epoch
    return sorted({max(1, round(k * max_steps / points)) for k in range(1, points + 1)})


class ReportingCallback(TrainerCallback):
    """Evaluates at fixed fractions of each epoch and hands every evaluation to a reporter.

    Training stops at the evaluation where the reporter says so (a pruned trial), unless that
    evaluation is the last one anyway. Every optimizer step is passed on as progress.
    """

    def __init__(self, reporter: TrialReporter, evals_per_epoch: int = 1) -> None:
        self.reporter = reporter
        self.evals_per_epoch = evals_per_epoch
        self.schedule: set[int] = set()
        self.history: list[dict[str, float]] = []
        self.stopped = False

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: ANN001
        epochs = max(1, round(args.num_train_epochs))
        self.schedule = set(evaluation_steps(state.max_steps, epochs, self.evals_per_epoch))
        return control

    def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
        samples = (state.global_step * args.train_batch_size * args.gradient_accumulation_steps
                   * args.world_size)  # every process's batch (data-parallel)
        self.reporter.advance(state.global_step, state.max_steps, samples)
        if state.global_step in self.schedule:
            control.should_evaluate = True
            control.should_log = True
        return control

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):  # noqa: ANN001
        metrics = dict(metrics or {})
        self.history.append(metrics)
        value = metrics.get("eval_macro_f1")
        stop = value is not None and self.reporter.report(
            len(self.history),
            float(value),
            {"val_loss": metrics.get("eval_loss"), "val_accuracy": metrics.get("eval_accuracy")},
        )
        # After the last step there is nothing left to save: the trial is complete.
        if stop and state.global_step < state.max_steps:
            self.stopped = True
            control.should_training_stop = True
        return control


class LengthOrderedEvalTrainer(Trainer):
    """A Trainer that reads its evaluation set in order; build_trainer hands it sorted by length.

    With train_sampling_strategy="group_by_length", transformers 5 also shuffles evaluation
    batches, sorted only within megabatches of min(n // 256, 50) * 64 texts: for the 500-text
    benchmark that is one batch, so batches are random (1.69 computed positions per real token;
    1.11 sorted and read in order, see encoding.by_length).
    """

    def _get_eval_sampler(self, eval_dataset: Any) -> Any:
        return torch.utils.data.SequentialSampler(eval_dataset)


def load_classifier(model_name_or_path: str, labels: Sequence[str]) -> Any:
    return AutoModelForSequenceClassification.from_pretrained(
        model_name_or_path,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        ignore_mismatched_sizes=True,
    )


def weighted_loss(
    class_weights: Sequence[float] | None, label_smoothing: float
) -> Callable[..., torch.Tensor] | None:
    """The Trainer's compute_loss_func: cross-entropy with class weights and label smoothing;
    None (the model's own unweighted loss) when there are neither."""
    if class_weights is None and label_smoothing == 0:
        return None
    weights = None if class_weights is None else torch.tensor(class_weights, dtype=torch.float32)

    def loss(outputs: Any, labels: torch.Tensor, num_items_in_batch: Any = None) -> torch.Tensor:
        logits = outputs["logits"]
        weight = None if weights is None else weights.to(logits.device, logits.dtype)
        return torch.nn.functional.cross_entropy(
            logits.view(-1, logits.shape[-1]), labels.view(-1), weight=weight,
            label_smoothing=label_smoothing,
        )

    return loss


def training_arguments(
    setup: TrainingSetup, params: DistilBERTTrialParams, output_dir: str
) -> TrainingArguments:
    """The Trainer's arguments for one trial: the tuned ones as they are, the rest fixed."""
    return TrainingArguments(
        output_dir=output_dir,
        **params.model_dump(),
        per_device_eval_batch_size=setup.eval_batch_size,
        # ReportingCallback asks for evaluations (and logs) at fixed fractions of each epoch.
        eval_strategy="no",
        logging_strategy="no",
        save_strategy="no",
        report_to="none",
        seed=setup.seed,
        data_seed=setup.seed,
        bf16=setup.precision == "bf16",
        fp16=setup.precision == "fp16",
        use_cpu=setup.device == "cpu",
        # The data is tokenised in memory and padding a batch is cheap: worker processes
        # would only add fork overhead (and tokenizers' fork warnings).
        dataloader_num_workers=0,
        dataloader_pin_memory=setup.device == "cuda",
        train_sampling_strategy="group_by_length" if setup.group_by_length else "random",
        # One label per text: each process's mean loss, averaged over processes by DDP, is the
        # mean over the whole batch. With True, the Trainer multiplies the loss by the number of
        # processes for any model whose forward takes **kwargs, meant for losses summed over
        # tokens; DistilBERT's mean loss then doubles on 2 processes, gradient clipping acts
        # on other steps, and the tiny test model's validation macro-F1 moved by 9-22 points.
        average_tokens_across_devices=False,
        # The tuning core shows the steps of a trial (StudyProgress); no second bar.
        disable_tqdm=True,
    )


def build_trainer(
    setup: TrainingSetup,
    params: DistilBERTTrialParams,
    output_dir: str,
    callbacks: Sequence[TrainerCallback] = (),
) -> Trainer:
    """A Trainer for one trial, on a freshly loaded (seeded) model."""
    set_seed(setup.seed)
    trainer = LengthOrderedEvalTrainer(
        model=load_classifier(setup.model_name_or_path, setup.labels),
        args=training_arguments(setup, params, output_dir),
        data_collator=collator(setup.tokenizer, setup.precision),
        train_dataset=setup.train,
        eval_dataset=by_length(setup.val),  # 1.03-1.11 positions per real token, not 1.7
        processing_class=setup.tokenizer,
        compute_metrics=compute_metrics,
        compute_loss_func=weighted_loss(setup.class_weights, setup.label_smoothing),
        callbacks=list(callbacks),
    )
    # With tqdm disabled the Trainer prints every log dict to stdout instead.
    trainer.remove_callback(PrinterCallback)
    return trainer


def run_trial(
    setup: TrainingSetup,
    params: DistilBERTTrialParams,
    reporter: TrialReporter = NULL_REPORTER,
) -> TrialOutcome:
    """Fine-tune once with `params`; nothing is left on disk (save_strategy "no", temp dir)."""
    callback = ReportingCallback(reporter, setup.evals_per_epoch)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="distilbert-trial-") as output_dir:
        trainer = build_trainer(setup, params, output_dir, [callback])
        train_output = trainer.train()  # its last step is always an evaluation point
    last = callback.history[-1] if callback.history else {}
    return TrialOutcome(
        model=trainer.model,
        val_macro_f1=float(last.get("eval_macro_f1", float("nan"))),
        val_accuracy=float(last.get("eval_accuracy", float("nan"))),
        val_loss=float(last["eval_loss"]) if "eval_loss" in last else None,
        train_loss=float(train_output.training_loss),
        train_samples_per_second=float(train_output.metrics.get("train_samples_per_second", 0.0)),
        optimizer_steps=int(trainer.state.global_step),
        duration_s=time.perf_counter() - start,
        stopped=callback.stopped,
        evaluations=len(callback.history),
    )
