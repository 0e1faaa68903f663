"""Reading an input file chunk by chunk, with clear errors for bad encodings and rows."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pandas as pd

from sentiment_pipeline.data.values import has_undecodable
from sentiment_pipeline.errors import DataError
from sentiment_pipeline.predict.formats import SEPARATORS, missing_column

DEFAULT_CHUNK_SIZE = 10_000
_COMPRESSION = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zip": "zip", ".zst": "zstd"}
UTF8_HINT = (
    "predict reads text files as UTF-8: convert the file, e.g. "
    "`iconv -f latin1 -t utf-8 {name} > utf8_{name}` (use the file's real encoding), "
    "and run again"
)


@dataclass(frozen=True)
class Chunk:
    frame: pd.DataFrame
    first_row: int  # 0-based data row of the chunk's first row
    done: float | None  # share of the file read so far (bytes), None when unknown


def invalid_utf8(path: Path) -> tuple[int, bytes] | None:
    """The first line (1-based, as an editor counts) that is not valid UTF-8, and its bad bytes."""
    opener = _binary_opener(path)
    with opener(path) as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                return number, line[exc.start : exc.end]
    return None


def _binary_opener(path: Path):  # noqa: ANN202 - a callable returning a binary file
    import bz2
    import gzip
    import lzma

    return {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}.get(
        path.suffix.lower(), lambda p: open(p, "rb")  # noqa: SIM115 - closed by the caller
    )


def encoding_error(path: Path, exc: UnicodeDecodeError) -> DataError:
    where = invalid_utf8(path) if path.suffix.lower() not in (".zip", ".zst") else None
    found = f"line {where[0]} holds bytes {where[1]!r}" if where else f"{exc.reason}"
    return DataError(
        f"{path} is not valid UTF-8: {found}, which is not UTF-8 text; "
        + UTF8_HINT.format(name=path.name)
    )


def _text_chunks(
    path: Path, fmt: str, chunk_size: int, handle: IO[bytes]
) -> Iterable[pd.DataFrame]:
    compression = _COMPRESSION.get(path.suffix.lower())
    if fmt == "jsonl":
        # numpy_nullable keeps integers with gaps as integers instead of floats.
        return pd.read_json(
            handle,
            lines=True,
            chunksize=chunk_size,
            dtype=False,
            encoding="utf-8-sig",  # a byte-order mark is skipped, as in CSV and in ingest
            compression=compression,
            dtype_backend="numpy_nullable",
        )
    # Every column as text: a chunk cannot know what later chunks hold, and CSV is text anyway.
    # As in read_table, only an empty field is missing: "NA" or "null" is a legitimate text.
    # Every line is a row: in a file of one column, an empty or all-blank line is a blank text
    # (pandas would drop it, and the output would have a row less than the input).
    return pd.read_csv(
        handle,
        sep=SEPARATORS[fmt],
        chunksize=chunk_size,
        dtype="string",
        keep_default_na=False,
        na_values=[""],
        skip_blank_lines=False,
        encoding="utf-8",
        compression=compression,
    )


def _read_text_file(path: Path, fmt: str, chunk_size: int) -> Iterator[Chunk]:
    size = path.stat().st_size or 1
    with path.open("rb") as handle:
        rows = 0
        try:
            for frame in _text_chunks(path, fmt, chunk_size, handle):
                _refuse_lone_surrogates(path, frame, rows)
                yield Chunk(frame, rows, min(handle.tell() / size, 1.0))
                rows += len(frame)
        except UnicodeDecodeError as exc:
            raise encoding_error(path, exc) from None
        except UnicodeEncodeError as exc:  # pandas storing a lone surrogate as Arrow text
            raise _surrogate_error(path, f"line {rows + 1} or later", exc.object) from None
        except ImportError as exc:  # .zst needs the zstandard package
            raise DataError(f"cannot read {path}: {exc}") from None
        except (ValueError, pd.errors.ParserError) as exc:
            where = f"line {rows + 1} or later" if fmt == "jsonl" else f"after data row {rows}"
            raise DataError(
                f"cannot read {path} as {fmt} ({where}): {type(exc).__name__}: {exc}; "
                "check the file or pass --input-format"
            ) from None


def _refuse_lone_surrogates(path: Path, frame: pd.DataFrame, first_row: int) -> None:
    """A JSON escape of half a UTF-16 pair ("\\udc00") reads as a lone surrogate: not text."""
    for name in frame.columns:
        if frame[name].dtype != object:
            continue
        for offset, value in enumerate(frame[name]):
            if isinstance(value, str) and has_undecodable(value):
                where = f"row {first_row + offset + 1} (column {name!r})"
                raise _surrogate_error(path, where, value)


def _surrogate_error(path: Path, where: str, value: str) -> DataError:
    return DataError(
        f"{path}, {where}, holds \"{_escaped(value[:60])}\": a JSON escape of half a "
        "UTF-16 pair (\\ud800-\\udfff) without its other half, which is not text and cannot be "
        "written as UTF-8; fix or drop that row and run again"
    )


def _escaped(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")  # a surrogate as \udcxx


def _parquet_file(path: Path):  # noqa: ANN202 - a pyarrow ParquetFile
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several kinds for a damaged file
        raise DataError(f"cannot read {path} as parquet: {type(exc).__name__}: {exc}") from None


def _read_parquet(path: Path, chunk_size: int) -> Iterator[Chunk]:
    file = _parquet_file(path)
    rows = 0
    for batch in file.iter_batches(batch_size=chunk_size):
        # Arrow types kept as they are: a column keeps its type from input to output.
        yield Chunk(batch.to_pandas(types_mapper=pd.ArrowDtype), rows, None)
        rows += batch.num_rows
    if rows == 0:
        yield Chunk(file.schema_arrow.empty_table().to_pandas(types_mapper=pd.ArrowDtype), 0, None)


def row_count(path: Path, fmt: str) -> int | None:
    """The number of rows, where the file says it without being read (Parquet); else None."""
    return _parquet_file(path).metadata.num_rows if fmt == "parquet" else None


def check_column(source: Path, fmt: str, column: str) -> None:
    """Refuse an input without the text column from its header (JSON lines: at the first chunk)."""
    if fmt == "jsonl":
        return
    if fmt == "parquet":
        columns = list(_parquet_file(source).schema_arrow.names)
    else:
        with source.open("rb") as handle:
            try:
                header = _text_chunks(source, fmt, 1, handle)
                columns = list(header.get_chunk(0).columns)
            except UnicodeDecodeError as exc:
                raise encoding_error(source, exc) from None
            except (ValueError, pd.errors.ParserError) as exc:
                raise DataError(
                    f"cannot read the header of {source} as {fmt}: {exc}; check the file or "
                    "pass --input-format"
                ) from None
    if column not in columns:
        raise missing_column(source, column, columns)


def read_chunks(path: Path, fmt: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[Chunk]:
    """The rows of a csv/tsv/parquet/jsonl file, `chunk_size` at a time, in order."""
    if fmt == "parquet":
        return _read_parquet(path, chunk_size)
    return _read_text_file(path, fmt, chunk_size)
