"""Asking the MLflow registry which version an alias or number names, within a time limit."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sentiment_pipeline import tracking
from sentiment_pipeline.models.artifacts.manifest import ArtifactError
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.processes import TimedOut, call_within
from sentiment_pipeline.registry.specs import CHAMPION, RegistrySpec
from sentiment_pipeline.urls import redact

logger = logging.getLogger(__name__)

T = TypeVar("T")


class RegistryUnavailable(ArtifactError):
    """The MLflow registry could not be asked: no store, an unknown scheme, no answer in time."""


class NotRegistered(ArtifactError):
    """The registry answered, without the model, version or alias asked for."""


@dataclass(frozen=True)
class RegisteredVersion:
    """What the registry says about one model version."""

    name: str
    version: str
    download_uri: str
    tags: dict[str, str]


def check_store(store: str, timeout_s: float) -> None:
    """Refuse at once a store that cannot answer: a missing local store, a closed port, a
    server that says nothing (tracking.probe).

    Asking MLflow would create a missing SQLite or file store, and its REST client retries a
    refused connection for minutes.
    """
    try:
        tracking.probe(store, timeout_s, existing=True)
    except tracking.TrackingUnavailable as exc:
        raise RegistryUnavailable(str(exc)) from exc


def within(call: Callable[[], T], store: str, timeout_s: float, limit_s: float) -> T:
    """call() in a daemon thread, given up after `timeout_s` as RegistryUnavailable.

    limit_s: the caller's whole time limit, which the message names.
    """
    with tracking.HTTP_BOUNDS.applied(tracking.http_bounds(0, timeout_s)):
        try:
            return call_within(call, timeout_s, "registry-lookup")
        except TimedOut:
            raise RegistryUnavailable(
                f"the MLflow registry {redact(store)} did not answer within {limit_s:g} s"
            ) from None


def registry_error(exc: Exception, what: str, store: str) -> ArtifactError:
    """An MLflow failure as NotRegistered (the registry answered 'no') or RegistryUnavailable."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking.registry import UnsupportedModelRegistryStoreURIException

    code = getattr(exc, "error_code", None)
    where = redact(store)
    if isinstance(exc, UnsupportedModelRegistryStoreURIException):
        if tracking.uri_scheme(store) in tracking.DATABASES:  # no SQLAlchemy: MLflow's client only
            return RegistryUnavailable(
                f"{where} is a database store, which MLflow reads only with its server side "
                "installed (pip install 'sentiment-pipeline[pipeline]'); or set "
                "MLFLOW_TRACKING_URI to an MLflow server (http://host:port)"
            )
        return RegistryUnavailable(f"{where} is not an MLflow registry URI ({exc})")
    if isinstance(exc, MlflowException) and code in (
        "RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"
    ):
        return NotRegistered(f"{what} is not in the MLflow registry {where}: {exc.message}")
    return RegistryUnavailable(f"the MLflow registry {where} failed ({type(exc).__name__}: {exc})")


def lookup(store: str, spec: RegistrySpec, *, timeout_s: float) -> RegisteredVersion:
    """The version that the alias (or the number) of `spec` names in the registry `store`."""
    deadline = time.monotonic() + timeout_s
    check_store(store, timeout_s)
    from mlflow.tracking import MlflowClient

    def ask() -> RegisteredVersion:
        try:
            client = MlflowClient(tracking_uri=store, registry_uri=store)
            if spec.alias is not None:
                found = client.get_model_version_by_alias(spec.name, spec.alias)
            else:
                found = client.get_model_version(spec.name, str(spec.version))
            uri = client.get_model_version_download_uri(spec.name, found.version)
        except Exception as exc:
            raise registry_error(exc, str(spec), store) from exc
        return RegisteredVersion(spec.name, str(found.version), uri, dict(found.tags or {}))

    # MLflow's import may have eaten into the budget; leave the lookup a second at least.
    return within(ask, store, max(deadline - time.monotonic(), 1.0), timeout_s)


def alias_version(
    model_name: str,
    alias: str = CHAMPION,
    *,
    timeout_s: float = 10.0,
    paths: ProjectPaths | None = None,
) -> str | None:
    """The version the alias names now, or None when the registry or the alias is not there.

    paths: the project whose default store (mlruns.db) to ask; default: the working directory.
    """
    store = tracking.tracking_uri(paths or ProjectPaths.at("."))
    spec = RegistrySpec(model_name, alias=alias)
    try:
        return lookup(store, spec, timeout_s=timeout_s).version
    except (RegistryUnavailable, NotRegistered) as exc:
        logger.debug("no version for %s: %s", spec, exc)
        return None

