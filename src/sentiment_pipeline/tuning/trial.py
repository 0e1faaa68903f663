"""What a tuned stage's `fit_one` receives (a reporter) and returns (a TrialResult)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


class TrialFailure(Exception):
    """A failure a trial may legitimately hit (e.g. a numerical failure): the trial fails and the
    study goes on. Any other exception stops the stage with its traceback."""


class TrialReporter(Protocol):
    """How a running trial talks to the tuning core."""

    def report(
        self, step: int, value: float, metrics: Mapping[str, float | None] | None = None
    ) -> bool:
        """Record the validation score after `step` (and more metrics); True: stop, pruned."""
        ...

    def advance(self, done: int, total: int, samples: int | None = None) -> None:
        """Training progress within the trial, in the stage's own steps (and samples seen)."""
        ...


class _NullReporter:
    """A reporter that records nothing and never prunes (a trial run outside a study)."""

    def report(
        self, step: int, value: float, metrics: Mapping[str, float | None] | None = None
    ) -> bool:
        return False

    def advance(self, done: int, total: int, samples: int | None = None) -> None:
        return None


NULL_REPORTER: TrialReporter = _NullReporter()


@dataclass(frozen=True)
class TrialResult:
    """What one fit produced: its final validation score, whether it was pruned, measurements
    (logged to the trial's MLflow run and kept on the Optuna trial) and the model to keep if it
    is the best."""

    value: float
    pruned: bool = False
    metrics: Mapping[str, float | int | None] = field(default_factory=dict)
    model: Any = None
