"""MLflow set-up: the tracking URI checked and probed, one experiment per stage, parent runs with
nested child runs, and logging that a long stage survives when the store stops answering."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel

from sentiment_pipeline.config.loading import params_hash
from sentiment_pipeline.errors import ConfigError, PipelineError
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.settings import Settings, get_settings

if TYPE_CHECKING:
    import mlflow

logger = logging.getLogger(__name__)

T = TypeVar("T")
EXPERIMENT_PREFIX = "sentiment-pipeline"
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
# MLflow's REST client during a stage: a refused connection fails in seconds and a server that
# does not answer in about a minute, instead of 7 retries with backoff (about 4 minutes per
# call). Settings the user made in the environment are kept.
STAGE_RETRIES, STAGE_TIMEOUT_S = 2, 20.0
QUICK_TIMEOUT_S = 2.0  # to end a run while the store is known to be down
STAGE_SCOPE = "the stage run"


class TrackingUnavailable(PipelineError):
    """The MLflow tracking store cannot be reached, or stopped answering during a stage."""


# --- the URI, and whether anything answers there ---------------------------------------------


def tracking_uri(paths: ProjectPaths, settings: Settings | None = None) -> str:
    """MLFLOW_TRACKING_URI when set, else a SQLite store in the project folder."""
    settings = settings or get_settings()
    return settings.mlflow_tracking_uri or f"sqlite:///{paths.mlflow_db}"


def redact(uri: str) -> str:
    """A store URI fit for a message: without a password."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{parts.username}:***@{host}").geturl()


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

    outcome: dict[str, BaseException] = {}

    def ask() -> None:
        try:
            requests.get(f"{uri.rstrip('/')}/health", timeout=timeout_s, allow_redirects=False)
        except requests.exceptions.SSLError:
            pass  # something answers in TLS; MLflow's own settings decide whether to trust it
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=ask, name="mlflow-probe", daemon=True)
    thread.start()
    thread.join(timeout_s)
    error = outcome.get("error")
    if thread.is_alive() or isinstance(error, requests.exceptions.Timeout):
        raise TrackingUnavailable(
            f"the MLflow server {redact(uri)} did not answer within {timeout_s:g} s"
        )
    if error is not None:
        raise TrackingUnavailable(
            f"the MLflow server {redact(uri)} cannot be reached ({cause(error)})"
        ) from error


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
    text = " ".join(f"{type(root).__name__}: {root}".split())
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


# --- experiments and runs --------------------------------------------------------------------


def configure(paths: ProjectPaths, settings: Settings | None = None) -> str:
    """Point MLflow at the configured store, once it is known to answer; return its URI.

    An unknown scheme is a ConfigError; a server that does not answer within PROBE_TIMEOUT_S
    is TrackingUnavailable.
    """
    import mlflow

    uri = tracking_uri(paths, settings)
    check_uri(uri)
    probe(uri)
    mlflow.set_tracking_uri(uri)
    # The registry lives with the tracking store (a local database or the same server). Set it
    # every time: MLflow keeps the last registry URI, and exports it as MLFLOW_REGISTRY_URI.
    mlflow.set_registry_uri(uri)
    return uri


def experiment_name(stage: str) -> str:
    return f"{EXPERIMENT_PREFIX}/{stage}"


def use_experiment(stage: str, paths: ProjectPaths, settings: Settings | None = None) -> str:
    """Create (if needed) and activate the stage's experiment; return its id."""
    import mlflow

    uri = configure(paths, settings)
    name = experiment_name(stage)
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is None:
        location = None
        if uri.startswith("sqlite:"):
            location = (paths.mlflow_artifacts / stage).as_uri()
        try:
            experiment_id = mlflow.create_experiment(name, artifact_location=location)
        except mlflow.exceptions.MlflowException as exc:
            # Another worker of a shared study created it first.
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            experiment_id = mlflow.get_experiment_by_name(name).experiment_id
    else:
        experiment_id = experiment.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def git_commit(root: Path) -> str | None:
    """The commit of the project checkout, or None outside git."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}; lists and tuples become strings."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, list | tuple):
            flat[name] = str(list(value))
        else:
            flat[name] = value
    return flat


HOST_TAG, PID_TAG = "sentiment_pipeline.host", "sentiment_pipeline.pid"


def run_tags(stage: str, config: BaseModel, paths: ProjectPaths) -> dict[str, str]:
    tags = {"stage": stage, "params_hash": params_hash(config),
            HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}
    commit = git_commit(paths.root)
    if commit:
        tags["mlflow.source.git.commit"] = commit
        tags["git_commit"] = commit
    return tags


def process_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def close_dead_runs(experiment_id: str) -> int:
    """Mark KILLED the runs of this experiment still RUNNING whose process, on this machine,
    is gone (a stage killed with -9, a machine that lost power), with their RUNNING children.

    Only runs started here are looked at (host tag): other machines' workers of a shared study
    are left alone, and so is a run whose process id is alive again (it may be reused; left
    RUNNING is the safe side). Returns how many runs were closed.
    """
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    host = socket.gethostname().replace("'", "")
    running = client.search_runs(
        [experiment_id],
        filter_string=f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = '{host}'",
    )
    closed = 0
    for run in running:
        pid = run.data.tags.get(PID_TAG, "")
        if not pid.isdigit() or process_alive(int(pid)):
            continue
        children = client.search_runs(
            [experiment_id],
            filter_string=f"attributes.status = 'RUNNING' and "
            f"tags.`mlflow.parentRunId` = '{run.info.run_id}'",
        )
        for orphan in [*children, run]:
            client.set_terminated(orphan.info.run_id, status="KILLED")
            closed += 1
    if closed:
        logger.warning(
            "marked %d MLflow run(s) KILLED: they were left RUNNING by a process of this machine "
            "that is gone (killed or crashed)", closed,
        )
    return closed


@contextlib.contextmanager
def stage_run(
    stage: str,
    config: BaseModel,
    paths: ProjectPaths,
    run_name: str | None = None,
    settings: Settings | None = None,
    guard: LoggingGuard | None = None,
) -> Iterator[mlflow.ActiveRun]:
    """The parent run of one stage execution, tagged and with the stage config as params.

    The store is checked and probed first (a ConfigError or TrackingUnavailable within
    PROBE_TIMEOUT_S), and MLflow's retries are bounded for the whole stage. A store that stops
    answering later ends the stage with TrackingUnavailable, unless the stage passes a `guard`
    that records what was not logged and goes on (see LoggingGuard).
    """
    import mlflow

    uri = tracking_uri(paths, settings)
    own = guard is None
    guard = guard or LoggingGuard(uri)
    with HTTP_BOUNDS.applied(http_bounds(STAGE_RETRIES, STAGE_TIMEOUT_S), override=False):
        try:
            close_dead_runs(use_experiment(stage, paths, settings))
            run = mlflow.start_run(run_name=run_name or stage, tags=run_tags(stage, config, paths))
        except Exception as exc:
            if isinstance(exc, PipelineError) or not unreachable(exc):
                raise
            raise TrackingUnavailable(
                f"MLflow at {redact(uri)} failed at the start of the {stage} stage "
                f"({cause(exc)}); check that the server is up, or unset MLFLOW_TRACKING_URI"
            ) from exc
        status = "FAILED"
        try:
            mlflow.log_params(flatten(config.model_dump(mode="json")))
            yield run
            status = "FINISHED"
        except Exception as exc:
            if isinstance(exc, PipelineError) or not unreachable(exc):
                raise
            guard.went_down(exc)
            raise TrackingUnavailable(
                f"MLflow at {redact(uri)} stopped answering during the {stage} stage "
                f"({guard.cause}); its run {run.info.run_id} is incomplete; rerun the stage "
                "once the server answers"
            ) from exc
        finally:
            guard.end_active_run(STAGE_SCOPE, status)
        if own:  # the stage went through; only ending its run failed
            guard.check(f"the {stage} stage finished")


def start_child_run(
    run_name: str, tags: Mapping[str, str] | None = None, parent: Any = None
) -> str:
    """A run nested under `parent` (a Run), by default the active (stage) run, left inactive
    (logged to by id); its id. A thread other than the stage run's must pass the parent:
    MLflow's active run is per thread.

    It inherits the parent's stage, params_hash and git tags.
    """
    import mlflow
    from mlflow.tracking.context import registry

    parent = parent if parent is not None else mlflow.active_run()
    if parent is None:
        raise RuntimeError("start_child_run needs an active stage run (stage_run)")
    all_tags = dict(tags or {})
    for key in ("stage", "params_hash", "git_commit", "mlflow.source.git.commit"):
        if key in parent.data.tags:
            all_tags.setdefault(key, parent.data.tags[key])
    all_tags["mlflow.parentRunId"] = parent.info.run_id
    run = mlflow.MlflowClient().create_run(
        parent.info.experiment_id, run_name=run_name, tags=registry.resolve_tags(all_tags)
    )
    return run.info.run_id


def log_params(params: Mapping[str, Any], run_id: str) -> None:
    """Log `params` (flattened, as strings) to the run `run_id`."""
    from mlflow import MlflowClient
    from mlflow.entities import Param

    flat = [Param(key, str(value)) for key, value in flatten(params).items()]
    if flat:
        MlflowClient().log_batch(run_id, params=flat)


def log_metrics(
    metrics: Mapping[str, Any], step: int | None = None, run_id: str | None = None
) -> None:
    """Log the numeric entries of `metrics` (None and non-numbers are skipped) to the active
    run, or to `run_id`."""
    import mlflow

    numeric = {
        k: float(v)
        for k, v in flatten(metrics).items()
        if isinstance(v, int | float) and not isinstance(v, bool) and v == v
    }
    if numeric:
        mlflow.log_metrics(numeric, step=step, run_id=run_id)


# --- logging that a long stage survives ------------------------------------------------------


class LoggingGuard:
    """MLflow calls a long stage makes between its own work, which must not stop it.

    When the store stops answering, the call is recorded as not logged (with its scope: the
    stage run or `trial N`) instead of raising; later calls are skipped at once while the store
    is down, and each new child run probes it first, so logging resumes when it answers again.
    The stage saves its outputs, then `check` raises TrackingUnavailable listing what is missing.
    Any other failure (a bug, a refusal) raises as it is.
    """

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.down = False
        self.cause: str | None = None
        self.missed: dict[str, list[str]] = {}

    def went_down(self, exc: BaseException) -> None:
        self.down, self.cause = True, cause(exc)

    def miss(self, scope: str, what: str) -> None:
        missed = self.missed.setdefault(scope, [])
        if "run" not in missed and what not in missed:
            missed.append(what)

    def call(self, scope: str, what: str, function: Callable[..., T], *args: Any,
             **kwargs: Any) -> T | None:
        """function(*args, **kwargs), or None (recorded) when the store is down or goes down."""
        if self.down:
            self.miss(scope, what)
            return None
        try:
            return function(*args, **kwargs)
        except Exception as exc:
            if not unreachable(exc):
                raise
            self.went_down(exc)
            logger.warning(
                "MLflow at %s stopped answering (%s); %s of %s not logged, going on without it",
                redact(self.uri), self.cause, what, scope,
            )
            self.miss(scope, what)
            return None

    def answering(self) -> bool:
        """Whether to try logging: a store that went down is probed again (PROBE_TIMEOUT_S)."""
        if self.down:
            try:
                probe(self.uri)
            except TrackingUnavailable:
                return False
            self.down = False
            logger.info("MLflow at %s answers again; logging resumes", redact(self.uri))
        return True

    @contextlib.contextmanager
    def child_run(
        self,
        scope: str,
        run_name: str,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        parent: Any = None,
    ) -> Iterator[str | None]:
        """A nested run (start_child_run, under `parent` or the active run); yields its id, or
        None when it could not be logged."""
        from mlflow import MlflowClient

        if self.answering():
            run_id = self.call(scope, "run", start_child_run, run_name, tags=tags, parent=parent)
        else:
            run_id = None
            self.miss(scope, "run")
        if run_id is not None and params:
            self.call(scope, "params", log_params, params, run_id)
        status = "FAILED"
        try:
            yield run_id
            status = "FINISHED"
        finally:
            if run_id is not None:
                self.call(scope, "end of run", MlflowClient().set_terminated, run_id, status)

    def log_metrics(
        self, scope: str, run_id: str | None, metrics: Mapping[str, Any], step: int | None = None
    ) -> None:
        """Metrics of a child run (a run that was not logged is already recorded)."""
        if run_id is not None:
            self.call(scope, "metrics", log_metrics, metrics, step=step, run_id=run_id)

    def set_tag(self, scope: str, run_id: str | None, key: str, value: str) -> None:
        from mlflow import MlflowClient

        if run_id is not None:
            self.call(scope, f"tag {key}", MlflowClient().set_tag, run_id, key, value)

    def end_active_run(self, scope: str, status: str) -> None:
        """End the active run. MLflow forgets it even when the store does not answer; then it
        is not waited for (QUICK_TIMEOUT_S, no retries)."""
        import mlflow

        if not self.down:
            self.call(scope, "end of run", mlflow.end_run, status)
            return
        with HTTP_BOUNDS.applied(http_bounds(0, QUICK_TIMEOUT_S)):
            try:
                mlflow.end_run(status)
            except Exception as exc:
                if not unreachable(exc):
                    raise
                self.miss(scope, "end of run")

    def summary(self) -> str:
        """What was not logged, e.g. 'trial 2 (metrics, end of run); trials 3-5 (whole runs);
        the stage run (best params, end of run)'."""
        parts: list[str] = []
        span: list[int] = []  # consecutive trials none of whose run was logged

        def close_span() -> None:
            if span:
                numbers = f"{span[0]}" if len(span) == 1 else f"{span[0]}-{span[-1]}"
                parts.append(f"trial {numbers} (whole run)" if len(span) == 1
                             else f"trials {numbers} (whole runs)")
                span.clear()

        for scope, what in self.missed.items():
            whole = scope.startswith("trial ") and what == ["run"]
            number = int(scope.split()[-1]) if whole else None
            if number is not None and span and number == span[-1] + 1:
                span.append(number)
                continue
            close_span()
            if number is not None:
                span.append(number)
            else:
                parts.append(f"{scope} ({', '.join(what)})")
        close_span()
        return "; ".join(parts)

    def check(self, saved: str) -> None:
        """TrackingUnavailable listing what was not logged, if anything; `saved` says what the
        stage kept anyway (its outputs)."""
        if not self.missed:
            return
        raise TrackingUnavailable(
            f"MLflow at {redact(self.uri)} stopped answering ({self.cause}); {saved}; "
            f"not logged to MLflow: {self.summary()}"
        )

