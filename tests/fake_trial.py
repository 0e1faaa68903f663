"""A stand-in for optuna.Trial that records reports and answers should_prune as told."""

from __future__ import annotations


class FakeTrial:
    def __init__(self, prune: bool) -> None:
        self.prune = prune
        self.reports: list[tuple[float, int]] = []

    def report(self, value: float, step: int) -> None:
        self.reports.append((value, step))

    def should_prune(self) -> bool:
        return self.prune
