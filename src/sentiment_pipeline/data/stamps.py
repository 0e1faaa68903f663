"""data/raw/source.json: what the source stage stamps and ingest reads (the HTTP validators)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sentiment_pipeline.errors import DataError
from sentiment_pipeline.paths import ProjectPaths

VALIDATORS = ("etag", "last_modified", "content_length")


def local_copy_hint(key: str = "source") -> str:
    """What to do when the URL that data.<key> names cannot be reached."""
    return (
        f"check the network, or download the file and point data.{key} at the local copy, "
        f"e.g. --set data.{key}=path/to/file.csv"
    )


def validators(headers: Mapping[str, str]) -> dict[str, Any]:
    """What an HTTP response says about the identity of its body."""
    length = headers.get("Content-Length")
    return {
        "etag": headers.get("ETag"),
        "last_modified": headers.get("Last-Modified"),
        "content_length": int(length) if length and length.isdigit() else None,
    }


def read_stamp(paths: ProjectPaths, source: str, key: str = "source") -> dict[str, Any]:
    """The stamp the source stage wrote for data.<key> = `source` (what ingest reads)."""
    stamp = read_json_object(paths.source_stamp)
    if stamp is None:
        raise DataError(
            f"no readable source stamp at {paths.source_stamp}; run the source stage first"
        )
    if key != "source":
        stamp = stamp.get(key)
        if not isinstance(stamp, dict):
            raise DataError(
                f"{paths.source_stamp} has no stamp of data.{key} ({source!r}); run the source "
                "stage first"
            )
    if stamp.get("source") != source:
        raise DataError(
            f"{paths.source_stamp} is for {stamp.get('source')!r}, but data.{key} is "
            f"{source!r}; run the source stage first"
        )
    return stamp


def read_json_object(path: Path) -> dict[str, Any] | None:
    """A JSON object from `path`, or None when it is absent or not one (then it is rewritten)."""
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None
