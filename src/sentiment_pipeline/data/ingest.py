"""Ingest stage: read the source that data/raw/source.json names into data/raw/dataset.parquet.

Predefined splits (data.val_source, data.test_source) are read the same way, with the same
format, encoding and columns; their rows follow those of data.source, each with its data.*
key in the `origin` column (present only when a predefined split is set).
"""

from __future__ import annotations

import bz2
import codecs
import contextlib
import csv
import gzip
import hashlib
import io
import json
import logging
import lzma
import numbers
import re
import warnings
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlparse

import pandas as pd

from sentiment_pipeline import runner
from sentiment_pipeline.config.data import ORIGIN, DataConfig
from sentiment_pipeline.data import stamps
from sentiment_pipeline.data.values import (
    as_text,
    escape_undecodable,
    has_undecodable,
    is_missing,
    map_values,
    value_type,
)
from sentiment_pipeline.errors import ConfigError, DataError
from sentiment_pipeline.io import atomic_path, write_json, write_parquet
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.runner import Stage

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
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
# Read with errors="surrogateescape": a byte that does not decode becomes a lone surrogate, so a
# bad row is found (and rejected by validation) instead of failing the whole file.
_DECODE_ERRORS = "surrogateescape"
_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
_OTHER_BOMS = {
    b"\xff\xfe\x00\x00": "utf-32",
    b"\x00\x00\xfe\xff": "utf-32",
    b"\xff\xfe": "utf-16",
    b"\xfe\xff": "utf-16",
}
_SEPARATORS = {",": "commas (',')", "\t": "tabs", ";": "semicolons (';')", "|": "pipes ('|')"}
_SEPARATED_FORMATS = {",": "csv", "\t": "tsv"}
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


@dataclass(frozen=True)
class IngestResult:
    rows: int
    columns: int
    source: str
    path: str
    rows_by_source: dict[str, int] = field(default_factory=dict)


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


def codec_of(encoding: str) -> str:
    """The Python codec that data.encoding names ("auto": UTF-8, a BOM skipped)."""
    if encoding == "auto":
        return "utf-8-sig"
    try:
        b"a".decode(encoding)  # b"" would not even look the codec up
    except UnicodeError:  # a codec that needs more than one byte (utf-16)
        pass
    except LookupError as exc:
        raise ConfigError(
            f"data.encoding {encoding!r} is not a text encoding Python knows ({exc}); use auto "
            "(UTF-8) or a codec name such as latin-1, cp1252 or utf-16 "
            "(https://docs.python.org/3/library/codecs.html#standard-encodings)"
        ) from exc
    return encoding


def read_table(path: Path, fmt: str = "auto", *, encoding: str = "auto") -> pd.DataFrame:
    """Read a csv/tsv/parquet/jsonl file; every CSV/TSV field is read as a string.

    In CSV/TSV only empty fields are missing: "NA" or "null" is a legitimate text. Text is
    decoded with data.encoding (`encoding`); a byte that does not decode is kept as a lone
    surrogate (errors="surrogateescape"), for validation to reject its row (bad_encoding).
    Columns of Python objects (dtype object), as pandas' Arrow strings cannot hold those.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no file at {path}; set data.source to an existing file or a URL")
    chosen = fmt
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt not in FORMATS:
        raise DataError(f"unknown format {fmt!r} for {path}; accepted: {', '.join(FORMATS)}")
    codec = codec_of(encoding)
    if fmt != "parquet" and encoding == "auto":
        _refuse_other_boms(path)
    try:
        if fmt in ("csv", "tsv"):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", pd.errors.ParserWarning)
                frame = pd.read_csv(
                    path,
                    sep="," if fmt == "csv" else "\t",
                    dtype=object,
                    index_col=False,  # a first row with an extra field must not shift columns
                    keep_default_na=False,
                    na_values=[""],
                    encoding=codec,
                    encoding_errors=_DECODE_ERRORS,
                )
            if frame.shape[1] == 1:  # every table we read has a text and a label column
                _check_separator(path, fmt, chosen, codec, header=str(frame.columns[0]))
            for warning in caught:
                logger.warning("reading %s: %s", path, warning.message)
            _warn_repeated_header(path, "," if fmt == "csv" else "\t", codec)
            return frame
        if fmt == "parquet":
            _refuse_repeated_columns(path)
            return pd.read_parquet(path)
        return read_json_lines(path, codec)
    except DataError:
        raise
    except Exception as exc:  # every parser (pandas, pyarrow, json) has its own errors
        if fmt in ("csv", "tsv"):
            _check_separator(path, fmt, chosen, codec)
        fix = "check the file or set data.format"
        if isinstance(exc, UnicodeError):
            fix = f"check data.encoding ({encoding})"
        raise DataError(f"cannot read {path} as {fmt}: {type(exc).__name__}: {exc}; {fix}") from exc


def read_json_lines(path: Path, codec: str) -> pd.DataFrame:
    """One row per line holding a JSON object; values stay what they are (str, int, dict, list).

    Parsed here rather than by pandas, whose JSON reader refuses undecodable bytes.
    """
    records = []
    with open_binary(path) as raw:
        text = io.TextIOWrapper(raw, encoding=codec, errors=_DECODE_ERRORS, newline="")
        for number, line in enumerate(text, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"line {number} of {path} is not JSON ({exc.msg.removesuffix(' at')}, "
                    f"column {exc.colno}: {escape_undecodable(line.rstrip()[:60])!r}); each line "
                    "must hold one JSON object"
                ) from exc
            if not isinstance(record, dict):
                raise DataError(
                    f"line {number} of {path} holds a JSON {value_type(record) or 'null'}, "
                    "expected an object such as {\"text\": \"...\", \"label\": \"...\"}"
                )
            records.append(record)
    if not records:
        raise DataError(f"{path} holds no JSON objects; check data.source")
    return pd.DataFrame(records, dtype=object)


def _warn_repeated_header(path: Path, sep: str, codec: str) -> None:
    """pandas renames a repeated column name (text, text.1): say so, as the first one is used."""
    head = head_bytes(path, 1 << 16)
    try:
        text = codecs.getincrementaldecoder(codec)(_DECODE_ERRORS).decode(head, final=False)
        header = next(csv.reader(io.StringIO(text, newline=""), delimiter=sep), [])
    except (UnicodeError, csv.Error):  # the reader has read the file: this is only a look
        return
    repeated = sorted({name for name in header if header.count(name) > 1})
    for name in repeated:
        copies = [name] + [f"{name}.{i}" for i in range(1, header.count(name))]
        logger.warning(
            "%s has %d columns named %r, read as %s: data.text_column or data.label_column %r "
            "means the first; rename the columns to choose another",
            path, len(copies), name, copies, name,
        )


def _refuse_repeated_columns(path: Path) -> None:
    """Parquet may hold two columns of one name; pyarrow then fails with an obscure message."""
    import pyarrow.parquet as pq

    names = pq.read_schema(path).names
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise DataError(
            f"{path} holds more than one column named {', '.join(map(repr, repeated))} "
            f"(columns {names}); column names must be unique: rename or drop the copies"
        )


@contextlib.contextmanager
def open_binary(path: Path) -> Iterator[IO[bytes]]:
    """The bytes of a file, decompressed as its last suffix says (.gz .bz2 .xz .zip .zst)."""
    suffix = path.suffix.lower()
    if suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            names = [name for name in archive.namelist() if not name.endswith("/")]
            if len(names) != 1:
                raise DataError(
                    f"{path} holds {len(names)} files {names[:5]}; a .zip source must hold one"
                )
            with archive.open(names[0]) as handle:
                yield handle
    elif suffix == ".zst":
        try:
            import zstandard
        except ImportError as exc:
            raise DataError(f"reading {path} needs the zstandard package") from exc
        with path.open("rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as handle:
            yield handle
    else:
        with _OPENERS.get(suffix, open)(path, "rb") as handle:
            yield handle


def head_bytes(path: Path, size: int) -> bytes:
    """The first `size` bytes of a file, decompressed (b"" when it cannot be read)."""
    try:
        with open_binary(path) as handle:
            return handle.read(size)
    except Exception:  # a best-effort look: the reader itself reports a broken file
        return b""


def _refuse_other_boms(path: Path) -> None:
    """data.encoding auto reads UTF-8: a UTF-16/32 byte-order mark says to name the encoding."""
    head = head_bytes(path, 4)
    for bom, codec in _OTHER_BOMS.items():
        if head.startswith(bom):
            raise DataError(
                f"{path} starts with a {codec.upper()} byte-order mark, but data.encoding=auto "
                f"reads UTF-8; set data.encoding={codec}"
            )


def sniff_separator(path: Path, codec: str, lines: int = 20) -> str | None:
    """The separator (one of , tab ; |) that the first lines of a text table use, if clear."""
    size = 1 << 16
    head = head_bytes(path, size)
    try:  # final=False: a character cut at the end of the sample is left out, not an error
        text = codecs.getincrementaldecoder(codec)(_DECODE_ERRORS).decode(head, final=False)
    except UnicodeError:  # e.g. utf-16 without a byte-order mark
        return None
    sample = text.splitlines()[: -1 if len(head) == size else None][:lines]
    try:
        return csv.Sniffer().sniff("\n".join(sample), delimiters="".join(_SEPARATORS)).delimiter
    except csv.Error:
        return None


def _check_separator(path: Path, fmt: str, chosen: str, codec: str, header: str = "") -> None:
    """Raise a DataError naming the separator a CSV/TSV really uses when it is not `fmt`'s."""
    expected = "," if fmt == "csv" else "\t"
    found = sniff_separator(path, codec)
    if found is None and header:  # the header line alone: its most frequent separator
        found = max(_SEPARATORS, key=header.count)
    if found is None or found == expected or (header and found not in header):
        return
    how = "data.format=auto, from the extension" if chosen == "auto" else f"data.format={fmt}"
    if found in _SEPARATED_FORMATS:
        fix = f"set data.format={_SEPARATED_FORMATS[found]}"
    else:
        fix = (
            "data.format reads comma-separated (csv) and tab-separated (tsv) files: save the "
            "file with one of those separators"
        )
    raise DataError(
        f"{path} looks separated by {_SEPARATORS[found]}, but it was read as {fmt} ({how}), "
        f"which is separated by {_SEPARATORS[expected]}; {fix}"
    )


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
    if suffixes and suffixes[-1] in _COMPRESSIONS:
        kept.append(suffixes.pop())
    if suffixes and suffixes[-1] in _EXTENSIONS:
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


def select_columns(frame: pd.DataFrame, config: DataConfig, where: str) -> pd.DataFrame:
    """The raw contract from the configured source columns, one row per source row.

    `text`: the text; a value that is not a string as its JSON text, its type in `text_type`
    ("string", "number", "object", "array", ...; null when missing). `label`: the label as an
    exact string. `undecodable`: the text or label held bytes that data.encoding does not
    decode, shown as \\xNN escapes. Validation rejects what is flagged here; nothing is dropped.
    """
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
    frame = frame.reset_index(drop=True)  # row numbers in messages count from 0
    values = frame[config.text_column]
    _check_holds_text(values, config.text_column, where)
    texts = map_values(values, as_text)
    labels = map_values(frame[config.label_column], label_string)
    undecodable = _undecodable(texts) | _undecodable(labels)
    raw = pd.DataFrame(
        {
            "text": map_values(texts, _escaped).astype("str"),
            "label": map_values(labels, _escaped).astype("str"),
            "text_type": map_values(values, value_type).astype("str"),
            "undecodable": undecodable.astype(bool),
        }
    )
    _warn_flagged(raw, where, config.encoding)
    return raw.reset_index(drop=True)


def _undecodable(column: pd.Series) -> pd.Series:
    return column.map(lambda v: isinstance(v, str) and has_undecodable(v)).astype(bool)


def _escaped(value: object) -> str | None:
    return escape_undecodable(value) if isinstance(value, str) else None


def _check_holds_text(values: pd.Series, column: str, where: str) -> None:
    """A text column of numbers only (an id or score column) is a configuration mistake."""
    present = values[~values.map(is_missing).astype(bool)]
    if present.empty:
        return
    numeric = present.map(
        lambda v: value_type(v) in ("number", "boolean")
        or (isinstance(v, str) and _NUMBER.fullmatch(v.strip()) is not None)
    ).astype(bool)
    if numeric.all():
        raise DataError(
            f"the column {column!r} in {where} holds only numbers or booleans (e.g. "
            f"{present.iloc[0]!r}), no text; check that data.text_column names the column "
            "holding the text"
        )


def _warn_flagged(raw: pd.DataFrame, where: str, encoding: str) -> None:
    """Say at ingest time what validation will reject: undecodable rows, non-string texts."""
    bad = raw.index[raw["undecodable"]]
    if len(bad):
        example = raw.at[bad[0], "text"]  # shortened: a text may be megabytes long
        logger.warning(
            "%d rows of %s hold bytes that do not decode as %s (e.g. row %d: %r); validation "
            "rejects them as bad_encoding; if the whole file is in another encoding, set "
            "data.encoding",
            len(bad), where, "UTF-8" if encoding == "auto" else encoding, bad[0],
            example[:80] if isinstance(example, str) else example,
        )
    odd = raw.index[raw["text_type"].notna() & (raw["text_type"] != "string")]
    if len(odd):
        logger.warning(
            "%d values of the text column in %s are not strings (e.g. row %d, %s %s); "
            "validation rejects them as non_string_text",
            len(odd), where, odd[0], raw.at[odd[0], "text_type"], raw.at[odd[0], "text"][:80],
        )


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

    codec_of(config.encoding)  # an unknown codec fails before any download
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
        detect_format(download_name(url))
    except DataError as exc:
        segment = unquote(urlparse(url).path.rsplit("/", 1)[-1])
        raise DataError(
            f"cannot tell the format of {url} from its name ({segment!r}); set data.format "
            f"to one of {', '.join(FORMATS)}"
        ) from exc


STAGE = Stage("ingest", "data", DataConfig, run)

if __name__ == "__main__":
    runner.main(STAGE)
