"""The manifests in deploy/kubernetes/, read: their documents, containers, env and secrets."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

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
