"""A budget of decoded bytes and rows for one read, counted as the values come out."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import IO, Literal

from sentiment_pipeline.errors import DataError

_PIECE = 1 << 20  # a read of "everything" is done in pieces, each counted before the next
# What a parsed JSON value costs Python beyond its text (an object or a pointer to one: an
# empty list takes 64 bytes, a float 32, a short string 59): a few kilobytes of "[],[],..."
# would otherwise decode to gigabytes. Counted per value separator or opening bracket.
JSON_VALUE_BYTES = 56


@dataclass(frozen=True)
class Budget:
    """What one read may decode: `max_bytes` bytes of values and `max_rows` rows (None: any).

    A whole-file read counts the whole file; a chunked read (predict) counts each chunk.
    """

    max_bytes: int | None = None
    max_rows: int | None = None


UNBOUNDED = Budget()


class OverBudget(DataError):
    """A read passed its budget. The message names the file and the bound; the caller adds
    the setting that sets it and what to do."""

    def __init__(self, message: str, what: Literal["bytes", "rows"]) -> None:
        super().__init__(message)
        self.what = what


class Meter:
    """Counts a read's decoded bytes and rows against a budget and refuses the moment it is
    passed. The refusal is kept, so that a parser that wraps what a stream raised (pandas
    turns it into a ParserError) cannot hide it: callers re-raise it with `check`."""

    def __init__(self, budget: Budget, name: str) -> None:
        self.budget = budget
        self.name = name  # what messages call the file
        self.bytes = 0
        self.rows = 0
        self.chunk: int | None = None  # a chunked read: its chunk's first data row (0-based)
        self.refused: OverBudget | None = None

    def restart(self, first_row: int) -> None:
        """Count a new chunk, from data row `first_row` (0-based)."""
        self.bytes = self.rows = 0
        self.chunk = first_row

    def _what(self) -> str:
        if self.chunk is None:
            return self.name
        return f"the chunk of {self.name} from data row {self.chunk + 1:,}"

    def expect(self, *, size: int = 0, rows: int = 0) -> None:
        """Refuse now what a file says it holds (a Parquet footer's counts) if it cannot fit,
        before any of it is read; count nothing."""
        self._check(self.bytes + size, self.rows + rows)

    def add_bytes(self, count: int) -> None:
        self.bytes += count
        self._check(self.bytes, self.rows)

    def add_rows(self, count: int) -> None:
        self.rows += count
        self._check(self.bytes, self.rows)

    def _check(self, size: int, rows: int) -> None:
        max_bytes, max_rows = self.budget.max_bytes, self.budget.max_rows
        if max_rows is not None and rows > max_rows:
            self.refuse(f"{self._what()} holds more than {max_rows:,} rows", "rows")
        if max_bytes is not None and size > max_bytes:
            self.refuse(f"{self._what()} expands to more than {max_bytes:,} bytes when read",
                        "bytes")

    def refuse(self, message: str, what: Literal["bytes", "rows"]) -> None:
        self.refused = OverBudget(message, what)
        raise self.refused

    def check(self) -> None:
        """Raise the refusal again, if there was one (after a parser wrapped it)."""
        if self.refused is not None:
            raise self.refused


class MeteredStream(io.RawIOBase):
    """A binary stream whose bytes are counted on a meter as they are read (decompressed);
    `json`: JSON text, each value also counted at JSON_VALUE_BYTES (before it is parsed)."""

    def __init__(self, raw: IO[bytes], meter: Meter, *, json: bool = False) -> None:
        super().__init__()
        self.raw = raw
        self.meter = meter
        self.json = json

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(_PIECE), b""))
        data = self.raw.read(size)
        values = data.count(b",") + data.count(b"[") + data.count(b"{") if self.json else 0
        self.meter.add_bytes(len(data) + JSON_VALUE_BYTES * values)
        return data

    def read1(self, size: int = -1) -> bytes:
        return self.read(size if size >= 0 else _PIECE)

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def tell(self) -> int:
        return self.raw.tell()
