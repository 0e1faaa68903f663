"""bench_container's arms: one model served in a container, bare, or chrooted into the image."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import REPO, stop_group

# The container helpers of the tests: podman as this machine runs it, the base, the builds.
sys.path.insert(0, str(REPO / "tests"))
from container_stats import (  # noqa: E402
    BIN,
    BYTECODE,
    HOST,
)
from mlflow_server import free_port  # noqa: E402
from podman import (  # noqa: E402
    Podman,  # noqa: E402
)
from test_container_serve import READ_ONLY  # noqa: E402

# --- images -----------------------------------------------------------------------------------


def until_healthy(port: int, alive: Callable[[], bool], why: Callable[[], str],
                  timeout_s: float = 120.0) -> None:
    """Poll GET /health every 50 ms until it answers 200 (both arms poll alike)."""
    deadline = time.monotonic() + timeout_s
    checked = time.monotonic()
    while time.monotonic() < deadline:
        with contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError):
            with urllib.request.urlopen(f"http://{HOST}:{port}/health", timeout=2) as response:
                if response.status == 200:
                    return
        if time.monotonic() - checked > 1.0:  # a liveness check costs a podman call
            checked = time.monotonic()
            if not alive():
                raise SystemExit(f"the server on port {port} exited before it was healthy:\n"
                                 f"{why()[-3000:]}")
        time.sleep(0.05)
    raise SystemExit(f"port {port} not healthy after {timeout_s:.0f} s:\n{why()[-3000:]}")


@dataclass
class Served:
    """A server that answered /health: where it listens, its host PID, how long it took."""

    label: str
    name: str  # the container's, or the bare server's log file
    port: int
    pid: int
    started_s: float  # the start command returned (for the container: `podman run -d`)
    healthy_s: float
    runtime_pid: int | None = None  # the container's conmon (its output, its exit)

    def info(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://{HOST}:{self.port}/info", timeout=10) as response:
            return json.loads(response.read())


@dataclass(frozen=True)
class Arms:
    """What the arms serve from: the image, the model folders, the one params.yaml (its folder
    is the bare server's working folder), the inference threads."""

    session: Podman
    image: str
    bytecode_image: str  # the image with its modules byte-compiled (start times only)
    models: Path  # holds int8/ and baseline/
    params: Path
    threads: int
    root: Path  # the image's files, mounted read-write from a created container

    def serve_args(self, model: str) -> list[str]:
        return ["serve", "--model", model, "--workers", "1",
                "--set", f"serve.threads={self.threads}", "--set", "serve.reload_interval_s=0"]

    def start(self, arm: str, name: str):
        if arm == BYTECODE:
            return self.container(name, self.bytecode_image, label=BYTECODE)
        return {"container": self.container, "bare": self.bare, "image-chroot": self.chroot}[
            arm](name)

    @contextlib.contextmanager
    def container(self, name: str, image: str | None = None, label: str = "container",
                  options: tuple[str, ...] = ()) -> Iterator[Served]:
        """`podman run -d --read-only --tmpfs /tmp`, the models and params.yaml mounted."""
        begin = time.monotonic()
        container = self.session.start(
            image or self.image, *self.serve_args(f"/models/{name}"), "--host", "0.0.0.0",
            options=(*READ_ONLY, "-v", f"{self.models}:/models:ro",
                     "-v", f"{self.params}:/srv/params.yaml:ro", *options))
        started = time.monotonic() - begin
        try:
            until_healthy(container.port, container.running, container.logs)
            healthy = time.monotonic() - begin
            state = self.session("inspect", "--format", "{{.State.Pid}} {{.State.ConmonPid}}",
                                 container.name)
            pid, conmon = (int(value) for value in state.stdout.split())
            yield Served(label, container.name, container.port, pid, started, healthy, conmon)
        finally:
            self.session("rm", "-f", "-t", "5", container.name, check=False)

    @contextlib.contextmanager
    def bare(self, name: str) -> Iterator[Served]:
        """`sentiment-pipeline serve` from this environment on this checkout's src/, the model
        trusted as in the image."""
        port, folder = free_port(), self.params.parent
        env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1",
               "SENTIMENT_PIPELINE_TRUST_ARTIFACTS": "true", "PYTHONDONTWRITEBYTECODE": "1"}
        log_path = folder / f"bare-{name}-{port}.log"
        begin = time.monotonic()
        with log_path.open("w") as log:
            process = subprocess.Popen(
                [str(BIN / "sentiment-pipeline"), *self.serve_args(str(self.models / name)),
                 "--host", HOST, "--port", str(port)],
                cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        yield from until_served("bare", process, port, log_path, begin)

    @contextlib.contextmanager
    def chroot(self, name: str) -> Iterator[Served]:
        """The image's own files (interpreter, packages, environment, user 10001) run without
        a container: chroot in a private mount namespace with the models and params.yaml
        bound as in the container, a tmpfs at /tmp, on the host's network."""
        port, folder = free_port(), self.params.parent
        environment = json.loads(self.session("image", "inspect", "--format",
                                              "{{json .Config.Env}}", self.image).stdout)
        root = self.root
        script = " && ".join([
            f"mount --bind {self.models} {root}/models",
            f"mount -o remount,bind,ro {root}/models",
            f"mount --bind {self.params} {root}/srv/params.yaml",
            f"mount -t proc proc {root}/proc",
            f"mount --rbind /sys {root}/sys",
            f"mount --rbind /dev {root}/dev",
            f"mount -t tmpfs tmpfs {root}/tmp",
            f"exec chroot --userspec=10001:10001 {root} /usr/bin/env -i -C /srv "
            + " ".join(environment) + " sentiment-pipeline "
            + " ".join(self.serve_args(f"/models/{name}"))
            + f" --host {HOST} --port {port}",
        ])
        log_path = folder / f"chroot-{name}-{port}.log"
        begin = time.monotonic()
        with log_path.open("w") as log:
            # unshare, sh and chroot each exec the next: the PID is the server's
            process = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        yield from until_served("image-chroot", process, port, log_path, begin)


def until_served(kind: str, process: subprocess.Popen, port: int, log_path: Path,
                 begin: float) -> Iterator[Served]:
    """A server process just started (at `begin`) as `kind`: Served once healthy, stopped after."""
    started = time.monotonic() - begin
    try:
        until_healthy(port, lambda: process.poll() is None, log_path.read_text)
        yield Served(kind, log_path.name, port, process.pid, started, time.monotonic() - begin)
    finally:
        stop_group(process)


@contextlib.contextmanager
def image_root(session: Podman, image: str) -> Iterator[Path]:
    """The image's root file system, writable (a created, never started container's), with
    the mount points the chroot arm binds onto."""
    name = f"sp-bench-root-{os.getpid()}"
    session("create", "--name", name, "--entrypoint", "true", image)
    try:
        root = Path(session("mount", name).stdout.strip())
        (root / "srv" / "params.yaml").touch()
        yield root
    finally:
        session("umount", name, check=False)
        session("rm", "-f", name, check=False)
