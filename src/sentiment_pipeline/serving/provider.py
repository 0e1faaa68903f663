"""Where the service gets its model: opened at start-up, reopened when its registry alias moves."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.registry.lookup import alias_version
from sentiment_pipeline.registry.opening import LoadedModel, load, open_model
from sentiment_pipeline.registry.resolve import ResolvedModel

logger = logging.getLogger(__name__)


class ModelProvider(Protocol):
    """Where the service gets its model: loaded at start-up, polled for a new one."""

    threads: int | None  # inference threads of this worker (None: the library's default)

    def load(self) -> LoadedModel:
        """The model to serve now (blocking: called off the event loop)."""
        ...

    def reloadable(self) -> bool:
        """Whether `poll` can ever find a new model (a registry alias)."""
        ...

    def poll(self, current: LoadedModel) -> LoadedModel | None:
        """A new model when the alias moved since `current` was loaded, else None (blocking)."""
        ...


@dataclass
class RegistryProvider:
    """Loads the model resolved at start-up; polls its alias (if any) for a new version.

    opened: the model run_server opened already, handed out by the first `load` (so a single
    worker does not load it twice).
    """

    resolved: ResolvedModel
    backend: str
    model_name: str
    paths: ProjectPaths
    threads: int | None = None
    timeout_s: float = 10.0
    trust: bool | None = None  # --trust of `serve`, for the versions the alias moves to
    opened: LoadedModel | None = None

    def load(self) -> LoadedModel:
        opened, self.opened = self.opened, None
        if opened is not None:
            return opened
        return load(self.resolved, self.backend, threads=self.threads, project=self.paths)

    def reloadable(self) -> bool:
        return self.resolved.alias is not None

    def poll(self, current: LoadedModel) -> LoadedModel | None:
        resolved = current.resolved
        if resolved.alias is None:
            return None
        version = alias_version(resolved.name, resolved.alias, timeout_s=self.timeout_s,
                                paths=self.paths)
        if version is None or version == resolved.version:
            return None
        logger.info("%s moved from version %s to %s; loading it", resolved.source,
                    resolved.version, version)
        return open_model(
            resolved.source, model_name=self.model_name, paths=self.paths, trust=self.trust,
            backend=self.backend, threads=self.threads, timeout_s=self.timeout_s,
        )
