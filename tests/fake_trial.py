"""Stand-ins for optuna.Trial and for the tuning core's reporter, that record and obey."""

from __future__ import annotations


class FakeTrial:
    def __init__(self, prune: bool) -> None:
        self.prune = prune
        self.reports: list[tuple[float, int]] = []

    def report(self, value: float, step: int) -> None:
        self.reports.append((value, step))

    def should_prune(self) -> bool:
        return self.prune


class FakeReporter:
    """A TrialReporter that records every report and says `prune` to each."""

    def __init__(self, prune: bool = False) -> None:
        self.prune = prune
        self.reports: list[tuple[int, float]] = []
        self.progress: list[tuple[int, int]] = []

    def report(self, step: int, value: float, metrics=None) -> bool:  # noqa: ANN001
        self.reports.append((step, value))
        return self.prune

    def advance(self, done: int, total: int, samples: int | None = None) -> None:
        self.progress.append((done, total))
