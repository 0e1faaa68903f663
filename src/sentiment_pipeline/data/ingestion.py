"""Ingest stage: read the source that data/raw/source.json names into data/raw/dataset.parquet."""

from __future__ import annotations

import logging
import numbers
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pandas as pd

from sentiment_pipeline import runner
from sentiment_pipeline.config.entities import DataConfig, PipelineConfig
from sentiment_pipeline.data import source as data_source
from sentiment_pipeline.data.values import is_missing
from sentiment_pipeline.errors import DataError
from sentiment_pipeline.io import atomic_path, write_json, write_parquet
from sentiment_pipeline.paths import ProjectPaths

logger = logging.getLogger(__name__)

FORMATS = ("csv", "tsv", "parquet", "jsonl")
_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
_COMPRESSIONS = (".gz", ".bz2", ".xz", ".zip", ".zst")
_INTEGRAL = re.compile(r"[+-]?\d+(\.0*)?")


@dataclass(frozen=True)
class IngestResult:
    rows: int
    columns: int
    source: str
    path: str


def detect_format(path: Path | str) -> str:
    """The format of a file from its extension (a compression suffix such as .gz is skipped)."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] in _COMPRESSIONS:
        suffixes.pop()
    fmt = _EXTENSIONS.get(suffixes[-1]) if suffixes else None
    if fmt is None:
        found = "".join(Path(path).suffixes) or "no extension"
        raise DataError(
            f"cannot tell the format of {path} from its extension ({found}); accepted formats: "
            f"{', '.join(FORMATS)} (extensions {', '.join(_EXTENSIONS)}, optionally with "
            f"{'/'.join(_COMPRESSIONS)}); rename the file or set data.format"
        )
    return fmt


def read_table(
    path: Path, fmt: str = "auto", *, str_columns: Sequence[str] = ()
) -> pd.DataFrame:
    """Read a csv/tsv/parquet/jsonl file; `str_columns` of a CSV/TSV are read as strings.

    In CSV/TSV only empty fields are missing: "NA" or "null" is a legitimate text.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no file at {path}; set data.source to an existing file or a URL")
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt not in FORMATS:
        raise DataError(f"unknown format {fmt!r} for {path}; accepted: {', '.join(FORMATS)}")
    try:
        if fmt in ("csv", "tsv"):
            return pd.read_csv(
                path,
                sep="," if fmt == "csv" else "\t",
                dtype={column: str for column in str_columns},
                keep_default_na=False,
                na_values=[""],
            )
        if fmt == "parquet":
            return pd.read_parquet(path)
        return pd.read_json(path, lines=True, dtype=False)
    except Exception as exc:  # every parser (pandas, pyarrow, json) has its own errors
        raise DataError(
            f"cannot read {path} as {fmt}: {type(exc).__name__}: {exc}; "
            "check the file or set data.format"
        ) from exc


def download(url: str, target: Path, timeout_s: float) -> Mapping[str, str]:
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
            f"could not reach {url} ({type(exc).__name__}: {exc}); {data_source.LOCAL_COPY_HINT}"
        ) from exc
    logger.info("downloaded %s to %s (%d bytes)", url, target, target.stat().st_size)
    return response.headers


def fetch(stamp: Mapping[str, Any], folder: Path, timeout_s: float) -> Path:
    """The local copy of a URL source, downloaded again only when the server's copy changed.

    Each download is recorded in `<name>.http.json` beside it (URL, validators, size); while
    that record matches the stamp's ETag or Last-Modified, the copy is reused without a
    request, so an offline rerun of ingest works too.
    """
    url = stamp["source"]
    target = folder / (Path(unquote(urlparse(url).path)).name or "download")
    record_path = target.with_name(f"{target.name}.http.json")
    wanted = {name: stamp.get(name) for name in data_source.VALIDATORS}
    if target.is_file() and (wanted["etag"] or wanted["last_modified"]):
        record = data_source.read_json_object(record_path)
        if record == {"source": url, **wanted, "size": target.stat().st_size}:
            logger.info("reusing %s: it has the validators of the stamp %s", target, wanted)
            return target
    record_path.unlink(missing_ok=True)
    got = data_source.validators(download(url, target, timeout_s))
    if got != wanted:
        logger.warning(
            "%s changed since the source stage checked it (%s, now %s); the next run stamps "
            "the new copy and ingests it again",
            url, wanted, got,
        )
    write_json(record_path, {"source": url, **got, "size": target.stat().st_size})
    return target


def label_string(value: object) -> str | None:
    """A raw label as an exact string: -1, -1.0 and "-1" all give "-1"; missing stays None."""
    if is_missing(value):
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    text = str(value).strip()
    if _INTEGRAL.fullmatch(text):
        return str(int(text.split(".")[0]))
    return text


def _storable_text(column: pd.Series, where: str) -> pd.Series:
    """The text column as read, unless it mixes strings with other values.

    Parquet cannot hold a column of mixed types, so such values are stored as their text.
    """
    if not pd.api.types.is_object_dtype(column.dtype):
        return column
    odd = column.map(lambda v: not isinstance(v, str) and not is_missing(v))
    if not odd.any():
        return column
    example = column[odd].iloc[0]
    logger.warning(
        "%d values of the text column in %s are not strings (e.g. %r); storing them as text",
        int(odd.sum()),
        where,
        example,
    )
    return column.where(~odd, column[odd].map(str))


def select_columns(frame: pd.DataFrame, config: DataConfig, where: str) -> pd.DataFrame:
    """The `text` and `label` columns of the raw contract from the configured source columns."""
    problems = [
        f"expected a column {column!r} in {where}, found {list(frame.columns)}; set data.{key}"
        for key, column in (
            ("text_column", config.text_column),
            ("label_column", config.label_column),
        )
        if column not in frame.columns
    ]
    if problems:
        raise DataError("; ".join(problems))
    labels = frame[config.label_column].map(label_string).astype("str")
    return pd.DataFrame(
        {"text": _storable_text(frame[config.text_column], where), "label": labels}
    )


def run(config: DataConfig, paths: ProjectPaths) -> IngestResult:
    from sentiment_pipeline import tracking

    stamp = data_source.read_stamp(paths, config.source)
    if stamp["kind"] == "url":
        source_file = fetch(stamp, paths.downloads_dir, config.download_timeout_s)
    else:
        source_file = paths.resolve(stamp["path"])
    frame = read_table(source_file, config.format, str_columns=[config.label_column])
    raw = select_columns(frame, config, str(source_file))
    with tracking.stage_run("ingest", config, paths):
        tracking.log_metrics({"rows": len(raw), "columns": frame.shape[1]})
        write_parquet(paths.raw_dataset, raw)
    logger.info("ingested %d rows from %s into %s", len(raw), config.source, paths.raw_dataset)
    return IngestResult(
        rows=len(raw),
        columns=frame.shape[1],
        source=config.source,
        path=str(paths.raw_dataset),
    )


def section(config: PipelineConfig) -> DataConfig:
    return config.data


def main() -> None:
    runner.main("ingest", run, section)


if __name__ == "__main__":
    main()
