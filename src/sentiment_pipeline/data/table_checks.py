"""The table reader's checks (byte-order marks, separators, column names, undecodable lines)."""

from __future__ import annotations

import codecs
import csv
import io
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pandas as pd

from sentiment_pipeline.data.compression import head_bytes, open_binary
from sentiment_pipeline.errors import DataError, shortened

logger = logging.getLogger(__name__)

_OTHER_BOMS = {
    b"\xff\xfe\x00\x00": "utf-32",
    b"\x00\x00\xfe\xff": "utf-32",
    b"\xff\xfe": "utf-16",
    b"\xfe\xff": "utf-16",
}
SEPARATORS = {"csv": ",", "tsv": "\t"}  # the separator of each separated format
_FORMAT_OF = {separator: fmt for fmt, separator in SEPARATORS.items()}
# What the sniffer looks for, and how messages call it.
_SEPARATOR_NAMES = {",": "commas (',')", "\t": "tabs", ";": "semicolons (';')", "|": "pipes ('|')"}
_SNIFFED_BYTES = 1 << 16


@dataclass(frozen=True)
class TableOptions:
    """What the caller's user changes to read a file otherwise, in the caller's own words.

    `format` and `encoding` name the setting of each (a params.yaml key such as data.format, a
    command-line option such as --input-format, a request field such as format); `source`
    what names the file; `columns` what names the columns read. A command-line option (--x)
    is passed with a space, a key or a field is set with "=".
    """

    format: str
    encoding: str
    source: str
    columns: str

    def value(self, name: str, value: str) -> str:
        """A setting as the user writes it: data.format=tsv, --input-format tsv."""
        return f"{name} {value}" if name.startswith("--") else f"{name}={value}"

    def change(self, name: str, value: str | None = None) -> str:
        """How to change a setting: "set data.format=tsv", "pass --input-format tsv"."""
        verb = "pass" if name.startswith("--") else "set"
        return f"{verb} {name if value is None else self.value(name, value)}"


@dataclass(frozen=True)
class TableFile:
    """A file being read: where it is, what messages call it, and how it is asked to be read."""

    path: Path
    name: str  # what messages call it: its path, or an upload's own name for its copy
    chosen: str  # the format asked for: "auto" or a format
    format: str
    encoding: str  # as asked ("auto": UTF-8)
    codec: str  # the Python codec of `encoding`
    options: TableOptions


def check_byte_order_mark(table: TableFile) -> None:
    """Encoding auto reads UTF-8: a UTF-16/32 byte-order mark says which encoding to name."""
    head = head_bytes(table.path, 4)
    options = table.options
    for bom, codec in _OTHER_BOMS.items():
        if head.startswith(bom):
            raise DataError(
                f"{table.name} starts with a {codec.upper()} byte-order mark, but "
                f"{options.value(options.encoding, 'auto')} reads UTF-8; "
                f"{options.change(options.encoding, codec)}"
            )


def check_unique_columns(name: Path | str, columns: Sequence[object]) -> None:
    """Refuse two columns of one name (Parquet allows it; pyarrow then fails obscurely)."""
    names = [str(column) for column in columns]
    repeated = sorted({column for column in names if names.count(column) > 1})
    if repeated:
        shown = shortened(", ".join(map(repr, repeated)), 200)
        raise DataError(
            f"{name} holds more than one column named {shown} (columns "
            f"{shortened(str(names), 300)}); column names must be unique: rename or drop the "
            "copies"
        )


def _head_text(path: Path, codec: str) -> tuple[str, bool]:
    """The decoded start of a file, and whether the file goes on after it."""
    head = head_bytes(path, _SNIFFED_BYTES)
    # final=False: a character cut at the end of the sample is left out, not an error
    text = codecs.getincrementaldecoder(codec)("surrogateescape").decode(head, final=False)
    return text, len(head) == _SNIFFED_BYTES


def _sniff_separator(path: Path, codec: str, lines: int = 20) -> str | None:
    """The separator (one of , tab ; |) that the first lines of a text table use, if clear."""
    try:
        text, cut = _head_text(path, codec)
    except UnicodeError:  # e.g. utf-16 without a byte-order mark
        return None
    sample = text.splitlines()[: -1 if cut else None][:lines]
    try:
        sniffed = csv.Sniffer().sniff("\n".join(sample), delimiters="".join(_SEPARATOR_NAMES))
    except csv.Error:
        return None
    return sniffed.delimiter


def check_separator(table: TableFile, header: str = "") -> None:
    """Raise a DataError naming the separator a CSV/TSV really uses when it is not its format's."""
    fmt, options = table.format, table.options
    expected = SEPARATORS[fmt]
    found = _sniff_separator(table.path, table.codec)
    if found is None and header:  # the header line alone: its most frequent separator
        found = max(_SEPARATOR_NAMES, key=header.count)
    if found is None or found == expected or (header and found not in header):
        return
    how = (
        f"{options.value(options.format, 'auto')}, from the extension" if table.chosen == "auto"
        else options.value(options.format, fmt)
    )
    if found in _FORMAT_OF:
        fix = options.change(options.format, _FORMAT_OF[found])
    else:
        fix = (
            f"{options.format} reads comma-separated (csv) and tab-separated (tsv) files: save "
            "the file with one of those separators"
        )
    raise DataError(
        f"{table.name} looks separated by {_SEPARATOR_NAMES[found]}, but it was read as {fmt} "
        f"({how}), which is separated by {_SEPARATOR_NAMES[expected]}; {fix}"
    )


def check_first_frame(table: TableFile, frame: pd.DataFrame) -> None:
    """The first rows of a CSV/TSV: a header of one column may hide another separator, and a
    repeated column name is renamed by pandas (text, text.1): say that the first one is used."""
    if frame.shape[1] == 1:
        check_separator(table, header=str(frame.columns[0]))
    try:
        text, cut = _head_text(table.path, table.codec)
        if cut and "\n" not in text:  # a header longer than the sample: its last name is cut
            return
        separator = SEPARATORS[table.format]
        header = next(csv.reader(io.StringIO(text, newline=""), delimiter=separator), [])
    except (UnicodeError, csv.Error):  # the reader has read the file: this is only a look
        return
    for column in sorted({column for column in header if header.count(column) > 1}):
        copies = [column] + [f"{column}.{i}" for i in range(1, header.count(column))]
        logger.warning(
            "%s has %d columns named %r, read as %s: %s %r means the first; rename the columns "
            "to choose another",
            table.name, len(copies), column, copies, table.options.columns, column,
        )


def _byte_lines(handle: IO[bytes]) -> Iterator[bytes]:
    """The lines of a binary stream, each with its b"\\n" (any stream: no readline needed)."""
    rest = b""
    while block := handle.read(1 << 16):
        *lines, rest = (rest + block).split(b"\n")
        yield from (line + b"\n" for line in lines)
    if rest:
        yield rest


def first_undecodable(path: Path, codec: str) -> tuple[int, bytes] | None:
    """The first line (1-based, as an editor counts) holding bytes `codec` does not decode."""
    decoder = codecs.getincrementaldecoder(codec)("strict")
    newlines = 0
    with open_binary(path) as handle:
        for line in _byte_lines(handle):
            try:
                newlines += decoder.decode(line).count("\n")
            except UnicodeDecodeError as exc:
                return newlines + 1, exc.object[exc.start : exc.end]
    return None


def undecodable_error(table: TableFile, exc: UnicodeDecodeError) -> DataError:
    """The error for text that does not decode: the line, its bytes, and the two fixes."""
    where = first_undecodable(table.path, table.codec)
    found = f"line {where[0]} holds bytes {where[1]!r}" if where else exc.reason
    said = "UTF-8" if table.encoding == "auto" else table.encoding
    file, options = Path(table.name).name, table.options
    return DataError(
        f"{table.name} is not valid {said}: {found}, which is not {said} text; "
        f"{options.change(options.encoding)} with the file's real encoding (e.g. "
        f"{options.value(options.encoding, 'latin-1')}), or convert the file to UTF-8, e.g. "
        f"`iconv -f latin1 -t utf-8 {file} > utf8_{file}` (use the file's real encoding)"
    )
