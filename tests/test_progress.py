"""What a person sees while a study runs: trials done / owed, best so far, time left."""

from __future__ import annotations

import logging

from sentiment_pipeline.tuning.progress import StudyProgress, format_duration


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_durations_read_like_a_person_would_say_them() -> None:
    assert format_duration(42.4) == "42 s"
    assert format_duration(125) == "2 min 05 s"
    assert format_duration(3 * 3600 + 61) == "3 h 01 min"


def test_without_a_terminal_a_line_every_interval_and_one_per_trial(caplog) -> None:
    caplog.set_level(logging.INFO, logger="sentiment_pipeline.tuning.progress")
    clock = Clock()
    progress = StudyProgress("distilbert", owed=3, interactive=False, every_s=30, clock=clock)
    progress.start_trial(0)
    for step in range(1, 101):
        clock.now = step  # one step a second, 100 steps
        progress.advance(step, 100, samples=step * 32)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3  # at 30, 60 and 90 s, not at every step
    assert lines[0].startswith("distilbert trial 0: step 30/100, 32.0 samples/s")
    # 30 of 100 steps took 30 s: trials of 100 s, 3 of them, 30 s already spent
    assert lines[0].endswith("0/3 trials done, best -, about 4 min 30 s left")

    progress.finish_trial(0, "complete", 0.61, 0.61)
    assert caplog.records[-1].getMessage() == (
        "distilbert trial 0 complete (val macro-F1 0.6100, 1 min 40 s); "
        "1/3 trials done, best 0.6100, about 3 min 20 s left"
    )
    progress.start_trial(1)
    clock.now += 10
    progress.finish_trial(1, "failed", None, 0.61)  # a failed trial is owed again
    assert "1/3 trials done" in caplog.records[-1].getMessage()
    progress.close()


def test_on_a_terminal_it_draws_bars_instead_of_log_lines(caplog, capsys) -> None:
    caplog.set_level(logging.INFO, logger="sentiment_pipeline.tuning.progress")
    clock = Clock()
    progress = StudyProgress("lightgbm", owed=2, interactive=True, every_s=0, clock=clock)
    progress.start_trial(0)
    clock.now = 5
    progress.advance(50, 100)
    assert not caplog.records  # the bar shows the steps
    progress.finish_trial(0, "pruned", 0.4, None)
    progress.close()
    assert "lightgbm trials" in capsys.readouterr().err


def run_trial(progress: StudyProgress, clock: Clock, number: int, seconds: float,
              state: str = "complete") -> None:
    progress.start_trial(number)
    clock.now += seconds
    progress.finish_trial(number, state, 0.5, 0.5)


def test_time_left_follows_the_recent_trials_not_the_slow_first_ones() -> None:
    # Finding 7 of issue 17 ("about 7 min left" with 2 minutes to go): the first trials run
    # whole, later ones are pruned early; a mean over all of them overestimates what is left.
    clock = Clock()
    progress = StudyProgress("lightgbm", owed=20, interactive=False, clock=clock)
    for number in range(5):
        run_trial(progress, clock, number, 90)
    for number in range(5, 12):
        run_trial(progress, clock, number, 15, "pruned")
    # 8 trials to go at the 15 s the recent ones take (the mean, 46 s, said 6 min 10 s)
    assert progress.summary() == "12/20 trials done, best 0.5000, about 2 min 00 s left"
    progress.start_trial(12)
    clock.now += 5  # 10 s more for this one, then 7 trials
    assert progress.summary().endswith("about 1 min 55 s left")


def test_a_trial_running_past_the_usual_time_is_finishing_never_0_s_left() -> None:
    # Finding 7 of issue 17: "about 0 s left" for 45 s while the last trial ran on.
    clock = Clock()
    progress = StudyProgress("lightgbm", owed=2, interactive=False, clock=clock)
    run_trial(progress, clock, 0, 60)
    progress.start_trial(1)
    clock.now += 30
    assert progress.summary().endswith("about 30 s left")
    clock.now += 45  # 15 s past the 60 s trial 0 took
    assert progress.summary().endswith("1/2 trials done, best 0.5000, finishing")
    progress.advance(80, 100)  # its own pace, once it reports steps: 75 s for 80 %
    assert progress.summary().endswith("about 19 s left")
    progress.advance(100, 100)
    assert progress.summary().endswith("finishing")


def test_parallel_trials_are_timed_each_from_its_own_start(caplog) -> None:
    caplog.set_level(logging.INFO, logger="sentiment_pipeline.tuning.progress")
    clock = Clock()
    progress = StudyProgress("lightgbm", owed=4, interactive=False, parallel=2, clock=clock)
    progress.start_trial(0)
    clock.now = 10
    progress.start_trial(1)
    clock.now = 60
    progress.finish_trial(0, "complete", 0.6, 0.6)
    # trial 0 took 60 s (not the 50 s since trial 1 began); trial 1 has 10 s to go, trial 2
    # starts now on the free slot, trial 3 after trial 1: done at 70 s from now
    assert caplog.records[-1].getMessage() == (
        "lightgbm trial 0 complete (val macro-F1 0.6000, 1 min 00 s); "
        "1/4 trials done, best 0.6000, about 1 min 10 s left"
    )
    progress.advance(10, 100, trial=1)
    progress.start_trial(2)
    progress.advance(50, 100, trial=2)
    assert progress.running[1].fraction == 0.1 and progress.running[2].fraction == 0.5
    progress.close()


def test_before_any_trial_or_step_the_time_left_is_unknown() -> None:
    progress = StudyProgress("lightgbm", owed=3, interactive=False, clock=Clock())
    assert progress.seconds_left() is None
    assert progress.summary() == "0/3 trials done, best -, time left unknown"
