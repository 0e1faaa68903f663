"""Tests that need a real server or program (PostgreSQL, Chromium, Node.js) from the machine.

On a plain machine such a test skips and says why; CI sets SENTIMENT_PIPELINE_REQUIRE_SERVICES=1
(`.ci/run`, after installing them), which turns every such skip into a failure, so CI always
runs them.
"""

from __future__ import annotations

import os
import shutil

import pytest

REQUIRE_ENV = "SENTIMENT_PIPELINE_REQUIRE_SERVICES"


def required() -> bool:
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0")


def unavailable(reason: str) -> None:
    """Skip with `reason`, or fail when CI requires the services."""
    if required():
        pytest.fail(f"{reason} ({REQUIRE_ENV} is set, so this test must run)", pytrace=False)
    pytest.skip(reason)


def need_program(*candidates: str, what: str) -> str:
    """The first of `candidates` (names on PATH or absolute paths) that exists, else skip/fail."""
    for candidate in candidates:
        found = shutil.which(candidate) or (
            candidate if os.path.isabs(candidate) and os.access(candidate, os.X_OK) else None
        )
        if found:
            return found
    unavailable(f"needs {what} ({' or '.join(candidates)} not found)")
    raise AssertionError("unreachable")  # pragma: no cover - unavailable() raises
