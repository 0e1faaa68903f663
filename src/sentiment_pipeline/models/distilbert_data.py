"""Torch side of the transformer stage: tokenise once, datasets, collator, one Trainer per trial."""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import accuracy_score, f1_score
from transformers import (
    AutoModelForSequenceClassification,
    DataCollatorWithPadding,
    PrinterCallback,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)

logger = logging.getLogger(__name__)

Precision = Literal["bf16", "fp16", "fp32"]
# Called after every evaluation with (eval index from 1, metrics); returns True to stop training.
Reporter = Callable[[int, Mapping[str, float]], bool]


def subsample(frame: pd.DataFrame, n: int | None, seed: int) -> pd.DataFrame:
    """At most `n` rows drawn at random (seeded), in their original order."""
    if n is None or len(frame) <= n:
        return frame.reset_index(drop=True)
    return frame.sample(n=n, random_state=seed).sort_index().reset_index(drop=True)


def fingerprint(*frames: pd.DataFrame) -> str:
    """A stable hash of the text and label columns of the given frames."""
    digest = hashlib.sha256()
    for frame in frames:
        hashed = pd.util.hash_pandas_object(frame[["text", "label"]], index=False)
        digest.update(str(len(frame)).encode())
        digest.update(hashed.to_numpy().tobytes())
    return digest.hexdigest()[:16]


class EncodedDataset(torch.utils.data.Dataset):
    """Token ids (unpadded) and labels; the collator pads each batch."""

    def __init__(self, encodings: Mapping[str, list[list[int]]], labels: Sequence[int]) -> None:
        self.encodings = {k: list(v) for k, v in encodings.items()}
        self.labels = [int(y) for y in labels]
        self.lengths = [len(ids) for ids in self.encodings["input_ids"]]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = {k: v[index] for k, v in self.encodings.items()}
        item["labels"] = self.labels[index]
        return item


def encode(tokenizer: Any, frame: pd.DataFrame, max_length: int) -> EncodedDataset:
    """Tokenise a (text, label) frame once: truncation at max_length, no padding."""
    encodings = tokenizer(
        frame["text"].astype(str).tolist(),
        truncation=True,
        max_length=max_length,
        padding=False,
        return_token_type_ids=False,
    )
    return EncodedDataset(dict(encodings), frame["label"].tolist())


def collator(tokenizer: Any, precision: Precision = "fp32") -> DataCollatorWithPadding:
    """Dynamic padding to the longest text of each batch (multiples of 8 help tensor cores)."""
    return DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8 if precision != "fp32" else None)


def compute_metrics(eval_pred: Any) -> dict[str, float]:
    logits, labels = eval_pred.predictions, eval_pred.label_ids
    if isinstance(logits, tuple):
        logits = logits[0]
    predicted = np.argmax(logits, axis=-1)
    return {
        "macro_f1": float(f1_score(labels, predicted, average="macro", zero_division=0)),
        "accuracy": float(accuracy_score(labels, predicted)),
    }


def chance_macro_f1(labels: Sequence[int]) -> float:
    """Macro-F1 of always predicting the most frequent label: the score a model starts from."""
    labels = np.asarray(labels)
    values, counts = np.unique(labels, return_counts=True)
    constant = np.full_like(labels, values[np.argmax(counts)])
    return float(f1_score(labels, constant, average="macro", zero_division=0))


@dataclass(frozen=True)
class TrainingSetup:
    """Everything a trial needs that does not depend on its hyper-parameters."""

    model_name_or_path: str
    tokenizer: Any
    train: EncodedDataset
    val: EncodedDataset
    labels: list[str]
    device: Literal["cuda", "cpu"]
    precision: Precision
    max_length: int = 128
    eval_batch_size: int = 64
    evals_per_epoch: int = 1
    group_by_length: bool = True
    seed: int = 42
    verbose: bool = False


@dataclass
class TrialOutcome:
    """A finished trial: the model in memory and what it measured."""

    model: Any
    val_macro_f1: float
    val_accuracy: float
    val_loss: float | None
    train_samples_per_second: float
    optimizer_steps: int
    duration_s: float
    stopped: bool  # the reporter asked to stop (pruned)
    evaluations: int


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
    evaluation is the last one anyway.
    """

    def __init__(self, reporter: Reporter | None, evals_per_epoch: int = 1) -> None:
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
        if state.global_step in self.schedule:
            control.should_evaluate = True
            control.should_log = True
        return control

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):  # noqa: ANN001
        metrics = dict(metrics or {})
        self.history.append(metrics)
        stop = self.reporter is not None and self.reporter(len(self.history), metrics)
        # After the last step there is nothing left to save: the trial is complete.
        if stop and state.global_step < state.max_steps:
            self.stopped = True
            control.should_training_stop = True
        return control


def load_classifier(model_name_or_path: str, labels: Sequence[str]) -> Any:
    return AutoModelForSequenceClassification.from_pretrained(
        model_name_or_path,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        ignore_mismatched_sizes=True,
    )


def training_arguments(
    setup: TrainingSetup, params: Mapping[str, Any], output_dir: str
) -> TrainingArguments:
    """The Trainer's arguments for one trial (transformers 5 names)."""
    return TrainingArguments(
        output_dir=output_dir,
        learning_rate=float(params["lr"]),
        per_device_train_batch_size=int(params["batch_size"]),
        per_device_eval_batch_size=setup.eval_batch_size,
        num_train_epochs=int(params["epochs"]),
        weight_decay=float(params["weight_decay"]),
        warmup_steps=float(params["warmup_ratio"]),  # a float below 1 is a ratio of all steps
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
        disable_tqdm=not setup.verbose,
    )


def build_trainer(
    setup: TrainingSetup,
    params: Mapping[str, Any],
    output_dir: str,
    callbacks: Sequence[TrainerCallback] = (),
) -> Trainer:
    """A Trainer for one trial, on a freshly loaded (seeded) model."""
    set_seed(setup.seed)
    trainer = Trainer(
        model=load_classifier(setup.model_name_or_path, setup.labels),
        args=training_arguments(setup, params, output_dir),
        data_collator=collator(setup.tokenizer, setup.precision),
        train_dataset=setup.train,
        eval_dataset=setup.val,
        processing_class=setup.tokenizer,
        compute_metrics=compute_metrics,
        callbacks=list(callbacks),
    )
    if not setup.verbose:
        # With tqdm disabled the Trainer prints every log dict to stdout instead.
        trainer.remove_callback(PrinterCallback)
    return trainer


def run_trial(
    setup: TrainingSetup, params: Mapping[str, Any], reporter: Reporter | None = None
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
        train_samples_per_second=float(train_output.metrics.get("train_samples_per_second", 0.0)),
        optimizer_steps=int(trainer.state.global_step),
        duration_s=time.perf_counter() - start,
        stopped=callback.stopped,
        evaluations=len(callback.history),
    )
