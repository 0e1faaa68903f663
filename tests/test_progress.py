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
