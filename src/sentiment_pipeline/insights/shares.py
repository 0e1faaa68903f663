"""Shares of predicted classes: counts, Wilson intervals, like weights, net sentiment (pure)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from sentiment_pipeline.insights.result import BreakdownRow, WeightedRow

Z95 = 1.959964  # the standard normal quantile of a two-sided 95 % interval
PROB_DIGITS = 6  # per-comment scores are rounded: 10,000 rows stay a few MB of JSON


def wilson_interval(count: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion count/n; (0, 1) when n is 0 (nothing known)."""
    if n <= 0:
        return 0.0, 1.0
    p = count / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def breakdown(predicted: np.ndarray, labels: Sequence[str]) -> list[BreakdownRow]:
    """Count, share and 95 % Wilson interval of each predicted class."""
    n = int(len(predicted))
    totals = np.bincount(predicted, minlength=len(labels)) if n else np.zeros(len(labels), int)
    result = []
    for label, count in zip(labels, totals, strict=True):
        low, high = wilson_interval(int(count), n)
        share = int(count) / n if n else 0.0
        result.append(
            BreakdownRow(label=label, count=int(count), share=share, ci_low=low, ci_high=high)
        )
    return result


def weighted_breakdown(
    predicted: np.ndarray, likes: Sequence[int], labels: Sequence[str]
) -> list[WeightedRow]:
    """Each class's share when a comment weighs 1 + its likes (a liked opinion is shared)."""
    weights = 1.0 + np.maximum(np.asarray(likes, dtype=np.float64).reshape(-1), 0.0)
    totals = (
        np.bincount(predicted, weights=weights, minlength=len(labels))
        if len(predicted)
        else np.zeros(len(labels))
    )
    whole = float(totals.sum())
    return [
        WeightedRow(label=label, weight=float(w), share=float(w) / whole if whole else 0.0)
        for label, w in zip(labels, totals, strict=True)
    ]


def net_interval(
    positive: int, negative: int, n: int, z: float = Z95
) -> tuple[float, float, float]:
    """Net sentiment (positive share - negative share) and its 95 % interval, (0, -1, 1) when
    n is 0.

    Both shares come from one sample, so the interval is Zou and Donner's (2008) MOVER for a
    difference of correlated proportions: each share's Wilson interval, combined with the
    multinomial correlation -sqrt(p q / ((1 - p) (1 - q))) of the two estimates.
    """
    if n <= 0:
        return 0.0, -1.0, 1.0
    p, q = positive / n, negative / n
    (p_low, p_high), (q_low, q_high) = wilson_interval(positive, n, z), wilson_interval(
        negative, n, z
    )
    spread = (1 - p) * (1 - q)
    r = -math.sqrt(p * q / spread) if spread > 0 else 0.0
    net = p - q
    below = math.sqrt(max(
        (p - p_low) ** 2 + (q_high - q) ** 2 - 2 * r * (p - p_low) * (q_high - q), 0.0
    ))
    above = math.sqrt(max(
        (p_high - p) ** 2 + (q - q_low) ** 2 - 2 * r * (p_high - p) * (q - q_low), 0.0
    ))
    return net, max(-1.0, net - below), min(1.0, net + above)
