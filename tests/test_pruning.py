"""ChanceFloorPruner: trials stuck at the constant-prediction score are stopped after warm-up."""

from __future__ import annotations

import optuna
import pytest

from sentiment_pipeline.tuning.pruning import (
    ChanceFloorPruner,
    PruningSchedule,
    chance_macro_f1,
    make_pruner,
)

FLOOR = 0.2577


class Always(optuna.pruners.BasePruner):
    def prune(self, study, trial) -> bool:  # noqa: ANN001
        return True


def _first_pruned_step(
    pruner: optuna.pruners.BasePruner, curve: list[float], beaten: bool = True
) -> int | None:
    """The step at which `pruner` stops `curve`; `beaten`: a complete trial above the floor."""
    study = optuna.create_study(direction="maximize", pruner=pruner)
    if beaten:
        study.add_trial(optuna.trial.create_trial(value=0.7, intermediate_values={1: 0.7}))
    trial = study.ask()
    for step, value in enumerate(curve, start=1):
        trial.report(value, step)
        if trial.should_prune():
            return step
    return None


@pytest.fixture(autouse=True)
def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_a_trial_still_at_the_floor_after_warm_up_is_pruned_there_and_not_before() -> None:
    pruner = ChanceFloorPruner(optuna.pruners.NopPruner(), FLOOR, n_warmup_steps=3)
    assert _first_pruned_step(pruner, [FLOOR] * 6) == 3
    assert _first_pruned_step(pruner, [FLOOR, FLOOR, FLOOR - 0.1, FLOOR]) == 3  # below counts


def test_the_floor_waits_until_some_trial_of_the_study_has_beaten_it() -> None:
    # Every trial may need more than the warm-up to move: stopping them all would leave no model.
    pruner = ChanceFloorPruner(optuna.pruners.NopPruner(), FLOOR, n_warmup_steps=3)
    assert _first_pruned_step(pruner, [FLOOR] * 6, beaten=False) is None


def test_a_trial_that_has_left_the_floor_is_judged_by_the_base_pruner_only() -> None:
    nop = ChanceFloorPruner(optuna.pruners.NopPruner(), FLOOR, n_warmup_steps=3)
    # It rose once (step 2), then fell back: it has learnt something; the base decides.
    assert _first_pruned_step(nop, [FLOOR, 0.41, FLOOR, FLOOR, FLOOR]) is None
    assert _first_pruned_step(ChanceFloorPruner(Always(), FLOOR, 3), [0.5, 0.6]) == 1


def test_stuck_trials_no_longer_drag_the_median_down() -> None:
    """A stuck start-up trial halves the median a plain median rule compares with."""
    good, stuck = [FLOOR, 0.60, 0.70, 0.75], [FLOOR] * 4
    fair, mediocre = [FLOOR, 0.44, 0.49, 0.51], [FLOOR, 0.45, 0.50, 0.52]

    def mediocre_pruned_at(pruner: optuna.pruners.BasePruner) -> int | None:
        study = optuna.create_study(direction="maximize", pruner=pruner)
        for curve in (good, stuck, fair, mediocre):
            trial = study.ask()
            for step, value in enumerate(curve, start=1):
                trial.report(value, step)
                if trial.should_prune():
                    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                    if curve is mediocre:
                        return step
                    break
            else:
                study.tell(trial, curve[-1])
        return None

    median = optuna.pruners.MedianPruner(n_startup_trials=2)  # as train_distilbert
    assert mediocre_pruned_at(median) is None  # the median of (good, stuck, fair) is fair
    assert mediocre_pruned_at(ChanceFloorPruner(median, FLOOR, n_warmup_steps=2)) == 2


def test_the_chance_floor_is_the_macro_f1_of_always_answering_the_majority_class() -> None:
    # F1 of class 0 when always predicted: 2 * 0.6 / 1.6 = 0.75; classes 1 and 2 score 0.
    assert chance_macro_f1([0, 0, 0, 1, 2]) == pytest.approx(0.25)
    assert chance_macro_f1([2, 2]) == 1.0


SCHEDULE = PruningSchedule(
    min_resource=1, max_resource=12, median_warmup_steps=0, floor_warmup_steps=3,
    n_startup_trials=2,
)


def test_median_is_the_median_rule_behind_the_chance_floor() -> None:
    median = make_pruner("median", SCHEDULE, 0.25)
    assert isinstance(median, ChanceFloorPruner)
    assert isinstance(median.base, optuna.pruners.MedianPruner)
    assert (median.floor, median.n_warmup_steps) == (0.25, 3)
    assert isinstance(make_pruner("none", SCHEDULE, 0.25), optuna.pruners.NopPruner)


def test_hyperband_is_budgeted_for_the_longest_trial() -> None:
    """A budget of 12 reports with eta 3 gives rungs at reports 1, 3 and 9: a worse trial can be
    stopped at report 9, which a budget taken from a 3-report trial (Optuna's "auto" after a
    short first trial) could never do."""
    hyperband = make_pruner("hyperband", SCHEDULE, 0.25)
    assert isinstance(hyperband, optuna.pruners.HyperbandPruner)
    study = optuna.create_study(direction="maximize", pruner=hyperband,
                                sampler=optuna.samplers.RandomSampler(0))
    pruned_at = []
    for number in range(30):
        trial = study.ask()
        trial.suggest_float("x", 0, 1)
        for step in range(1, 13):
            trial.report(1 - number / 100 + step / 1000, step)
            if trial.should_prune():
                pruned_at.append(step)
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                break
        else:
            study.tell(trial, 1 - number / 100)
    # rungs of a 12-report budget with eta 3: reports 1, 3 and 9
    assert set(pruned_at) <= {1, 3, 9} and 9 in pruned_at
