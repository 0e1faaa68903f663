"""What a person sees while a study runs: trials done / owed, best so far, time left, and within
a trial its steps and speed. Bars on a terminal; otherwise a log line every `every_s` seconds."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


class StudyProgress:
    """Progress of one run of a study (the trials it owes), for people and for CI logs."""

    def __init__(
        self,
        label: str,
        owed: int,
        *,
        interactive: bool | None = None,
        every_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.owed = owed
        self.every_s = every_s
        self.clock = clock
        self.interactive = sys.stderr.isatty() if interactive is None else interactive
        self.finished = 0
        self.durations: list[float] = []
        self.best: float | None = None
        self.trial_number: int | None = None
        self.trial_start = self.clock()
        self.last_line = self.clock()
        self.fraction = 0.0
        self._bar: Any = None
        self._steps: Any = None
        if self.interactive:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=owed, desc=f"{label} trials", unit="trial")

    # --- estimates ------------------------------------------------------------------------

    def seconds_left(self) -> float | None:
        """Time left for the owed trials: mean trial time so far times the trials to go."""
        elapsed = self.clock() - self.trial_start
        if self.durations:
            mean = sum(self.durations) / len(self.durations)
        elif self.fraction > 0:
            mean = elapsed / self.fraction
        else:
            return None
        to_go = max(0, self.owed - self.finished)
        in_trial = elapsed if self.trial_number is not None else 0.0
        return max(0.0, mean * to_go - in_trial)

    def summary(self) -> str:
        best = "-" if self.best is None else f"{self.best:.4f}"
        left = self.seconds_left()
        eta = "unknown" if left is None else format_duration(left)
        return f"{self.finished}/{self.owed} trials done, best {best}, about {eta} left"

    # --- events ---------------------------------------------------------------------------

    def start_trial(self, number: int) -> None:
        self.trial_number = number
        self.trial_start = self.last_line = self.clock()
        self.fraction = 0.0
        if self.interactive:
            from tqdm.auto import tqdm

            self._steps = tqdm(desc=f"trial {number}", unit="step", leave=False)

    def advance(self, done: int, total: int, samples: int | None = None) -> None:
        self.fraction = done / total if total else 0.0
        elapsed = max(self.clock() - self.trial_start, 1e-9)
        if self._steps is not None:
            self._steps.total = total
            self._steps.n = done
            rate = {"samples/s": f"{samples / elapsed:.1f}"} if samples else {}
            self._steps.set_postfix(rate, refresh=False)
            self._steps.refresh()
            return
        if self.clock() - self.last_line < self.every_s:
            return
        self.last_line = self.clock()
        speed = f"{samples / elapsed:.1f} samples/s" if samples else f"{done / elapsed:.1f} steps/s"
        logger.info(
            "%s trial %s: step %d/%d, %s; %s",
            self.label, self.trial_number, done, total, speed, self.summary(),
        )

    def finish_trial(
        self, number: int, state: str, value: float | None, best: float | None
    ) -> None:
        duration = self.clock() - self.trial_start
        self.trial_number = None
        self.durations.append(duration)
        if state in ("complete", "pruned"):
            self.finished += 1
        self.best = best
        if self._steps is not None:
            self._steps.close()
            self._steps = None
        if self._bar is not None:
            self._bar.n = self.finished
            self._bar.set_postfix_str(self.summary(), refresh=True)
        shown = "-" if value is None else f"{value:.4f}"
        logger.info(
            "%s trial %d %s (val macro-F1 %s, %s); %s",
            self.label, number, state, shown, format_duration(duration), self.summary(),
        )

    def close(self) -> None:
        for bar in (self._steps, self._bar):
            if bar is not None:
                bar.close()
        self._steps = self._bar = None
