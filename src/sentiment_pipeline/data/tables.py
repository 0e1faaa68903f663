"""The one reader of table files (csv, tsv, parquet, jsonl) for ingest, predict and analyze."""

from __future__ import annotations

import io
import json
import logging
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pandas as pd

from sentiment_pipeline.data import parquet
from sentiment_pipeline.data.budget import UNBOUNDED, Budget, Meter, MeteredStream
from sentiment_pipeline.data.compression import (
    COMPRESSIONS,
    compression_of,
    decompressed,
    open_binary,
)
from sentiment_pipeline.data.table_checks import (
    SEPARATORS,
    TableFile,
    TableOptions,
    check_byte_order_mark,
    check_first_frame,
    check_separator,
    undecodable_error,
)
from sentiment_pipeline.data.values import escape_undecodable, has_undecodable, value_type
from sentiment_pipeline.errors import ConfigError, DataError, shortened

logger = logging.getLogger(__name__)

FORMATS = ("csv", "tsv", "parquet", "jsonl")
EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
DEFAULT_CHUNK_SIZE = 10_000
# Whole tables are read with errors="surrogateescape": a byte that does not decode becomes a
# lone surrogate, so a bad row is found (and flagged by the caller) instead of failing the file.
_DECODE_ERRORS = "surrogateescape"
# Options that both readers give pandas: in CSV/TSV only an empty field is missing ("NA" or
# "null" is a legitimate text), and a first row with an extra field must not shift the columns.
_CSV_OPTIONS: dict[str, Any] = {"keep_default_na": False, "na_values": [""], "index_col": False}


@dataclass(frozen=True)
class Chunk:
    frame: pd.DataFrame
    first_row: int  # 0-based data row of the chunk's first row
    done: float | None  # share of the file read so far (bytes), None when unknown


def detect_format(name: Path | str, options: TableOptions) -> str:
    """The format of a file from its extension (a compression suffix such as .gz is skipped)."""
    suffixes = [s.lower() for s in Path(name).suffixes]
    if suffixes and suffixes[-1] in COMPRESSIONS:
        suffixes.pop()
    fmt = EXTENSIONS.get(suffixes[-1]) if suffixes else None
    if fmt is None:
        found = shortened("".join(Path(name).suffixes)) or "no extension"
        raise DataError(
            f"cannot tell the format of {name} from its extension ({found}); accepted formats: "
            f"{', '.join(FORMATS)} (extensions {', '.join(EXTENSIONS)}, optionally with "
            f"{'/'.join(COMPRESSIONS)}); rename the file or {options.change(options.format)}"
        )
    return fmt


def resolve_format(name: Path | str, fmt: str, options: TableOptions) -> str:
    """`fmt` if it is one of FORMATS; "auto": the format of the name's extension."""
    if fmt == "auto":
        return detect_format(name, options)
    if fmt not in FORMATS:
        raise DataError(
            f"{options.format} {shortened(fmt)!r} is not supported; accepted: auto, "
            f"{', '.join(FORMATS)}"
        )
    return fmt


def codec_of(encoding: str, options: TableOptions) -> str:
    """The Python codec an encoding names ("auto": UTF-8, a byte-order mark skipped)."""
    if encoding == "auto":
        return "utf-8-sig"
    try:
        b"a".decode(encoding)  # b"" would not even look the codec up
    except UnicodeError:  # a codec that needs more than one byte (utf-16)
        pass
    except LookupError as exc:
        raise ConfigError(
            f"{options.encoding} {shortened(encoding)!r} is not a text encoding Python knows "
            f"({shortened(str(exc))}); use "
            "auto (UTF-8) or a codec name such as latin-1, cp1252 or utf-16 "
            "(https://docs.python.org/3/library/codecs.html#standard-encodings)"
        ) from exc
    return encoding


def _table(
    path: Path, fmt: str, encoding: str, options: TableOptions, name: str | None
) -> TableFile:
    path = Path(path)
    name = name or str(path)
    if not path.is_file():
        raise DataError(f"no file at {name}; check {options.source}")
    resolved = resolve_format(name, fmt, options)
    table = TableFile(path, name, fmt, resolved, encoding, codec_of(encoding, options), options)
    if resolved == "parquet" and compression_of(path):
        raise DataError(
            f"{name} is compressed, but a Parquet file compresses its columns itself and is "
            f"read as it is; decompress it (or {options.change(options.format)} if it is not "
            "Parquet)"
        )
    if resolved != "parquet" and encoding == "auto":
        check_byte_order_mark(table)
    return table


def read_table(
    path: Path,
    fmt: str = "auto",
    *,
    encoding: str = "auto",
    options: TableOptions,
    name: str | None = None,
    budget: Budget = UNBOUNDED,
) -> pd.DataFrame:
    """A whole csv/tsv/parquet/jsonl file; every CSV/TSV field is read as a string.

    `name` is what messages call the file (default: its path). Text is decoded with
    `encoding`; a byte that does not decode is kept as a lone surrogate
    (errors="surrogateescape") for the caller to flag its row. Columns of Python objects
    (dtype object), as pandas' Arrow strings cannot hold those. A blank line is no row.
    `budget`: the decoded bytes and rows the file may hold, counted as they are read
    (decompressed, Parquet dictionaries expanded); passing it raises OverBudget at once,
    before the table is whole.
    """
    table = _table(path, fmt, encoding, options, name)
    meter = Meter(budget, table.name)
    try:
        if table.format in SEPARATORS:
            return _read_separated(table, meter)
        if table.format == "parquet":
            return parquet.read_whole(table, meter).to_pandas()
        return _read_json_lines(table, meter)
    except DataError:
        raise
    except Exception as exc:  # every parser (pandas, pyarrow, json) has its own errors
        meter.check()  # a refusal of the budget that the parser wrapped
        if table.format in SEPARATORS:
            check_separator(table)
        fix = f"check the file or {options.change(options.format)}"
        if isinstance(exc, UnicodeError):
            fix = f"check {options.encoding} ({encoding})"
        raise DataError(
            f"cannot read {table.name} as {table.format}: {type(exc).__name__}: "
            f"{shortened(str(exc), 200)}; {fix}"
        ) from exc


def _read_separated(table: TableFile, meter: Meter) -> pd.DataFrame:
    rows = meter.budget.max_rows
    with (
        open_binary(table.path, table.name) as handle,
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always", pd.errors.ParserWarning)
        frame = pd.read_csv(
            MeteredStream(handle, meter),
            sep=SEPARATORS[table.format],
            dtype=object,
            encoding=table.codec,
            encoding_errors=_DECODE_ERRORS,
            nrows=None if rows is None else rows + 1,  # one more than allowed: refused below
            **_CSV_OPTIONS,
        )
    meter.add_rows(len(frame))
    check_first_frame(table, frame)
    _log(table, caught)
    return frame


def _log(table: TableFile, caught: Iterable[warnings.WarningMessage]) -> None:
    for warning in caught:
        logger.warning("reading %s: %s", table.name, warning.message)


def _read_json_lines(table: TableFile, meter: Meter) -> pd.DataFrame:
    """One row per line holding a JSON object; values stay what they are (str, int, dict, list).

    Parsed here rather than by pandas, whose JSON reader refuses undecodable bytes.
    """
    records = []
    with open_binary(table.path, table.name) as raw:
        text = io.TextIOWrapper(
            MeteredStream(raw, meter, json=True), encoding=table.codec, errors=_DECODE_ERRORS,
            newline="",
        )
        for number, line in enumerate(text, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"line {number} of {table.name} is not JSON ({exc.msg.removesuffix(' at')}, "
                    f"column {exc.colno}: {escape_undecodable(line.rstrip()[:60])!r}); each line "
                    "must hold one JSON object"
                ) from exc
            if not isinstance(record, dict):
                raise DataError(
                    f"line {number} of {table.name} holds a JSON {value_type(record) or 'null'}, "
                    "expected an object such as {\"text\": \"...\", \"label\": \"...\"}"
                )
            meter.add_rows(1)
            records.append(record)
    if not records:
        raise DataError(f"{table.name} holds no JSON objects; check {table.options.source}")
    return pd.DataFrame(records, dtype=object)


def read_chunks(
    path: Path,
    fmt: str = "auto",
    *,
    encoding: str = "auto",
    options: TableOptions,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    name: str | None = None,
    budget: Budget = UNBOUNDED,
) -> Iterator[Chunk]:
    """The rows of a csv/tsv/parquet/jsonl file, `chunk_size` at a time, in order.

    The chunks hold text only: a byte that does not decode, or a JSON escape of half a UTF-16
    pair, is an error naming its line or row. Every CSV/TSV line is a row (a blank one is a
    missing value), so a one-column file gives one row per line. Parquet keeps its Arrow
    types; JSON lines get one nullable type per column. `budget` bounds each chunk's decoded
    bytes (and rows), counted as they are read: passing it raises OverBudget naming the chunk.
    """
    table = _table(path, fmt, encoding, options, name)
    meter = Meter(budget, table.name)
    if table.format == "parquet":
        return _parquet_chunks(table, chunk_size, meter)
    return _text_chunks(table, chunk_size, meter)


def _parquet_chunks(table: TableFile, chunk_size: int, meter: Meter) -> Iterator[Chunk]:
    for rows, first in parquet.chunks(table, meter, chunk_size):
        # Arrow types kept as they are: a column keeps its type from input to output.
        yield Chunk(rows.to_pandas(types_mapper=pd.ArrowDtype), first, None)


def row_count(path: Path, fmt: str, options: TableOptions) -> int | None:
    """The number of rows, where the file says it without being read (Parquet); else None."""
    if fmt != "parquet":
        return None
    table = _table(path, fmt, "auto", options, None)
    with table.path.open("rb") as handle:
        return parquet.open_file(table, handle).metadata.num_rows


def _pandas_chunks(table: TableFile, handle: IO[bytes], chunk_size: int) -> Any:
    if table.format == "jsonl":
        # numpy_nullable keeps integers with gaps as integers instead of floats.
        return pd.read_json(
            handle,
            lines=True,
            chunksize=chunk_size,
            dtype=False,
            encoding=table.codec,
            dtype_backend="numpy_nullable",
        )
    # Every column as text: a chunk cannot know what later chunks hold, and CSV is text anyway.
    # Every line is a row: in a file of one column, an empty or all-blank line is a blank text
    # (pandas would drop it, and the output would have a row less than the input).
    return pd.read_csv(
        handle,
        sep=SEPARATORS[table.format],
        chunksize=chunk_size,
        dtype="string",
        skip_blank_lines=False,
        encoding=table.codec,
        **_CSV_OPTIONS,
    )


def _text_chunks(table: TableFile, chunk_size: int, meter: Meter) -> Iterator[Chunk]:
    size = table.path.stat().st_size or 1
    rows = 0
    with table.path.open("rb") as raw:
        try:
            with decompressed(raw, table.path, table.name) as handle, _pandas_chunks(
                table, MeteredStream(handle, meter, json=table.format == "jsonl"), chunk_size
            ) as reader:
                while True:
                    meter.restart(rows)
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always", pd.errors.ParserWarning)
                        frame = next(reader, None)
                    _log(table, caught)
                    if frame is None:
                        return
                    if rows == 0 and table.format in SEPARATORS:
                        check_first_frame(table, frame)
                    _refuse_lone_surrogates(table, frame, rows)
                    yield Chunk(frame, rows, min(raw.tell() / size, 1.0))
                    rows += len(frame)
        except UnicodeDecodeError as exc:
            raise undecodable_error(table, exc) from None
        except UnicodeEncodeError as exc:  # pandas storing a lone surrogate as Arrow text
            raise _surrogate_error(table, f"line {rows + 1} or later", exc.object) from None
        except (ValueError, pd.errors.ParserError) as exc:
            meter.check()  # a refusal of the budget that the parser wrapped
            if table.format in SEPARATORS:
                check_separator(table)
            jsonl = table.format == "jsonl"
            where = f"line {rows + 1} or later" if jsonl else f"after data row {rows}"
            raise DataError(
                f"cannot read {table.name} as {table.format} ({where}): {type(exc).__name__}: "
                f"{shortened(str(exc), 200)}; check the file or "
                f"{table.options.change(table.options.format)}"
            ) from None


def _refuse_lone_surrogates(table: TableFile, frame: pd.DataFrame, first_row: int) -> None:
    """A JSON escape of half a UTF-16 pair ("\\udc00") reads as a lone surrogate: not text."""
    for name in frame.columns:
        if frame[name].dtype != object:
            continue
        for offset, value in enumerate(frame[name]):
            if isinstance(value, str) and has_undecodable(value):
                where = f"row {first_row + offset + 1} (column {name!r})"
                raise _surrogate_error(table, where, value)


def _surrogate_error(table: TableFile, where: str, value: str) -> DataError:
    shown = value[:60].encode("utf-8", "backslashreplace").decode("utf-8")  # as \udcxx
    return DataError(
        f"{table.name}, {where}, holds \"{shown}\": a JSON escape of half a UTF-16 pair "
        "(\\ud800-\\udfff) without its other half, which is not text and cannot be written as "
        "UTF-8; fix or drop that row and run again"
    )

