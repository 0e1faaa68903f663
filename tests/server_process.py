"""A real `sentiment-pipeline serve` process on 127.0.0.1: start it, call it, stop it."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlflow_server import free_port

BIN = Path(sys.executable).parent
HOST = "127.0.0.1"


def call(port: int, path: str, payload: object | None = None, timeout: float = 30,
         token: str | None = None) -> tuple:
    """(status, body text) of a GET, or of a POST of `payload` as JSON (with `token`)."""
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(f"http://{HOST}:{port}{path}", data=data,
                                     headers={"content-type": "application/json",
                                              **authorization(token)})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status, response.read().decode()


@dataclass
class Served:
    process: subprocess.Popen
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def wait_ready(self, timeout_s: float = 90) -> None:
        """Until GET /health answers 200; fail at once if the server exits."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check_running()
            with contextlib.suppress(OSError):
                if call(self.port, "/health", timeout=2)[0] == 200:
                    return
            time.sleep(0.2)
        pytest.fail(f"the server was not ready after {timeout_s} s:\n{self.log.read_text()}")

    def wait_logged(self, text: str, timeout_s: float = 30) -> None:
        """Until the server's output holds `text` (an event of its own, e.g. uvicorn's)."""
        deadline = time.monotonic() + timeout_s
        while text not in self.log.read_text():
            assert time.monotonic() < deadline, f"no {text!r} in:\n{self.log.read_text()}"
            time.sleep(0.05)

    def check_running(self) -> None:
        if self.process.poll() is not None:
            pytest.fail(f"the server exited with {self.process.returncode}:\n"
                        f"{self.log.read_text()}")


@contextlib.contextmanager
def serving(args: list[str], *, cwd: Path, log: Path | None = None,
            env: dict[str, str] | None = None) -> Iterator[Served]:
    """`sentiment-pipeline serve *args` on a free port of 127.0.0.1 in `cwd`, ready; its output
    goes to `log` (default: serve-<port>.log in `cwd`). Stopped (SIGTERM, then SIGKILL) on the
    way out unless the test stopped it."""
    port = free_port()
    log = log or cwd / f"serve-{port}.log"
    cmd = [str(BIN / "sentiment-pipeline"), "serve", *args, "--host", HOST, "--port", str(port)]
    with open(log, "w") as out:
        process = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                   env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"})
    try:
        served = Served(process, port, log)
        served.wait_ready()
        yield served
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def authorization(token: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"} if token else {}


def begin_post(port: int, path: str, length: int, token: str | None = None,
               content_type: str = "application/json") -> socket.socket:
    """A POST whose body is not sent yet: returns once the server has asked for it (100
    Continue), i.e. the request is in flight and its body is being read."""
    sock = socket.create_connection((HOST, port), timeout=30)
    auth = "".join(f"{key}: {value}\r\n" for key, value in authorization(token).items())
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: {content_type}\r\n"
        f"{auth}Content-Length: {length}\r\nExpect: 100-continue\r\nConnection: close\r\n"
        "\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1024)
        assert chunk, f"the server closed the connection; it sent {head!r}"
        head += chunk
    assert head.startswith(b"HTTP/1.1 100"), head
    return sock


def finish_post(sock: socket.socket, body: bytes) -> tuple[int, str]:
    """Send the body of a `begin_post` request; (status, body text) of its answer."""
    with sock:
        sock.sendall(body)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, response.read().decode()


@contextlib.contextmanager
def running_app(app) -> Iterator[str]:
    """`app` under uvicorn in a thread of this process on a free port of 127.0.0.1 until the
    block ends; yields its URL (the browser tests' service, whose state a test may change)."""
    import threading

    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    runner = threading.Thread(target=server.run, daemon=True)
    runner.start()
    for _ in range(200):
        if server.started or not runner.is_alive():
            break
        threading.Event().wait(0.05)
    assert server.started, "the service did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        runner.join(timeout=10)
