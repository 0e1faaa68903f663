"""Writing prediction chunks to one output file: CSV/TSV, JSON lines or Parquet."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pandas as pd

from sentiment_pipeline.data.values import is_missing
from sentiment_pipeline.errors import DataError
from sentiment_pipeline.predict.formats import SEPARATORS


class Writer(Protocol):
    def write(self, frame: pd.DataFrame) -> None: ...

    def close(self) -> None: ...


class TextWriter:
    """CSV/TSV with the header once, or JSON lines; chunks appended to one open file."""

    def __init__(self, path: Path, fmt: str) -> None:
        self.fmt = fmt
        self.handle = path.open("w", encoding="utf-8", newline="")
        self.header = True

    def write(self, frame: pd.DataFrame) -> None:
        if self.fmt == "jsonl":
            if len(frame):
                text = frame.to_json(
                    orient="records", lines=True, force_ascii=False, date_format="iso"
                )
                self.handle.write(text if text.endswith("\n") else text + "\n")
            return
        # CRLF (RFC 4180): before 3.11.9 Python's csv writer quotes only the line terminator's
        # characters, so with "\n" a text holding a bare "\r" was written unquoted: a broken row.
        frame.to_csv(
            self.handle, sep=SEPARATORS[self.fmt], header=self.header, index=False,
            lineterminator="\r\n",
        )
        self.header = False

    def close(self) -> None:
        self.handle.close()


def mixed_types(frame: pd.DataFrame) -> dict[str, list[str]]:
    """The columns whose values are of more than one Python type (e.g. int and str)."""
    mixed = {}
    for name in frame.columns:
        if frame[name].dtype == object:
            kinds = sorted({type(v).__name__ for v in frame[name] if not is_missing(v)})
            if len(kinds) > 1:
                mixed[name] = kinds
    return mixed


class ParquetChunkWriter:
    """One row group per chunk; the first chunk fixes the schema and later chunks are cast to it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.writer = None
        self.rows = 0

    def write(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = pa.Table.from_pandas(frame, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            rows = f"rows {self.rows + 1}-{self.rows + len(frame)}"
            mixed = [f"column {name!r} ({', '.join(kinds)} in {rows})"
                     for name, kinds in mixed_types(frame).items()]
            raise self._mixed(", ".join(mixed) or str(exc)) from None
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, table.schema, compression="zstd")
        elif not table.schema.equals(self.writer.schema, check_metadata=False):
            table = self._conform(table)
        self.writer.write_table(table)
        self.rows += table.num_rows

    def _conform(self, table):  # noqa: ANN001, ANN202 - pyarrow tables
        import pyarrow as pa

        schema = self.writer.schema
        try:
            return table.select(schema.names).cast(schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, KeyError) as exc:
            got = {field.name: field.type for field in table.schema}
            changed = [
                f"column {field.name!r} ({field.type} in the first rows, {got[field.name]} "
                f"from row {self.rows + 1})"
                for field in schema
                if field.name in got and got[field.name] != field.type
            ]
            raise self._mixed(f"{', '.join(changed) or exc}") from None

    def _mixed(self, what: str) -> DataError:
        return DataError(
            f"cannot write {what} to Parquet, which needs one type per column; write csv or jsonl "
            "instead, or pass --no-keep-columns to keep only the text column"
        )

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


@contextlib.contextmanager
def open_writer(path: Path, fmt: str) -> Iterator[Writer]:
    """A writer of prediction chunks in `fmt`; closed (flushed) when the block ends."""
    writer: Writer = ParquetChunkWriter(path) if fmt == "parquet" else TextWriter(path, fmt)
    try:
        yield writer
    finally:
        writer.close()
