"""LoggingGuard: the MLflow calls of a long stage, which a store outage must not stop."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from sentiment_pipeline.tracking.runs import log_metrics, log_params, start_child_run
from sentiment_pipeline.tracking.store import (
    HTTP_BOUNDS,
    TrackingUnavailable,
    cause,
    http_bounds,
    probe,
    unreachable,
)
from sentiment_pipeline.urls import redact

logger = logging.getLogger(__name__)

T = TypeVar("T")
QUICK_TIMEOUT_S = 2.0  # to end a run while the store is known to be down
STAGE_SCOPE = "the stage run"


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

