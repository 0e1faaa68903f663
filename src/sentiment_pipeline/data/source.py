"""source stage: stamp what data.source is now, so that DVC reruns ingest exactly when it changed.

A local file is stamped with its path, size and sha256; a URL with what its server says about
its copy (ETag, Last-Modified, Content-Length). The stage runs on every `dvc repro`
(`always_changed`) and rewrites data/raw/source.json only when the stamp differs, so ingest,
which depends on that file, is skipped while the source is unchanged, online or offline.
A predefined split (data.val_source, data.test_source) is stamped the same way, under its key.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from sentiment_pipeline import runner
from sentiment_pipeline.config.data import PREDEFINED_SPLITS, DataConfig
from sentiment_pipeline.data.stamps import (
    VALIDATORS,
    local_copy_hint,
    read_json_object,
    validators,
)
from sentiment_pipeline.errors import DataError
from sentiment_pipeline.io import atomic_path, write_json
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.runner import Stage

logger = logging.getLogger(__name__)

# A file modified this close to its hashing may change again within the same mtime tick.
_RACY_NS = 2_000_000_000


@dataclass(frozen=True)
class SourceResult:
    source: str
    kind: Literal["file", "url"]
    changed: bool
    offline: bool


def is_url(source: str) -> bool:
    return urlparse(source).scheme in ("http", "https")


def probe(url: str, timeout_s: float) -> Mapping[str, str]:
    """The headers of `url`: a HEAD request, or a GET whose body is not read if HEAD is refused."""
    import requests

    response = requests.head(url, timeout=timeout_s, allow_redirects=True)
    if response.status_code < 400:
        return response.headers
    with requests.get(url, stream=True, timeout=timeout_s) as response:
        response.raise_for_status()
        return response.headers


def url_stamp(
    url: str, timeout_s: float, previous: Mapping[str, Any] | None, key: str = "source"
) -> tuple[dict[str, Any], bool]:
    """(stamp, offline): the server's validators, or the previous stamp when it is unreachable."""
    import requests

    try:
        headers = probe(url, timeout_s)
    except requests.RequestException as exc:
        status = exc.response.status_code if exc.response is not None else None
        unreachable = status is None or status >= 500
        if unreachable and previous is not None and previous.get("source") == url:
            logger.warning(
                "could not reach %s (%s: %s); keeping the stamp of its last check %s: ingest "
                "stays up to date until the server can be asked again",
                url, type(exc).__name__, exc, {k: previous.get(k) for k in VALIDATORS},
            )
            return {k: v for k, v in previous.items() if k not in PREDEFINED_SPLITS}, True
        earlier = " and there is no earlier check of it to keep" if unreachable else ""
        raise DataError(
            f"could not reach {url} ({type(exc).__name__}: {exc}){earlier}; "
            f"{local_copy_hint(key)}"
        ) from exc
    stamp = {"source": url, "kind": "url", **validators(headers)}
    if stamp["etag"] is None and stamp["last_modified"] is None:
        logger.warning(
            "%s gives neither an ETag nor a Last-Modified date: a change there is seen only if "
            "its length changes; `dvc repro --force ingest` downloads it again",
            url,
        )
    return stamp, False


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def hash_cache(paths: ProjectPaths, key: str = "source") -> Path:
    """Where the last hash of the local file that data.<key> names is kept (not a DVC out)."""
    cache = paths.source_hash_cache
    return cache if key == "source" else cache.with_name(f".{key}_hash.json")


def file_stamp(source: str, paths: ProjectPaths, key: str = "source") -> dict[str, Any]:
    """Path, size and sha256 of a local source (the hash reused while size and mtime hold)."""
    path = paths.resolve(source).resolve()
    if not path.is_file():
        raise DataError(f"no file at {path}; set data.{key} to an existing file or a URL")
    stat = path.stat()
    identity = {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    cache = hash_cache(paths, key)
    cached = read_json_object(cache)
    if (
        cached is not None
        and {name: cached.get(name) for name in identity} == identity
        and cached.get("hashed_at_ns", 0) - stat.st_mtime_ns > _RACY_NS
    ):
        digest = cached["sha256"]
    else:
        hashed_at_ns = time.time_ns()
        digest = sha256_of(path)
        write_json(cache, {**identity, "sha256": digest, "hashed_at_ns": hashed_at_ns})
    shown = path.relative_to(paths.root).as_posix() if path.is_relative_to(paths.root) else path
    return {"source": source, "kind": "file", "path": str(shown), "size": stat.st_size,
            "sha256": digest}


def write_stamp(path: Path, stamp: Mapping[str, Any]) -> bool:
    """Write the stamp unless the file already holds these bytes; return whether it changed."""
    text = json.dumps(stamp, indent=2, sort_keys=True) + "\n"
    if path.is_file() and path.read_text() == text:
        return False
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return True


def stamp_of(
    key: str, location: str, config: DataConfig, paths: ProjectPaths,
    previous: Mapping[str, Any] | None,
) -> tuple[dict[str, Any], bool]:
    """(stamp, offline) of the file or URL that data.<key> names."""
    if is_url(location):
        return url_stamp(location, config.download_timeout_s, previous, key)
    return file_stamp(location, paths, key), False


def run(config: DataConfig, paths: ProjectPaths) -> SourceResult:
    previous = read_json_object(paths.source_stamp) or {}
    stamp: dict[str, Any] = {}
    offline = False
    for key, location in config.sources().items():
        earlier = previous if key == "source" else previous.get(key)
        one, off = stamp_of(
            key, location, config, paths, earlier if isinstance(earlier, dict) else None
        )
        if key == "source":
            stamp.update(one)
        else:
            stamp[key] = one
        offline |= off
        logger.info(
            "data.%s %s: %s",
            key, location, {k: v for k, v in one.items() if k not in ("source", "kind")},
        )
    changed = write_stamp(paths.source_stamp, stamp)
    logger.info("source %s %s", config.source, "changed" if changed else "unchanged")
    return SourceResult(source=config.source, kind=stamp["kind"], changed=changed, offline=offline)


STAGE = Stage("source", "data", DataConfig, run)

if __name__ == "__main__":
    runner.main(STAGE)
