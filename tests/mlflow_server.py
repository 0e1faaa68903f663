"""Start and stop a real `mlflow server` on 127.0.0.1 for the tests that need one."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    # The server runs its workers as children; they share the session started for it.
    # A graceful shutdown waits for idle keep-alive connections of the clients, so not for long.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


@contextlib.contextmanager
def mlflow_server(directory: Path, startup_timeout: float = 90.0) -> Iterator[str]:
    """Run `mlflow server` with a SQLite backend and an artifact folder under `directory`;
    yield its URL once /health answers, and stop it on exit."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = directory / "server.log"
    cmd = [
        sys.executable, "-m", "mlflow", "server",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--workers", "1",
        "--backend-store-uri", f"sqlite:///{directory / 'server.db'}",
        "--artifacts-destination", str(directory / "artifacts"),
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            cmd, cwd=directory, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + startup_timeout
        while not _healthy(url):
            if process.poll() is not None:
                raise RuntimeError(
                    f"mlflow server exited with code {process.returncode}:\n{log.read_text()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"mlflow server not healthy after {startup_timeout:.0f} s:\n{log.read_text()}"
                )
            time.sleep(0.3)
        yield url
    finally:
        _stop(process)
