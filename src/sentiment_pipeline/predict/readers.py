"""predict's input: the table reader's chunks, its messages naming predict's options."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from sentiment_pipeline.data import tables
from sentiment_pipeline.data.budget import Budget, OverBudget
from sentiment_pipeline.data.tables import DEFAULT_CHUNK_SIZE, Chunk
from sentiment_pipeline.errors import DataError
from sentiment_pipeline.predict.formats import INPUT_OPTIONS, input_format, missing_column

# What one chunk may decode to (--max-chunk-bytes): a file of any size is streamed, but a
# chunk is held whole, and a few compressed bytes can decode to gigabytes.
DEFAULT_MAX_CHUNK_BYTES = 256_000_000


def read_chunks(
    path: Path,
    fmt: str | None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    encoding: str = "auto",
    max_chunk_bytes: int = DEFAULT_MAX_CHUNK_BYTES,
) -> Iterator[Chunk]:
    """The rows of --input, `chunk_size` at a time, in order (see tables.read_chunks).

    `fmt`: --input-format (None: from the extension). A chunk that decodes to more than
    `max_chunk_bytes` (counted as it is read) is an error naming its first row.
    """
    chunks = tables.read_chunks(
        path, fmt or "auto", encoding=encoding, options=INPUT_OPTIONS, chunk_size=chunk_size,
        budget=Budget(max_bytes=max_chunk_bytes),
    )
    return _explained(chunks, chunk_size, max_chunk_bytes)


def _explained(chunks: Iterator[Chunk], chunk_size: int, max_chunk_bytes: int
               ) -> Iterator[Chunk]:
    """The chunks; a chunk over its budget is an error that names predict's options."""
    try:
        yield from chunks
    except OverBudget as exc:
        raise DataError(
            f"{exc} (--max-chunk-bytes {max_chunk_bytes:,}); lower --chunk-size "
            f"({chunk_size:,} rows), or raise --max-chunk-bytes if the machine has the memory"
        ) from None


def row_count(path: Path, fmt: str) -> int | None:
    """The number of rows, where the file says it without being read (Parquet); else None."""
    return tables.row_count(path, fmt, INPUT_OPTIONS)


def check_column(source: Path, fmt: str | None, column: str, encoding: str = "auto") -> None:
    """Refuse an input without the text column from its header (JSON lines: at the first chunk).

    `fmt`: --input-format (None: from the extension).
    """
    if input_format(source, fmt) == "jsonl":
        return
    with contextlib.closing(read_chunks(source, fmt, 1, encoding)) as chunks:
        columns = list(next(iter(chunks)).frame.columns)
    if column not in columns:
        raise missing_column(source, column, columns)
