"""Ingest stage: read the labelled source (local file or URL) into data/raw/dataset.parquet."""

from __future__ import annotations

import logging
import math
import numbers
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import pandas as pd

from sentiment_pipeline import stages
from sentiment_pipeline.config.entities import DataConfig
from sentiment_pipeline.errors import DataError
from sentiment_pipeline.io import atomic_path, write_parquet
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


def is_url(source: str) -> bool:
    return urlparse(source).scheme in ("http", "https")


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
        ) from None


def download(url: str, folder: Path, timeout_s: float) -> Path:
    """Stream `url` into `folder` (temporary file, then rename) and return the file."""
    import requests
    from tqdm.auto import tqdm

    name = Path(unquote(urlparse(url).path)).name or "download"
    target = folder / name
    try:
        with requests.get(url, stream=True, timeout=timeout_s) as response:
            response.raise_for_status()
            total = int(response.headers.get("Content-Length", 0)) or None
            with (
                atomic_path(target) as tmp,
                tmp.open("wb") as handle,
                tqdm(total=total, unit="B", unit_scale=True, desc=name, disable=None) as bar,
            ):
                for chunk in response.iter_content(chunk_size=1 << 16):
                    handle.write(chunk)
                    bar.update(len(chunk))
    except requests.RequestException as exc:
        raise DataError(
            f"could not reach {url} ({type(exc).__name__}: {exc}); check the network, or "
            "download the file and point data.source at the local copy, e.g. "
            "--set data.source=path/to/file.csv"
        ) from None
    logger.info("downloaded %s to %s (%d bytes)", url, target, target.stat().st_size)
    return target


def is_missing(value: object) -> bool:
    """None, NaN or pd.NA (scalar-safe: a list is not missing)."""
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


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

    if is_url(config.source):
        source_file = download(
            config.source, paths.raw_dataset.parent / "downloads", config.download_timeout_s
        )
    else:
        source_file = paths.resolve(config.source)
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


def main() -> None:
    stages.main("ingest")


if __name__ == "__main__":
    main()
