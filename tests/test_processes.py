"""Waiting on what may not come back: a process that may be gone, a call that may hang."""

from __future__ import annotations

import os
import subprocess
import threading
import time

import pytest

from sentiment_pipeline.processes import TimedOut, alive, call_within


def test_a_running_process_is_alive_and_a_finished_one_is_not():
    finished = subprocess.Popen(["true"])
    finished.wait()

    assert alive(os.getpid())
    assert not alive(finished.pid)
    assert not alive(0) and not alive(-1)  # process groups, not processes


def test_another_users_process_counts_as_alive(monkeypatch):
    def kill(pid: int, signal: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "kill", kill)
    assert alive(12345)


def test_a_call_within_its_limit_returns_its_value_or_raises_its_error():
    assert call_within(lambda: 42, 5, "answer") == 42
    with pytest.raises(KeyError, match="missing"):
        call_within(lambda: {}["missing"], 5, "lookup")


def test_a_call_past_its_limit_is_given_up_and_left_running():
    release = threading.Event()
    started = time.monotonic()

    with pytest.raises(TimedOut, match=r"^hang did not return within 0\.2 s$"):
        call_within(release.wait, 0.2, "hang")

    assert time.monotonic() - started < 5
    (hung,) = [t for t in threading.enumerate() if t.name == "hang"]
    assert hung.daemon and hung.is_alive()
    release.set()
    hung.join(5)
    assert not hung.is_alive()
