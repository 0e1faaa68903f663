"""The MLflow store: its URI checked and probed, outages told from bugs, HTTP retries bounded."""

from __future__ import annotations

import contextlib
import functools
import math
import os
import threading
from collections.abc import Iterator, Mapping
from importlib.metadata import entry_points
from pathlib import Path
from urllib.parse import urlsplit

from sentiment_pipeline.errors import ConfigError, PipelineError
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.processes import TimedOut, call_within
from sentiment_pipeline.settings import Settings, get_settings
from sentiment_pipeline.urls import redact

# Tracking stores MLflow builds in (mlflow.tracking._tracking_service.utils); plugins add theirs
# through the `mlflow.tracking_store` entry points. The Unity Catalog schemes are registries only.
DATABASES = ("sqlite", "postgresql", "mysql", "mssql")
SCHEMES = ("", "file", "http", "https", "databricks", *DATABASES)
ACCEPTED = (
    "sqlite:///path/to/mlruns.db, a folder (file:/path or a plain path), http(s)://host:port "
    "(an MLflow server), databricks or databricks://<profile>, or a database "
    "<postgresql|mysql|mssql>[+driver]://user:password@host/db"
)
PROBE_TIMEOUT_S = 5.0  # how long a stage waits for the server to answer before it starts


class TrackingUnavailable(PipelineError):
    """The MLflow tracking store cannot be reached, or stopped answering during a stage."""


def tracking_uri(paths: ProjectPaths, settings: Settings | None = None) -> str:
    """MLFLOW_TRACKING_URI when set, else a SQLite store in the project folder."""
    settings = settings or get_settings()
    return settings.mlflow_tracking_uri or f"sqlite:///{paths.mlflow_db}"


def uri_scheme(uri: str) -> str:
    """The store kind MLflow picks for `uri`: '' for a path, 'postgresql' for postgresql+x://."""
    if uri == "databricks":
        return "databricks"
    scheme = urlsplit(uri).scheme.lower()
    if len(scheme) == 1:  # a Windows drive letter: a path
        return ""
    return scheme.partition("+")[0]


def plugin_schemes() -> list[str]:
    return sorted(e.name for e in entry_points(group="mlflow.tracking_store"))


def check_uri(uri: str) -> str:
    """The URI's scheme, or a ConfigError naming MLFLOW_TRACKING_URI and what MLflow accepts."""
    try:
        scheme = uri_scheme(uri)
    except ValueError as exc:
        raise ConfigError(
            f"MLFLOW_TRACKING_URI={redact(uri)!r} is not a URI ({exc}); set it to {ACCEPTED}, "
            "or unset it for the project's mlruns.db"
        ) from exc
    if scheme not in SCHEMES and scheme not in plugin_schemes():
        plugins = plugin_schemes()
        extra = f" (plugins installed here add {', '.join(plugins)})" if plugins else ""
        raise ConfigError(
            f"MLFLOW_TRACKING_URI={redact(uri)!r} has a scheme MLflow does not know "
            f"({scheme!r}); MLflow accepts {ACCEPTED}{extra}; or unset it for the project's "
            "mlruns.db"
        )
    return scheme


def probe(uri: str, timeout_s: float = PROBE_TIMEOUT_S, *, existing: bool = False) -> None:
    """Refuse at once a store that cannot answer: a closed port, a server that says nothing.

    MLflow's REST client retries a refused connection for minutes. An HTTP server counts as
    answering when it sends any HTTP response to GET <uri>/health within `timeout_s`.
    existing: also refuse a missing local store (asking MLflow would create it).
    """
    parts = urlsplit(uri)
    scheme = uri_scheme(uri)
    if existing and scheme == "sqlite":
        location = uri.split(":///", 1)[1] if ":///" in uri else ""
        if location and location != ":memory:" and not Path(location).is_file():
            raise TrackingUnavailable(f"no MLflow store at {location} ({uri})")
    elif existing and scheme in ("", "file"):
        location = parts.path if scheme == "file" else uri
        if not Path(location).is_dir():
            raise TrackingUnavailable(f"no MLflow store at {location} ({uri})")
    elif scheme in ("http", "https"):
        ask_server(uri, timeout_s)


def ask_server(uri: str, timeout_s: float) -> None:
    """GET <uri>/health, given up after `timeout_s` however slow the name lookup or the answer."""
    import requests

    get = functools.partial(
        requests.get, f"{uri.rstrip('/')}/health", timeout=timeout_s, allow_redirects=False
    )
    try:
        call_within(get, timeout_s, "mlflow-probe")
    except requests.exceptions.SSLError:
        pass  # something answers in TLS; MLflow's own settings decide whether to trust it
    except (TimedOut, requests.exceptions.Timeout):
        raise TrackingUnavailable(
            f"the MLflow server {redact(uri)} did not answer within {timeout_s:g} s"
        ) from None
    except Exception as exc:
        raise TrackingUnavailable(
            f"the MLflow server {redact(uri)} cannot be reached ({cause(exc)})"
        ) from exc


def chain(exc: BaseException) -> Iterator[BaseException]:
    """An exception and its causes (explicit or implicit), each once."""
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        yield link
        link = link.__cause__ or link.__context__


def unreachable(exc: BaseException) -> bool:
    """Whether an MLflow call failed because its store did not answer (not a bug, not a 'no')."""
    import requests

    gone = (
        requests.exceptions.ConnectionError,
        requests.exceptions.Timeout,
        requests.exceptions.RetryError,
        ConnectionError,
        TimeoutError,
    )
    return any(isinstance(link, gone) for link in chain(exc))


def cause(exc: BaseException) -> str:
    """One line on why a call failed: its deepest builtin OSError (e.g. connection refused)."""
    links = list(chain(exc))
    builtin = [e for e in links if isinstance(e, OSError) and type(e).__module__ == "builtins"]
    root = builtin[-1] if builtin else links[-1]
    return one_line(root)


def one_line(exc: BaseException) -> str:
    """`Type: message` on one line of at most 200 characters."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= 200 else f"{text[:197]}..."


class HttpBounds:
    """Bounds on MLflow's REST client (retries, timeout) set in the environment for a while.

    MLflow reads them from the environment at each request. Several holders may overlap (a
    stage, a registry lookup in a serving thread, a quick end of a run): the latest holder's
    values apply, except that values held with override=False only fill names the user did
    not set; when the last holder leaves, what was there before comes back.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.held: list[tuple[object, Mapping[str, str], bool]] = []
        self.saved: dict[str, str | None] = {}

    def _apply(self) -> None:
        values = dict(self.saved)
        for _, bounds, override in self.held:
            for name, value in bounds.items():
                if override or self.saved.get(name) is None:
                    values[name] = value
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    @contextlib.contextmanager
    def applied(self, bounds: Mapping[str, str], *, override: bool = True) -> Iterator[None]:
        token = object()
        with self.lock:
            for name in bounds:
                self.saved.setdefault(name, os.environ.get(name))
            self.held.append((token, bounds, override))
            self._apply()
        try:
            yield
        finally:
            with self.lock:
                self.held = [held for held in self.held if held[0] is not token]
                self._apply()
                if not self.held:
                    self.saved = {}


HTTP_BOUNDS = HttpBounds()


def http_bounds(retries: int, timeout_s: float) -> dict[str, str]:
    """MLflow's settings for `retries` retries 1-2 s apart, each waiting `timeout_s` at most."""
    return {
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(retries),
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(max(1, math.ceil(timeout_s))),
    }
