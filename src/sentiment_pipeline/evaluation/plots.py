"""Evaluation figures (confusion matrix, one-vs-rest ROC and precision-recall curves)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_curve

# Figure() renders with the Agg canvas on savefig, so no pyplot state or display is involved.


def save_confusion_matrix(
    matrix: Sequence[Sequence[int]], labels: Sequence[str], title: str, path: Path
) -> None:
    matrix = np.asarray(matrix)
    fig = Figure(figsize=(4.8, 4.2), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax)
    ticks = range(len(labels))
    ax.set_xticks(ticks, labels, rotation=30, ha="right")
    ax.set_yticks(ticks, labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    threshold = matrix.max() / 2 if matrix.size else 0
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, str(value), ha="center", va="center",
                color="white" if value > threshold else "black")
    fig.savefig(path, dpi=110)


def _class_grid(n_classes: int) -> tuple[Figure, list]:
    fig = Figure(figsize=(4.2 * n_classes, 4.0), layout="constrained")
    axes = fig.subplots(1, n_classes, squeeze=False)[0]
    return fig, list(axes)


def save_roc_curves(
    y_true: np.ndarray, probas: Mapping[str, np.ndarray], labels: Sequence[str], path: Path
) -> None:
    """One panel per class (one-vs-rest), one curve per model, AUC in the legend."""
    fig, axes = _class_grid(len(labels))
    for k, (ax, label) in enumerate(zip(axes, labels, strict=True)):
        positives = y_true == k
        for name, proba in probas.items():
            if positives.all() or not positives.any():
                continue
            fpr, tpr, _ = roc_curve(positives, proba[:, k])
            ax.plot(fpr, tpr, label=f"{name} (AUC {auc(fpr, tpr):.3f})")
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
        ax.set(title=f"{label} vs rest", xlabel="false positive rate", ylabel="true positive rate")
        ax.legend(loc="lower right", fontsize="small")
    fig.suptitle("ROC curves (test set)")
    fig.savefig(path, dpi=110)


def save_pr_curves(
    y_true: np.ndarray, probas: Mapping[str, np.ndarray], labels: Sequence[str], path: Path
) -> None:
    """One panel per class (one-vs-rest), one curve per model, average precision in the legend."""
    fig, axes = _class_grid(len(labels))
    for k, (ax, label) in enumerate(zip(axes, labels, strict=True)):
        positives = y_true == k
        for name, proba in probas.items():
            if not positives.any():
                continue
            precision, recall, _ = precision_recall_curve(positives, proba[:, k])
            ap = average_precision_score(positives, proba[:, k])
            ax.plot(recall, precision, label=f"{name} (AP {ap:.3f})")
        ax.set(title=f"{label} vs rest", xlabel="recall", ylabel="precision", ylim=(0, 1.02))
        ax.legend(loc="lower left", fontsize="small")
    fig.suptitle("Precision-recall curves (test set)")
    fig.savefig(path, dpi=110)
