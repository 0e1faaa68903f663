"""predict's input: the table reader's chunks, its messages naming predict's options."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from sentiment_pipeline.data import tables
from sentiment_pipeline.data.tables import DEFAULT_CHUNK_SIZE, Chunk
from sentiment_pipeline.predict.formats import INPUT_OPTIONS, input_format, missing_column


def read_chunks(
    path: Path, fmt: str | None, chunk_size: int = DEFAULT_CHUNK_SIZE, encoding: str = "auto"
) -> Iterator[Chunk]:
    """The rows of --input, `chunk_size` at a time, in order (see tables.read_chunks).

    `fmt`: --input-format (None: from the extension).
    """
    return tables.read_chunks(
        path, fmt or "auto", encoding=encoding, options=INPUT_OPTIONS, chunk_size=chunk_size
    )


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
