"""run_server and its worker factory; one real `sentiment-pipeline serve` process on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sentiment_pipeline import machine
from sentiment_pipeline.config.serve import ServeConfig
from sentiment_pipeline.errors import PipelineError
from sentiment_pipeline.models.artifacts.manifest import ModelManifest
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.registry.resolve import Folder, ResolvedModel
from sentiment_pipeline.serving import server
from sentiment_pipeline.serving.metrics import MULTIPROC_ENV
from serving_fakes import LABELS, resolved_folder
from tiny_sklearn import save_tiny_model

BIN = Path(sys.executable).parent
HOST = "127.0.0.1"


def test_the_launch_spec_carries_the_resolved_model_to_the_workers(tmp_path: Path) -> None:
    int8 = ModelManifest(name="distilbert", kind="onnx", precision="int8", labels=LABELS)
    resolved = ResolvedModel(
        path=tmp_path / "m", name="sentiment", source="models:/sentiment@champion", version="3",
        manifest=ModelManifest(name="distilbert", kind="transformers", labels=LABELS),
        alias="champion", variants={"onnx-int8": Folder(path=tmp_path / "q", manifest=int8)},
        trusted=True,
    )
    launch = server.Launch.of(resolved, ServeConfig(max_wait_ms=0), model_name="sentiment",
                              paths=ProjectPaths.at(tmp_path), threads=2, trust=False)

    again = server.Launch.model_validate_json(launch.model_dump_json())

    assert again.resolved == resolved  # the manifests too: a worker reads no model.json
    assert again.serve.max_wait_ms == 0 and again.threads == 2 and again.trust is False
    provider = again.provider()
    assert (provider.threads, provider.backend, provider.reloadable()) == (2, "auto", True)


def test_workers_share_the_cores_unless_threads_is_set() -> None:
    assert server.worker_threads(ServeConfig(), 1, cores=16) == 16
    assert server.worker_threads(ServeConfig(), 4, cores=16) == 4
    assert server.worker_threads(ServeConfig(), 32, cores=16) == 1
    assert server.worker_threads(ServeConfig(threads=3), 4, cores=16) == 3


def test_a_2_cpu_container_on_a_64_core_host_gets_2_threads(tmp_path, monkeypatch) -> None:
    # A container's --cpus=2 is a cgroup v2 quota of 200 ms per 100 ms; the host shows 64 cores.
    (tmp_path / "cpu.max").write_text("200000 100000\n")
    monkeypatch.setattr(machine, "CGROUP_ROOT", tmp_path)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)

    assert server.worker_threads(ServeConfig(), 1) == 2
    assert server.worker_threads(ServeConfig(), 2) == 1


def test_the_launch_environment_is_set_for_the_run_and_cleaned_after(tmp_path, monkeypatch):
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    monkeypatch.delenv(server.LAUNCH_ENV, raising=False)
    resolved = ResolvedModel(path=tmp_path, name="m", source=str(tmp_path),
                             manifest=ModelManifest(name="m", kind="sklearn", labels=LABELS))
    launch = server.Launch.of(resolved, ServeConfig(), model_name="m",
                              paths=ProjectPaths.at(tmp_path), threads=1)

    with server.launch_environment(launch, workers=2):
        metrics_dir = Path(os.environ[MULTIPROC_ENV])
        assert metrics_dir.is_dir()
        assert server.Launch.model_validate_json(os.environ[server.LAUNCH_ENV]) == launch
    with server.launch_environment(launch, workers=1):
        assert MULTIPROC_ENV not in os.environ

    assert not metrics_dir.exists()
    assert server.LAUNCH_ENV not in os.environ and MULTIPROC_ENV not in os.environ


def test_the_worker_factory_builds_the_app_from_the_environment(tmp_path, monkeypatch):
    folder = tmp_path / "baseline"
    save_tiny_model(folder)
    resolved = resolved_folder(folder, name="baseline", trusted=True)
    launch = server.Launch.of(resolved, ServeConfig(max_wait_ms=0), model_name="m",
                              paths=ProjectPaths.at(tmp_path), threads=1)
    monkeypatch.setenv(server.LAUNCH_ENV, launch.model_dump_json())

    with TestClient(server.app_from_environment()) as client:
        assert client.post("/predict", json={"inputs": "great"}).status_code == 200
        assert client.get("/info").json()["model_path"] == str(folder)

    monkeypatch.delenv(server.LAUNCH_ENV)
    with pytest.raises(PipelineError, match="sentiment-pipeline serve"):
        server.app_from_environment()


def test_a_backend_the_model_lacks_fails_before_any_worker_starts(project, manager) -> None:
    save_tiny_model(project.models_dir / "tiny")
    config = manager(project, "serve.backend=onnx").config
    (project.models_dir / "tiny" / "model.json").write_text(json.dumps({
        **json.loads((project.models_dir / "tiny" / "model.json").read_text()),
        "kind": "transformers",
    }))

    with pytest.raises(PipelineError, match="has no onnx model"):
        server.run_server(config, project, model=str(project.models_dir / "tiny"), host=None,
                          port=None, workers=1)


# --- a real server --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def call(port: int, path: str, payload: object | None = None, timeout: float = 30) -> tuple:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(f"http://{HOST}:{port}{path}", data=data,
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status, response.read().decode()


def wait_ready(port: int, process: subprocess.Popen, log: Path, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{log.read_text()}")
        with contextlib.suppress(OSError):
            if call(port, "/health", timeout=2)[0] == 200:
                return
        time.sleep(0.2)
    pytest.fail(f"the server was not ready after {timeout_s} s:\n{log.read_text()}")


def metric(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name))


@pytest.mark.parametrize("workers", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_a_real_server_batches_and_shuts_down_gracefully(project, workers) -> None:
    model_dir = project.models_dir / "tiny"
    save_tiny_model(model_dir)
    port = free_port()
    log = project.root / "server.log"
    cmd = [str(BIN / "sentiment-pipeline"), "serve", "--model", str(model_dir), "--host", HOST,
           "--port", str(port), "--workers", str(workers), "--set", "serve.max_batch_requests=8",
           "--set", "serve.max_wait_ms=1000", "--set", "serve.reload_interval_s=0"]
    with open(log, "w") as out:
        process = subprocess.Popen(cmd, cwd=project.root, stdout=out, stderr=subprocess.STDOUT,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        wait_ready(port, process, log)
        texts = [f"flight {i} was great" for i in range(16)]
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda t: call(port, "/predict", {"inputs": t}), texts))
        assert [status for status, _ in answers] == [200] * 16
        metrics = call(port, "/metrics")[1]  # with 2 workers: summed over both
        assert metric(metrics, 'te_request_count_total{route="/predict",status="200"}') == 16
        assert 1 <= metric(metrics, "te_model_calls_total") < 16

        # A lone request waits up to max_wait_ms (1 s) for company: SIGTERM arrives meanwhile.
        result: dict[str, object] = {}
        slow = threading.Thread(target=lambda: result.update(
            answer=call(port, "/predict", {"inputs": [["still served"], ["after SIGTERM"]]})))
        slow.start()
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        slow.join(30)
        assert result["answer"][0] == 200 and len(json.loads(result["answer"][1])) == 2
        assert process.wait(30) == 0, log.read_text()
        with pytest.raises(OSError):
            call(port, "/health", timeout=2)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
