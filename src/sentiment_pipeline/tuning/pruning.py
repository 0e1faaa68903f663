"""Pruners of the tuned stages: Optuna's median and hyperband rules, behind a chance floor."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import optuna
from sklearn.metrics import f1_score

PrunerKind = Literal["median", "hyperband", "none"]


def chance_macro_f1(labels: Sequence[int]) -> float:
    """Macro-F1 of always predicting the most frequent label: the score a model starts from."""
    labels = np.asarray(labels)
    values, counts = np.unique(labels, return_counts=True)
    constant = np.full_like(labels, values[np.argmax(counts)])
    return float(f1_score(labels, constant, average="macro", zero_division=0))


class ChanceFloorPruner(optuna.pruners.BasePruner):
    """Prunes a trial still at or below `floor` after its warm-up; otherwise asks `base`.

    `floor` is the score of the best constant prediction (for macro-F1: always answering the
    majority class). Fine-tuning often starts there: until the new classification head moves,
    every trial predicts one class. Two things go wrong if such trials are left alone. They tie
    with the median at early steps, so a median pruner never stops them; and once they complete,
    they pull the median they set for later trials down to that floor. A trial whose every report
    after `n_warmup_steps` reports (one epoch, say) is still at the floor has learnt nothing and
    is stopped, once a complete trial of the study has shown that the floor can be beaten (if
    none has, every trial may simply need longer, and stopping them all would leave no model).
    """

    TOLERANCE = 1e-6

    def __init__(
        self, base: optuna.pruners.BasePruner, floor: float, n_warmup_steps: int
    ) -> None:
        self.base = base
        self.floor = floor
        self.n_warmup_steps = n_warmup_steps

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        step = trial.last_step
        if step is None:
            return False
        reports = [v for v in trial.intermediate_values.values() if not math.isnan(v)]
        stuck = reports and max(reports) <= self.floor + self.TOLERANCE
        if step >= self.n_warmup_steps and stuck and self._floor_beaten(study):
            return True
        return self.base.prune(study, trial)

    def _floor_beaten(self, study: optuna.Study) -> bool:
        complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        return any(t.value is not None and t.value > self.floor + self.TOLERANCE for t in complete)


@dataclass(frozen=True)
class PruningSchedule:
    """When a stage's trials report, in the stage's own steps (boosting rounds, evaluations).

    min_resource / max_resource: the first and the last report of the longest possible trial
    (hyperband's budget: Optuna's "auto" would take it from the first finished trial, wrong
    whenever the trial length is tuned). median_warmup_steps / floor_warmup_steps: the step
    before which the median rule / the chance floor does not act. n_startup_trials: complete
    trials before the median rule acts.
    """

    min_resource: int
    max_resource: int
    median_warmup_steps: int
    floor_warmup_steps: int
    n_startup_trials: int


def make_pruner(
    kind: PrunerKind, schedule: PruningSchedule, chance_floor: float
) -> optuna.pruners.BasePruner:
    """median: Optuna's median rule behind the chance floor. hyperband: Optuna's, unwrapped,
    because Optuna's samplers look for a HyperbandPruner instance to sample per bracket."""
    if kind == "median":
        median = optuna.pruners.MedianPruner(
            n_startup_trials=schedule.n_startup_trials,
            n_warmup_steps=schedule.median_warmup_steps,
        )
        return ChanceFloorPruner(median, chance_floor, n_warmup_steps=schedule.floor_warmup_steps)
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=schedule.min_resource,
            max_resource=max(schedule.max_resource, schedule.min_resource),
            reduction_factor=3,
        )
    return optuna.pruners.NopPruner()
