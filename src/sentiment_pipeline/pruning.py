"""Pruner guard for tuned stages: stop trials that do no better than a constant prediction."""

from __future__ import annotations

import math

import optuna


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
