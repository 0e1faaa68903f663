"""The Kubernetes manifests in deploy/kubernetes/: what every manifest must keep (fast), and the
serving Deployment played for real with `podman kube play` (slow).

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
import re
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

from mlflow_server import free_port
from podman import readable, report
from sentiment_pipeline.config.manager import validate_tree
from sentiment_pipeline.config.pipeline import PipelineConfig
from sentiment_pipeline.serving.server import worker_threads
from services import need_program
from tiny_sklearn import save_tiny_model

REPO = Path(__file__).resolve().parents[1]
KUBE = REPO / "deploy" / "kubernetes"
SERVE = KUBE / "serve"
TUNE = KUBE / "tune"
TOKEN_ENV = "SENTIMENT_PIPELINE_API_TOKEN"
STORAGE_ENV = "SENTIMENT_PIPELINE_OPTUNA_STORAGE"
PLACEHOLDER = "REPLACE-WITH"
SECRET_NAMES = re.compile(r"TOKEN|PASSWORD|SECRET|KEY|STORAGE", re.IGNORECASE)
CREDENTIALS_IN_URL = re.compile(r"://[^/\s:@]+:([^@\s/]+)@")

Doc = dict[str, Any]


def documents(*paths: Path) -> list[Doc]:
    return [doc for path in paths for doc in yaml.safe_load_all(path.read_text()) if doc]


def one(docs: list[Doc], kind: str, name: str | None = None) -> Doc:
    found = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def serve_documents() -> list[Doc]:
    """What `kubectl apply -k deploy/kubernetes/serve` applies (its kustomization's files)."""
    return documents(*(SERVE / name for name in kustomized(SERVE)))


def kustomized(folder: Path) -> list[str]:
    return yaml.safe_load((folder / "kustomization.yaml").read_text())["resources"]


def image_is_set_by_kustomization(folder: Path, spec: Doc) -> bool:
    """`kustomize edit set image NAME=...` reaches the container (the name without its tag)."""
    images = yaml.safe_load((folder / "kustomization.yaml").read_text())["images"]
    return spec["image"].rsplit(":", 1)[0] in {image["name"] for image in images}


def container(docs: list[Doc], kind: str, name: str) -> Doc:
    (first, *_) = pod_spec(one(docs, kind))["containers"]
    assert first["name"] == name
    return first


def pod_spec(workload: Doc) -> Doc:
    return workload["spec"]["template"]["spec"]


def env_of(spec: Doc) -> dict[str, Doc]:
    return {item["name"]: item for item in spec.get("env", [])}


def option(args: list[str], name: str) -> str:
    assert name in args, f"{name} not in {args}"
    return args[args.index(name) + 1]


def mounted_params(workload: Doc, spec: Doc, docs: list[Doc]) -> str:
    """The params.yaml the container's --params names, read from the ConfigMap mounted there
    (as a folder: podman ignores subPath, and a subPath file misses ConfigMap updates)."""
    path = Path(option(spec["args"], "--params"))
    volumes = {v["name"]: v for v in pod_spec(workload)["volumes"]}
    for mount in spec["volumeMounts"]:
        if path.parent == Path(mount["mountPath"]):
            assert mount.get("readOnly") is True and "subPath" not in mount
            config_map = one(docs, "ConfigMap", volumes[mount["name"]]["configMap"]["name"])
            return config_map["data"][path.name]
    raise AssertionError(f"--params {path} is in no mounted folder")


def cpu_cores(quantity: str) -> float:
    return int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def secret_ref(item: Doc) -> tuple[str, str]:
    """The Secret and key of an environment variable, which must come from one."""
    assert "value" not in item, f"{item['name']} is written down"
    ref = item["valueFrom"]["secretKeyRef"]
    return ref["name"], ref["key"]


# --- every manifest ---------------------------------------------------------------------------

def test_every_manifest_is_a_kubernetes_object_and_every_kustomization_lists_real_files() -> None:
    files = sorted(KUBE.rglob("*.yaml"))
    assert files, KUBE
    kinds = set()
    for path in files:
        for doc in documents(path):
            assert {"apiVersion", "kind"} <= doc.keys(), path
            kinds.add(doc["kind"])
            if doc["kind"] == "Kustomization":
                for resource in doc["resources"]:
                    assert (path.parent / resource).exists(), (path, resource)
            else:
                assert doc["metadata"]["name"], path
    assert {"Deployment", "Service", "ConfigMap", "Secret", "Job"} <= kinds


def test_no_secret_is_written_down() -> None:
    """A Secret exists only as a *.example.yaml template with placeholders, applied by no
    kustomization; no environment variable or ConfigMap holds a token, key or password."""
    applied = {
        (path.parent / resource).resolve()
        for path in KUBE.rglob("kustomization.yaml") for resource in kustomized(path.parent)
    }
    for path in sorted(KUBE.rglob("*.yaml")):
        for doc in documents(path):
            if doc["kind"] == "Secret":
                assert path.name.endswith(".example.yaml") and path.resolve() not in applied
                values = {**doc.get("stringData", {}), **doc.get("data", {})}
                assert values and all(PLACEHOLDER in value for value in values.values()), path
            if doc["kind"] == "ConfigMap":
                for key, value in doc["data"].items():
                    assert not SECRET_NAMES.search(key), (path, key)
                    assert not CREDENTIALS_IN_URL.search(value), (path, key)
        for match in CREDENTIALS_IN_URL.finditer(path.read_text()):
            assert match[1].startswith(PLACEHOLDER), (path, match[0])
    for folder, kind in ((SERVE, "Deployment"), (TUNE, "Job")):
        spec = pod_spec(one(documents(*(folder / f for f in kustomized(folder))), kind))
        for each in [*spec.get("initContainers", []), *spec["containers"]]:
            for variable, item in env_of(each).items():
                if SECRET_NAMES.search(variable):
                    secret_ref(item)


# --- the service ------------------------------------------------------------------------------

def test_the_service_is_probed_on_health_and_runs_locked_down() -> None:
    docs = serve_documents()
    deployment = one(docs, "Deployment")
    spec = container(docs, "Deployment", "serve")
    ports = {port["name"]: port["containerPort"] for port in spec["ports"]}
    assert image_is_set_by_kustomization(SERVE, spec)
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        check = spec[probe]["httpGet"]
        assert check["path"] == "/health" and check["port"] in ports, probe
    env = env_of(spec)
    assert int(env["SENTIMENT_PIPELINE_PORT"]["value"]) == ports[spec["livenessProbe"][
        "httpGet"]["port"]]
    assert env["SENTIMENT_PIPELINE_HOST"]["value"] == "0.0.0.0"

    pod = pod_spec(deployment)
    image_user = re.search(r"--uid (\d+)", (REPO / "Dockerfile").read_text())
    assert image_user is not None
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == int(image_user[1])  # numeric: checkable
    assert pod["enableServiceLinks"] is False  # else a Service can set SENTIMENT_PIPELINE_PORT
    assert pod["automountServiceAccountToken"] is False
    security = spec["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    writable = {m["mountPath"]: volumes[m["name"]] for m in spec["volumeMounts"]
                if not m.get("readOnly")}
    assert set(writable) == {"/tmp", "/srv/.cache"}
    assert all("emptyDir" in volume for volume in writable.values())

    assert secret_ref(env[TOKEN_ENV]) == ("sentiment-serve", "api-token")
    assert env[TOKEN_ENV]["valueFrom"]["secretKeyRef"].get("optional") is not True
    example = one(documents(SERVE / "secret.example.yaml"), "Secret", "sentiment-serve")
    assert "api-token" in example["stringData"]
    for source in spec["envFrom"]:
        one(docs, "ConfigMap", source["configMapRef"]["name"])

    service = one(docs, "Service")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert {port["targetPort"] for port in service["spec"]["ports"]} <= set(ports)


def test_the_cpu_limit_and_the_inference_threads_agree() -> None:
    """One worker per pod (replicas scale out) with threads = usable cores // workers, the
    cores being the CPU limit (a cgroup quota): as many threads as the pod has cores."""
    docs = serve_documents()
    deployment = one(docs, "Deployment")
    spec = container(docs, "Deployment", "serve")
    resources = spec["resources"]
    assert resources["requests"] == resources["limits"]  # Guaranteed: the cores are there
    limit = cpu_cores(resources["limits"]["cpu"])
    cores = math.ceil(limit)  # what machine.usable_cores reads from the quota
    assert cores == limit, "a whole number of cores, or a thread gets a fraction"
    workers = int(option(spec["args"], "--workers"))
    assert workers == 1
    config = validate_tree(yaml.safe_load(mounted_params(deployment, spec, docs)), "ConfigMap")
    threads = worker_threads(config.serve, workers, cores=cores)
    assert threads * workers == cores, (threads, workers, cores)
    assert config.serve.model == "models:/sentiment-classifier@champion"
    assert config.serve.model.removeprefix("models:/").split("@")[0] == (
        PipelineConfig().register_.model_name)


def test_prometheus_scrapes_every_replica_with_the_token() -> None:
    docs = serve_documents()
    monitor = one(documents(KUBE / "monitoring" / "servicemonitor.yaml"), "ServiceMonitor")
    service = one(docs, "Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"][
        "labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    credentials = endpoint["authorization"]["credentials"]
    token = env_of(container(docs, "Deployment", "serve"))[TOKEN_ENV]
    assert (credentials["name"], credentials["key"]) == secret_ref(token)
    annotations = one(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] == "/metrics"


def test_the_volume_variant_mounts_models_read_only_and_serves_a_folder_there() -> None:
    overlay = yaml.safe_load((KUBE / "serve-from-volume" / "kustomization.yaml").read_text())
    assert overlay["resources"] == ["../serve"]
    operations = [op for patch in overlay["patches"] for op in yaml.safe_load(patch["patch"])]
    mounts = [op["value"] for op in operations if op["path"].endswith("/volumeMounts/-")]
    assert mounts == [{"name": "models", "mountPath": "/models", "readOnly": True}]
    (params,) = [op["value"] for op in operations if op["path"] == "/data/params.yaml"]
    assert validate_tree(yaml.safe_load(params), "overlay").serve.model.startswith("/models/")


# --- the tuning workers -----------------------------------------------------------------------

def test_tuning_workers_are_a_work_queue_job_on_a_storage_from_a_secret() -> None:
    docs = documents(*(TUNE / name for name in kustomized(TUNE)))
    job = one(docs, "Job")
    assert job["spec"]["parallelism"] >= 2
    # Each worker exits 0 only once the study has n_trials: the first success ends the Job.
    assert "completions" not in job["spec"]
    spec = container(docs, "Job", "tune")
    assert spec["args"][:2] == ["tune", "lightgbm"]
    assert image_is_set_by_kustomization(TUNE, spec)
    assert secret_ref(env_of(spec)[STORAGE_ENV]) == ("sentiment-tune", "optuna-storage")
    assert env_of(spec)[STORAGE_ENV]["valueFrom"]["secretKeyRef"].get("optional") is not True
    example = one(documents(TUNE / "secret.example.yaml"), "Secret", "sentiment-tune")
    assert example["stringData"]["optuna-storage"].startswith("postgresql")
    config = validate_tree(yaml.safe_load(mounted_params(job, spec, docs)), "ConfigMap")
    assert config.train.lightgbm.n_trials >= job["spec"]["parallelism"]
    (prepare,) = pod_spec(job)["initContainers"]
    assert prepare["volumeMounts"] == spec["volumeMounts"]  # the same data and params
    assert prepare["image"] == spec["image"]
    pod = pod_spec(job)
    assert pod["restartPolicy"] == "OnFailure" and pod["securityContext"]["runAsNonRoot"]


# --- the Deployment played with podman --------------------------------------------------------

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
