"""What every manifest in deploy/kubernetes/ must keep: probes, lock-down, secrets, sizing."""

from __future__ import annotations

import math
import re

import yaml

from kube_manifests import (
    CREDENTIALS_IN_URL,
    KUBE,
    PLACEHOLDER,
    REPO,
    SECRET_NAMES,
    SERVE,
    STORAGE_ENV,
    TOKEN_ENV,
    TUNE,
    container,
    cpu_cores,
    documents,
    env_of,
    image_is_set_by_kustomization,
    kustomized,
    mounted_params,
    one,
    option,
    pod_spec,
    secret_ref,
    serve_documents,
)
from sentiment_pipeline.config.manager import validate_tree
from sentiment_pipeline.config.pipeline import PipelineConfig
from sentiment_pipeline.serving.server import worker_threads


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
