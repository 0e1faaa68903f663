"""The `serve` image, built from this checkout and run for real with podman.

Models trained here (the tiny baseline, the tiny transformer exported to int8 ONNX) are mounted
read-only at /models; the container runs --read-only with a tmpfs at /tmp.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from podman import Container, Podman, readable, report
from server_process import begin_post, finish_post
from tiny_sklearn import save_tiny_model

pytestmark = pytest.mark.slow

TRAINING_ONLY = ("torch", "transformers", "dvc", "optuna", "lightgbm", "matplotlib", "sqlalchemy",
                 "flask", "alembic")
READ_ONLY = ("--read-only", "--tmpfs", "/tmp")


@pytest.fixture(scope="module")
def models(exported) -> Iterator[Path]:
    """A folder to mount at /models: baseline/, int8/ and transformers_only/ (no ONNX beside)."""
    root = Path(tempfile.mkdtemp(prefix="sp-models-"))
    save_tiny_model(root / "baseline")
    source, _, int8 = exported
    shutil.copytree(int8, root / "int8")
    shutil.copytree(source, root / "transformers_only")
    readable(root)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def mounted(models: Path) -> tuple[str, ...]:
    return ("-v", f"{models}:/models:ro")


def get(url: str) -> tuple[int, str, str]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, response.headers.get("content-type", ""), response.read().decode()


def post(url: str, payload: object) -> tuple[int, object]:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(),
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read())


def serve(podman: Podman, image: str, models: Path, model: str) -> Container:
    return podman.start(image, "serve", "--model", model, "--host", "0.0.0.0",
                        options=(*READ_ONLY, *mounted(models)))


def test_the_image_holds_the_service_and_nothing_to_train_or_build_with(
    containers: Podman, serve_image: str
) -> None:
    config = containers("image", "inspect", serve_image).stdout
    (image,) = json.loads(config)
    settings = image["Config"]
    assert settings["User"] == "app"
    assert settings["Entrypoint"] == ["sentiment-pipeline"]
    assert settings["Cmd"] == ["serve", "--host", "0.0.0.0", "--port", "8000"]
    assert "8000/tcp" in settings["ExposedPorts"]
    assert settings["Healthcheck"]["Test"][0] == "CMD"  # kept: built in docker format

    check = (
        "import importlib.util, shutil, json;"
        f"print(json.dumps([[m for m in {TRAINING_ONLY!r} if importlib.util.find_spec(m)],"
        "[t for t in ('gcc', 'cc', 'make', 'pip', 'pip3', 'curl', 'wget') if shutil.which(t)]]))"
    )
    found = containers("run", "--rm", "--entrypoint", "python3", serve_image, "-c", check)
    libraries, tools = json.loads(found.stdout)
    assert libraries == [] and tools == []
    size_mb = image["Size"] / 1e6
    report(f"serve image {serve_image}: {size_mb:.0f} MB; no {', '.join(TRAINING_ONLY)}; "
           "no compiler, make, pip or curl; user app")


def test_the_baseline_is_served_read_only_healthy_not_as_root_and_stops_on_sigterm(
    containers: Podman, serve_image: str, models: Path
) -> None:
    server = serve(containers, serve_image, models, "/models/baseline")
    seconds = server.wait_healthy()

    status, content_type, body = get(f"{server.url}/health")
    assert status == 200 and content_type.startswith("application/json"), (content_type, body)
    status, answer = post(f"{server.url}/predict", {"inputs": "the flight was delayed again"})
    assert status == 200 and {item["label"] for item in answer} == {"negative", "neutral",
                                                                   "positive"}
    status, answer = post(f"{server.url}/invocations", {"inputs": ["great crew", "lost bag"]})
    assert status == 200 and len(answer["predictions"]) == 2
    status, content_type, page = get(f"{server.url}/")
    assert status == 200 and content_type.startswith("text/html") and "<html" in page.lower()

    assert containers("healthcheck", "run", server.name, check=False).returncode == 0
    assert server.inspect()["State"]["Health"]["Status"] == "healthy"
    assert containers("exec", server.name, "id", "-u").stdout.strip() == "10001"
    assert server.inspect()["HostConfig"]["ReadonlyRootfs"] is True
    assert "no SENTIMENT_PIPELINE_API_TOKEN" in server.logs()  # runs without one, and says so

    # SIGTERM reaches uvicorn (the entry point is PID 1 in exec form): a request whose body is
    # being read is still answered, then the process exits 0.
    body = json.dumps({"inputs": [["still served"], ["after SIGTERM"]]}).encode()
    pending = begin_post(server.port, "/predict", len(body))
    containers("kill", "--signal", "TERM", server.name)
    deadline = time.monotonic() + 30
    while "Waiting for connections to close" not in server.logs():
        assert time.monotonic() < deadline, server.logs()
        time.sleep(0.05)
    status, text = finish_post(pending, body)
    assert status == 200 and len(json.loads(text)) == 2
    assert server.wait_exit() == 0, server.logs()
    report(f"serve baseline: healthy in {seconds:.1f} s; /health, /predict, /invocations, / "
           "answered; health check healthy; uid 10001; read-only root; SIGTERM: the request in "
           "flight answered 200, exit 0")


def test_the_int8_transformer_is_served_without_torch(
    containers: Podman, serve_image: str, models: Path
) -> None:
    server = serve(containers, serve_image, models, "/models/int8")
    seconds = server.wait_healthy()
    status, answer = post(f"{server.url}/predict", {"inputs": ["so good", "so bad"]})
    assert status == 200 and len(answer) == 2
    status, info, _ = get(f"{server.url}/info")
    assert status == 200
    report(f"serve int8 ONNX transformer: healthy in {seconds:.1f} s; /predict answered")


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("/models/nothing", "/models/nothing"),
        ("/models/transformers_only", "export onnx"),
    ],
    ids=["missing", "transformers-without-onnx"],
)
def test_a_model_it_cannot_serve_stops_it_at_start_with_one_line(
    containers: Podman, serve_image: str, models: Path, model: str, expected: str
) -> None:
    started = time.monotonic()
    server = serve(containers, serve_image, models, model)
    code = server.wait_exit()
    seconds = time.monotonic() - started
    lines = [line for line in server.logs().splitlines() if line.strip()]
    assert code != 0
    errors = [line for line in lines if "error" in line.lower()]
    assert len(errors) == 1 and expected in errors[0], lines
    assert "Traceback" not in server.logs()
    report(f"serve {model}: exit {code} after {seconds:.1f} s: {errors[0].strip()}")


def test_the_port_of_the_health_check_comes_from_the_environment(
    containers: Podman, serve_image: str, models: Path
) -> None:
    server = containers.start(
        serve_image, "serve", "--model", "/models/baseline", "--host", "0.0.0.0", "--port", "8001",
        options=(*READ_ONLY, *mounted(models), "-e", "SENTIMENT_PIPELINE_PORT=8001"),
        port=False,
    )
    deadline = time.monotonic() + 60
    while containers("healthcheck", "run", server.name, check=False).returncode != 0:
        assert server.running() and time.monotonic() < deadline, server.logs()
        time.sleep(0.5)
    report("serve on port 8001 with SENTIMENT_PIPELINE_PORT=8001: health check healthy")
