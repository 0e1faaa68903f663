"""Ingest stage: read the source that data/raw/source.json names into data/raw/dataset.parquet.

Predefined splits (data.val_source, data.test_source) are read the same way, with the same
format, encoding and columns; their rows follow those of data.source, each with its data.*
key in the `origin` column (present only when a predefined split is set).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pandas as pd

from sentiment_pipeline import runner
from sentiment_pipeline.config.data import ORIGIN, DataConfig
from sentiment_pipeline.data import stamps, tables
from sentiment_pipeline.data.columns import select_columns
from sentiment_pipeline.data.compression import COMPRESSIONS
from sentiment_pipeline.errors import DataError
from sentiment_pipeline.io import atomic_path, write_json, write_parquet
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.runner import Stage

logger = logging.getLogger(__name__)

# What the table reader's messages tell an ingest user to change: the keys of params.yaml.
OPTIONS = tables.TableOptions(
    format="data.format",
    encoding="data.encoding",
    source="data.source",
    columns="data.text_column or data.label_column",
)
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


@dataclass(frozen=True)
class IngestResult:
    rows: int
    columns: int
    source: str
    path: str
    rows_by_source: dict[str, int] = field(default_factory=dict)


def read_table(path: Path, fmt: str = "auto", *, encoding: str = "auto") -> pd.DataFrame:
    """A source file as data.format and data.encoding say (see tables.read_table)."""
    return tables.read_table(path, fmt, encoding=encoding, options=OPTIONS)


def download_name(url: str) -> str:
    """The file name of a URL's download: its last path segment if that is a plain file name.

    Otherwise (empty, too long, "..", other characters) a safe name: a cleaned part of the
    segment, a hash of the URL, and the segment's known extensions (e.g. .csv.gz).
    """
    segment = unquote(urlparse(url).path.rsplit("/", 1)[-1])
    if _PLAIN_NAME.fullmatch(segment):
        return segment
    suffixes = [suffix.lower() for suffix in Path(segment.replace("\0", "_")).suffixes]
    kept: list[str] = []
    if suffixes and suffixes[-1] in COMPRESSIONS:
        kept.append(suffixes.pop())
    if suffixes and suffixes[-1] in tables.EXTENSIONS:
        kept.insert(0, suffixes.pop())
    extension = "".join(kept)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", segment[: len(segment) - len(extension)])
    stem = stem.strip("._-")[:40].strip("._-") or "download"
    digest = hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{stem}-{digest}{extension}"


def download(url: str, target: Path, timeout_s: float, key: str = "source") -> Mapping[str, str]:
    """Stream `url` into `target` (temporary file, then rename); return the response headers."""
    import requests
    from tqdm.auto import tqdm

    try:
        with requests.get(url, stream=True, timeout=timeout_s) as response:
            response.raise_for_status()
            total = int(response.headers.get("Content-Length", 0)) or None
            with (
                atomic_path(target) as tmp,
                tmp.open("wb") as handle,
                tqdm(total=total, unit="B", unit_scale=True, desc=target.name, disable=None) as bar,
            ):
                for chunk in response.iter_content(chunk_size=1 << 16):
                    handle.write(chunk)
                    bar.update(len(chunk))
    except requests.RequestException as exc:
        raise DataError(
            f"could not reach {url} ({type(exc).__name__}: {exc}); "
            f"{stamps.local_copy_hint(key)}"
        ) from exc
    logger.info("downloaded %s to %s (%d bytes)", url, target, target.stat().st_size)
    return response.headers


def fetch(stamp: Mapping[str, Any], folder: Path, timeout_s: float, key: str = "source") -> Path:
    """The local copy of a URL source, downloaded again only when the server's copy changed.

    Each download is recorded in `<name>.http.json` beside it (URL, validators, size); while
    that record matches the stamp's ETag or Last-Modified, the copy is reused without a
    request, so an offline rerun of ingest works too.
    """
    url = stamp["source"]
    target = folder / download_name(url)
    record_path = target.with_name(f"{target.name}.http.json")
    wanted = {name: stamp.get(name) for name in stamps.VALIDATORS}
    if target.is_file() and (wanted["etag"] or wanted["last_modified"]):
        record = stamps.read_json_object(record_path)
        if record == {"source": url, **wanted, "size": target.stat().st_size}:
            logger.info("reusing %s: it has the validators of the stamp %s", target, wanted)
            return target
    record_path.unlink(missing_ok=True)
    got = stamps.validators(download(url, target, timeout_s, key))
    if got != wanted:
        logger.warning(
            "%s changed since the source stage checked it (%s, now %s); the next run stamps "
            "the new copy and ingests it again",
            url, wanted, got,
        )
    write_json(record_path, {"source": url, **got, "size": target.stat().st_size})
    return target


def read_source(
    key: str, location: str, config: DataConfig, paths: ProjectPaths
) -> tuple[pd.DataFrame, int]:
    """(raw contract, columns in the file) of the file or URL data.<key> names, as stamped."""
    stamp = stamps.read_stamp(paths, location, key)
    if stamp["kind"] == "url":
        if config.format == "auto":
            _check_url_format(location)
        # Each predefined split downloads into its own folder: two URLs may end in one name.
        folder = paths.downloads_dir if key == "source" else paths.downloads_dir / key
        source_file = fetch(stamp, folder, config.download_timeout_s, key)
    else:
        source_file = paths.resolve(stamp["path"])
    frame = read_table(source_file, config.format, encoding=config.encoding)
    return select_columns(frame, config, str(source_file)), frame.shape[1]


def combine(raws: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """One raw dataset: data.source's rows alone, or every source's with its key in `origin`."""
    if list(raws) == ["source"]:
        return raws["source"]
    parts = [raw.assign(**{ORIGIN: key}) for key, raw in raws.items()]
    return pd.concat(parts, ignore_index=True)


def run(config: DataConfig, paths: ProjectPaths) -> IngestResult:
    from sentiment_pipeline import tracking

    tables.codec_of(config.encoding, OPTIONS)  # an unknown codec fails before any download
    raws: dict[str, pd.DataFrame] = {}
    columns = 0
    for key, location in config.sources().items():
        raws[key], found = read_source(key, location, config, paths)
        columns = columns or found
    raw = combine(raws)
    rows = {key: len(part) for key, part in raws.items()}
    with tracking.stage_run(STAGE.name, config, paths):
        tracking.log_metrics(
            {
                "rows": len(raw),
                "columns": columns,
                "undecodable_rows": int(raw["undecodable"].sum()),
                **{f"{key}_rows": n for key, n in rows.items() if key != "source"},
            }
        )
        write_parquet(paths.raw_dataset, raw)
    logger.info("ingested %s rows from %s into %s", rows, config.sources(), paths.raw_dataset)
    return IngestResult(
        rows=len(raw),
        columns=columns,
        source=config.source,
        path=str(paths.raw_dataset),
        rows_by_source=rows,
    )


def _check_url_format(url: str) -> None:
    try:
        tables.detect_format(download_name(url), OPTIONS)
    except DataError as exc:
        segment = unquote(urlparse(url).path.rsplit("/", 1)[-1])
        raise DataError(
            f"cannot tell the format of {url} from its name ({segment!r}); set data.format "
            f"to one of {', '.join(tables.FORMATS)}"
        ) from exc


STAGE = Stage("ingest", "data", DataConfig, run)

if __name__ == "__main__":
    runner.main(STAGE)
