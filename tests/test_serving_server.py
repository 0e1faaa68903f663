"""run_server and its worker factory; one real `sentiment-pipeline serve` process on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import os
import signal
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
from server_process import begin_post, call, finish_post, serving
from serving_fakes import LABELS, resolved_folder
from tiny_sklearn import save_tiny_model


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


def test_sigterm_stops_the_server_normally_and_the_old_handler_comes_back(caplog) -> None:
    before = signal.getsignal(signal.SIGTERM)
    with caplog.at_level(logging.INFO), server.sigterm_exits_cleanly():
        assert signal.getsignal(signal.SIGTERM) is not before
        os.kill(os.getpid(), signal.SIGTERM)  # uvicorn raises it again after its shutdown

    assert "stopped by SIGTERM" in caplog.text
    assert signal.getsignal(signal.SIGTERM) is before


# --- a real server --------------------------------------------------------------------------


def metric(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name))


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_a_real_server_batches_and_shuts_down_gracefully(project, workers) -> None:
    model_dir = project.models_dir / "tiny"
    save_tiny_model(model_dir)
    args = ["--model", str(model_dir), "--workers", str(workers),
            "--set", "serve.max_batch_requests=8", "--set", "serve.max_wait_ms=1000",
            "--set", "serve.reload_interval_s=0"]
    with serving(args, cwd=project.root, log=project.root / "server.log") as served:
        port, process = served.port, served.process
        texts = [f"flight {i} was great" for i in range(16)]
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda t: call(port, "/predict", {"inputs": t}), texts))
        assert [status for status, _ in answers] == [200] * 16
        metrics = call(port, "/metrics")[1]  # with 2 workers: summed over both
        assert metric(metrics, 'te_request_count_total{route="/predict",status="200"}') == 16
        assert 1 <= metric(metrics, "te_model_calls_total") < 16

        # A request in flight when SIGTERM arrives is still served: the server has asked for
        # its body (100 Continue) and is shutting down, waiting for it, when the body is sent.
        body = json.dumps({"inputs": [["still served"], ["after SIGTERM"]]}).encode()
        pending = begin_post(port, "/predict", len(body))
        process.send_signal(signal.SIGTERM)
        served.wait_logged("Waiting for connections to close")
        answer = finish_post(pending, body)
        assert answer[0] == 200 and len(json.loads(answer[1])) == 2
        assert process.wait(30) == 0, served.log.read_text()
        with pytest.raises(OSError):
            call(port, "/health", timeout=2)
