"""Test-set metrics of a probabilistic classifier, and prediction latency."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
    roc_auc_score,
)


@dataclass(frozen=True)
class LabelledSplit:
    """A labelled test split as the models take it: texts (or (text, aspect) pairs) and ids."""

    inputs: list[Any]
    y_true: np.ndarray
    labels: list[str]


# Metrics where higher is better; the champion is chosen by one of them.
RANKABLE = ("macro_f1", "weighted_f1", "accuracy", "roc_auc_ovr")


def classification_metrics(
    y_true: np.ndarray, proba: np.ndarray, labels: Sequence[str]
) -> dict[str, Any]:
    """Scores of `proba` (n x K, columns in label-id order) against integer ids `y_true`."""
    y_true = np.asarray(y_true, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    ids = list(range(len(labels)))
    y_pred = proba.argmax(axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=ids, zero_division=0
    )
    return {
        "n_samples": int(len(y_true)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=ids, average="macro", zero_division=0)),
        "weighted_f1": float(
            f1_score(y_true, y_pred, labels=ids, average="weighted", zero_division=0)
        ),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "roc_auc_ovr": roc_auc_ovr(y_true, proba),
        "log_loss": float(log_loss(y_true, np.clip(proba, 1e-15, 1.0), labels=ids)),
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=ids).tolist(),
    }


def roc_auc_ovr(y_true: np.ndarray, proba: np.ndarray) -> float | None:
    """One-vs-rest macro ROC-AUC; None when a class is absent from `y_true` (it is undefined)."""
    n_classes = proba.shape[1]
    if len(np.unique(y_true)) != n_classes:
        return None
    if n_classes == 2:
        return float(roc_auc_score(y_true, proba[:, 1]))
    # roc_auc_score's multi-class path insists on rows summing to 1 exactly.
    rows = proba / np.clip(proba.sum(axis=1, keepdims=True), 1e-12, None)
    return float(
        roc_auc_score(
            y_true, rows, multi_class="ovr", average="macro", labels=list(range(n_classes))
        )
    )


def latency_ms_per_1000(
    predict_proba: Callable[[list[Any]], np.ndarray],
    texts: Sequence[Any],
    batch_size: int,
    clock: Callable[[], float] = time.perf_counter,
) -> float | None:
    """Milliseconds `predict_proba` needs per 1,000 texts, timed in batches after a warm-up."""
    texts = list(texts)
    if not texts:
        return None
    predict_proba(texts[:batch_size])
    start = clock()
    for i in range(0, len(texts), batch_size):
        predict_proba(texts[i : i + batch_size])
    elapsed = clock() - start
    return 1000.0 * elapsed * 1000 / len(texts)
