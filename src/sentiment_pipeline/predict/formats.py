"""Formats and paths of `predict`: input and output formats, path and column checks."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sentiment_pipeline.data import tables
from sentiment_pipeline.errors import DataError, shortened

INPUT_FORMATS = tables.FORMATS  # what the table reader reads, for ingest and analyze too
# What the table reader's messages tell a predict user to change: the command's options.
INPUT_OPTIONS = tables.TableOptions(
    format="--input-format", encoding="--encoding", source="--input", columns="--text-column"
)
OUTPUT_EXTENSIONS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
OUTPUT_FORMATS = ("parquet", "csv", "tsv", "jsonl")
SEPARATORS = tables.SEPARATORS  # an output is separated as an input is read


def input_format(path: Path, fmt: str | None = None) -> str:
    """The input format from --input-format (auto: the default), else from the extension."""
    return tables.resolve_format(path, fmt or "auto", INPUT_OPTIONS)


def output_format(path: Path, fmt: str | None = None) -> str:
    """The output format from --output-format, else from the extension of --output."""
    if fmt is not None:
        if fmt not in OUTPUT_FORMATS:
            raise DataError(
                f"--output-format {fmt!r} is not supported; accepted: {', '.join(OUTPUT_FORMATS)}"
            )
        return fmt
    suffix = path.suffix.lower()
    if suffix not in OUTPUT_EXTENSIONS:
        raise DataError(
            f"cannot tell the output format of {path} from its extension "
            f"({suffix or 'no extension'}); accepted: {', '.join(OUTPUT_EXTENSIONS)} "
            f"(or pass --output-format {'|'.join(OUTPUT_FORMATS)})"
        )
    return OUTPUT_EXTENSIONS[suffix]


def check_paths(source: Path | None, output: Path) -> None:
    """Refuse an output that is a folder, or the input itself; and an input that is not there."""
    if output.is_dir():
        raise DataError(
            f"--output {output} is a directory; give a file name such as "
            f"{output / 'predictions.parquet'}"
        )
    if source is None:
        return
    if not source.is_file():
        what = "a directory" if source.is_dir() else "no file"
        raise DataError(
            f"--input {source}: {what} there; give an existing {'/'.join(INPUT_FORMATS)} file"
        )
    if output.exists() and output.resolve() == source.resolve():
        raise DataError(f"--output {output} is the input file; write the predictions elsewhere")


def missing_column(source: Path, column: str, columns: Sequence[str]) -> DataError:
    """The error for an input without the text column."""
    return DataError(
        f"expected a column {shortened(column)!r} in {source}, found "
        f"{shortened(str(list(columns)), 300)}; pass --text-column"
    )
