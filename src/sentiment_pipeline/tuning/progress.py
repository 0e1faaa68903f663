"""What a person sees while a study runs: trials done / owed, best so far, time left, and within
a trial its steps and speed. Bars on a terminal; otherwise a log line every `every_s` seconds."""

from __future__ import annotations

import heapq
import logging
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
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


# The typical trial is the median of the latest finished ones: the first trials of a study run
# whole, later ones are pruned early once the pruner has a median to stop them against.
RECENT_TRIALS = 5


@dataclass
class RunningTrial:
    """A trial in progress: when it started and the share of its steps done."""

    start: float
    fraction: float = 0.0


class StudyProgress:
    """Progress of one run of a study (the trials it owes), for people and for CI logs."""

    def __init__(
        self,
        label: str,
        owed: int,
        *,
        interactive: bool | None = None,
        every_s: float = 30.0,
        parallel: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.owed = owed
        self.every_s = every_s
        self.parallel = max(1, parallel)
        self.clock = clock
        self.interactive = sys.stderr.isatty() if interactive is None else interactive
        self.finished = 0
        self.durations: list[float] = []  # of finished (complete or pruned) trials, in order
        self.best: float | None = None
        self.running: dict[int, RunningTrial] = {}
        self.last_line = self.clock()
        self._bar: Any = None
        self._steps: Any = None
        if self.interactive:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=owed, desc=f"{label} trials", unit="trial")

    # --- estimates ------------------------------------------------------------------------

    def typical_trial(self) -> float | None:
        """Seconds a trial takes: the median of the latest finished ones, else the running
        trials' pace (elapsed / share of steps done); None before either is known."""
        if self.durations:
            return statistics.median(self.durations[-RECENT_TRIALS:])
        now = self.clock()
        running = list(self.running.values())  # a copy: parallel trials' threads change it
        paces = [(now - r.start) / r.fraction for r in running if r.fraction > 0]
        return max(paces) if paces else None

    def trial_left(self, trial: RunningTrial, typical: float) -> float:
        """Seconds a running trial still needs: the typical trial's rest, and once it has run
        longer than that its own pace (0 when that is unknown too)."""
        elapsed = self.clock() - trial.start
        if elapsed < typical:
            return typical - elapsed
        if trial.fraction > 0:
            return elapsed * (1 - trial.fraction) / trial.fraction
        return 0.0

    def seconds_left(self) -> float | None:
        """Time until the owed trials are done: the running trials' rest, then the trials not
        started yet at the typical time each, on `parallel` slots; None while unknown."""
        typical = self.typical_trial()
        if typical is None:
            return None
        running = list(self.running.values())
        slots = [self.trial_left(r, typical) for r in running]
        slots += [0.0] * max(0, self.parallel - len(slots))
        heapq.heapify(slots)
        for _ in range(max(0, self.owed - self.finished - len(running))):
            heapq.heapreplace(slots, slots[0] + typical)
        return max(slots)

    def summary(self) -> str:
        best = "-" if self.best is None else f"{self.best:.4f}"
        left = self.seconds_left()
        if left is None:
            eta = "time left unknown"
        elif left < 0.5 and self.running:  # past the typical time: no figure to give
            eta = "finishing"
        else:
            eta = f"about {format_duration(left)} left"
        return f"{self.finished}/{self.owed} trials done, best {best}, {eta}"

    # --- events ---------------------------------------------------------------------------

    def start_trial(self, number: int) -> None:
        self.running[number] = RunningTrial(start=self.clock())
        self.last_line = self.clock()
        if self.interactive:
            from tqdm.auto import tqdm

            if self._steps is not None:
                self._steps.close()
            self._steps = tqdm(desc=f"trial {number}", unit="step", leave=False)

    def advance(
        self, done: int, total: int, samples: int | None = None, *, trial: int | None = None
    ) -> None:
        """`done` of `total` steps of `trial` (default: the trial started last)."""
        number = trial if trial is not None else next(reversed(self.running), None)
        running = self.running.get(number) if number is not None else None
        if running is None:
            return
        running.fraction = done / total if total else 0.0
        elapsed = max(self.clock() - running.start, 1e-9)
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
            self.label, number, done, total, speed, self.summary(),
        )

    def finish_trial(
        self, number: int, state: str, value: float | None, best: float | None
    ) -> None:
        running = self.running.pop(number, None)
        duration = self.clock() - running.start if running is not None else 0.0
        if state in ("complete", "pruned"):  # a failed trial is owed again, and says little
            self.finished += 1
            if running is not None:
                self.durations.append(duration)
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
