"""A stage run as DVC runs it (`python -m`) while MLflow cannot be used: one line, no traceback,
a non-zero exit within seconds (it took about 250 s of retries and five tracebacks)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from mlflow_server import free_port
from sentiment_pipeline.paths import ProjectPaths

pytestmark = pytest.mark.slow  # a stage process per test; tracking's probes: test_tracking.py

STAGE = [sys.executable, "-m", "sentiment_pipeline.models.train_baseline"]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (into the backlog) and never answers."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        yield silent.getsockname()[1]


def run_stage(project: ProjectPaths, uri: str) -> tuple[subprocess.CompletedProcess, float]:
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    env.pop("SENTIMENT_PIPELINE_MLFLOW_TRACKING_URI", None)
    started = time.monotonic()
    done = subprocess.run(STAGE, cwd=project.root, env=env, capture_output=True, text=True,
                          timeout=120)
    return done, time.monotonic() - started


def failure_line(done: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in done.stderr, done.stderr
    (line,) = [line for line in done.stderr.splitlines() if "ERROR" in line]
    return line


def test_a_closed_port_fails_the_stage_in_seconds_naming_the_uri(processed) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    done, elapsed = run_stage(processed, uri)

    assert done.returncode == 1
    assert re.search(rf"train_baseline failed: the MLflow server {uri} cannot be reached "
                     r"\(ConnectionRefusedError: \[Errno 111\] Connection refused\)$",
                     failure_line(done))
    assert elapsed < 60  # the interpreter, imports and training; the probe itself is instant
    assert not processed.baseline_metrics.exists()


def test_a_server_that_never_answers_fails_the_stage_after_the_probe(
    processed, silent_port
) -> None:
    uri = f"http://127.0.0.1:{silent_port}"
    done, elapsed = run_stage(processed, uri)

    assert done.returncode == 1
    assert failure_line(done).endswith(
        f"train_baseline failed: the MLflow server {uri} did not answer within 5 s"
    )
    assert elapsed < 65


def test_an_unknown_scheme_is_a_configuration_error(processed) -> None:
    uri = "htp://x"
    done, _ = run_stage(processed, uri)

    assert done.returncode == 2
    line = failure_line(done)
    assert f"train_baseline failed: MLFLOW_TRACKING_URI={uri!r} has a scheme" in line
    assert "MLflow accepts sqlite:///path/to/mlruns.db" in line
