"""What this program waits on: whether a process still runs, a call given a time limit."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class TimedOut(TimeoutError):
    """A call did not return within its time limit; its thread is left to end on its own."""


def alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (another user's counts)."""
    if pid <= 0:  # 0 and negative ids name process groups, not a process
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: another user's process
        return True
    return True


def call_within(call: Callable[[], T], timeout_s: float, name: str) -> T:
    """call()'s value, or its exception raised here; TimedOut after `timeout_s`.

    The call runs in a daemon thread called `name`, so one that ignores its own timeouts (a
    slow name lookup, a server that accepts and says nothing) cannot hold the caller.
    """
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise TimedOut(f"{name} did not return within {timeout_s:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
