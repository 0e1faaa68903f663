"""The serving Deployment of deploy/kubernetes/ played for real with `podman kube play`.

What podman 4.3's kube play does with the manifests, found by playing them, and so what
`local_play` adapts (nothing else is changed):
- kinds: Pod, Deployment, PersistentVolumeClaim and ConfigMap are played; a Service is ignored;
  a Secret document becomes a podman secret that secretKeyRef then cannot read (4.3 reads only
  a JSON map of base64 values), so the Secret is left out of the played YAML and created with
  `podman secret create` in that form;
- a Deployment becomes one pod per replica (`<name>-pod-<i>`), each taking the same hostPort:
  one replica here;
- a configMap volume is a named volume (named after the ConfigMap) that `kube down` leaves;
  emptyDir volumes are anonymous and go with the pod; subPath is ignored (so the manifests
  mount the ConfigMap as a folder);
- runAsUser/runAsGroup, readOnlyRootFilesystem, capabilities, allowPrivilegeEscalation and the
  CPU and memory limits (as a CFS quota and a memory limit) are applied; the probes are not:
  the livenessProbe becomes a podman health check that runs curl, which the image leaves out,
  so /health is checked here through the hostPort instead;
- a pod needs an infra container, which podman makes from `catatonit` (Debian's package).

The played pod and the podman secret and volume are named as in the manifests
(sentiment-serve...): a run removes them, and a previous run's leftovers, by those names.
"""

from __future__ import annotations

import base64
import copy
import json
import math
import secrets
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kube_manifests import (
    SERVE,
    Doc,
    container,
    cpu_cores,
    documents,
    one,
    pod_spec,
    serve_documents,
)
from mlflow_server import free_port
from podman import readable, report
from services import need_program
from tiny_sklearn import save_tiny_model


def local_play(docs: list[Doc], image: str, models: Path, host_port: int) -> list[Doc]:
    """The serving manifests as podman 4.3 plays them here (the module's docstring): the test
    image, one replica, a hostPort, and the model folder of serve-from-volume as a hostPath
    instead of the registry. The Secret is not among them (it is a podman secret)."""
    played = [copy.deepcopy(doc) for doc in docs if doc["kind"] != "Secret"]
    deployment = one(played, "Deployment")
    deployment["spec"]["replicas"] = 1
    pod = pod_spec(deployment)
    spec = container(played, "Deployment", "serve")
    spec["image"] = image
    spec["ports"][0]["hostPort"] = host_port
    pod["volumes"].append({"name": "models", "hostPath": {"path": str(models),
                                                          "type": "Directory"}})
    spec["volumeMounts"].append({"name": "models", "mountPath": "/models", "readOnly": True})
    params = one(played, "ConfigMap", "sentiment-serve-params")["data"]
    tree = yaml.safe_load(params["params.yaml"])
    tree["serve"]["model"] = "/models/baseline"
    params["params.yaml"] = yaml.safe_dump(tree)
    return played


def podman_secret(example: Doc) -> tuple[str, dict[str, str]]:
    """The example Secret with random values, as the JSON map of base64 values podman 4.3's
    secretKeyRef reads; and the values."""
    values = {key: secrets.token_hex(16) for key in example["stringData"]}
    encoded = {key: base64.b64encode(value.encode()).decode() for key, value in values.items()}
    return json.dumps(encoded), values


def call(url: str, token: str | None = None, payload: object = None) -> tuple[int, Any]:
    headers = {"content-type": "application/json"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


@pytest.fixture
def models() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="sp-kube-models-"))
    save_tiny_model(root / "baseline")
    readable(root)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_the_serving_deployment_plays_in_podman_and_answers_on_health(
    containers, serve_image: str, models: Path, tmp_path: Path
) -> None:
    need_program("catatonit", "/usr/libexec/podman/catatonit",
                 what="catatonit, the pause process of podman's pods (apt-get install catatonit)")
    docs = serve_documents()
    host_port = free_port()
    played = local_play(docs, serve_image, models, host_port)
    play_file = tmp_path / "serve.yaml"
    play_file.write_text(yaml.safe_dump_all(played, sort_keys=False))
    secret = one(documents(SERVE / "secret.example.yaml"), "Secret")
    secret_name = secret["metadata"]["name"]
    encoded, values = podman_secret(secret)
    secret_file = tmp_path / "secret.json"
    secret_file.write_text(encoded)
    secret_file.chmod(0o600)
    volumes = [v["configMap"]["name"] for v in pod_spec(one(played, "Deployment"))["volumes"]
               if "configMap" in v]
    pod = f"{one(played, 'Deployment')['metadata']['name']}-pod-0"
    name = f"{pod}-serve"
    url = f"http://127.0.0.1:{host_port}"

    containers("secret", "rm", secret_name, check=False)  # a previous run's leftover
    containers("secret", "create", secret_name, str(secret_file))
    try:
        containers("kube", "play", "--replace", str(play_file), timeout=180)
        started = time.monotonic()
        while (status := health(url)) != 200:
            state = json.loads(containers("inspect", name).stdout)[0]["State"]
            logs = containers("logs", name, check=False)
            assert state["Running"], f"{name} exited:\n{(logs.stdout + logs.stderr)[-3000:]}"
            assert time.monotonic() - started < 90, f"/health: {status}\n{logs.stderr[-3000:]}"
            time.sleep(0.3)
        seconds = time.monotonic() - started

        assert call(f"{url}/health") == (200, {"status": "ok"})
        assert call(f"{url}/predict", payload={"inputs": "late again"})[0] == 401
        status, answer = call(f"{url}/predict", values["api-token"], {"inputs": "late again"})
        assert status == 200 and {item["label"] for item in answer} == {
            "negative", "neutral", "positive"}
        status, info = call(f"{url}/info", values["api-token"])
        assert status == 200 and info["model_path"] == "/models/baseline"
        spec = container(docs, "Deployment", "serve")
        cores = math.ceil(cpu_cores(spec["resources"]["limits"]["cpu"]))
        assert info["batching"]["threads"] == cores  # sized from the pod's CPU quota

        inspected = json.loads(containers("inspect", name).stdout)[0]
        host = inspected["HostConfig"]
        assert host["ReadonlyRootfs"] is True
        assert host["CpuQuota"] / host["CpuPeriod"] == cores
        process = dict(line.split(":", 1) for line in Path(
            f"/proc/{inspected['State']['Pid']}/status").read_text().splitlines())
        assert process["Uid"].split() == ["10001"] * 4
        assert int(process["CapBnd"], 16) == 0  # every capability dropped
        assert process["NoNewPrivs"].strip() == "1"
    finally:
        containers("kube", "down", str(play_file), check=False, timeout=120)
        containers("secret", "rm", secret_name, check=False)
        for volume in volumes:
            containers("volume", "rm", "-f", volume, check=False)
    report(f"kube play of deploy/kubernetes/serve (Deployment, ConfigMaps; the Secret as a "
           f"podman secret): /health 200 through hostPort {host_port} in {seconds:.1f} s; "
           f"/predict 401 without the Secret's token, 200 with it; {cores} inference threads "
           "from the CPU limit; uid 10001, read-only root, capabilities dropped")


def health(url: str) -> int | None:
    """GET /health's status, None while nothing answers."""
    try:
        return call(f"{url}/health")[0]
    except OSError:
        return None
