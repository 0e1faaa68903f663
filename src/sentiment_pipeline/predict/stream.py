"""The `predict` run: open the model, stream a file through it, or write positional texts."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sentiment_pipeline.data.table_checks import check_unique_columns
from sentiment_pipeline.errors import DataError
from sentiment_pipeline.io import atomic_path
from sentiment_pipeline.models.artifacts.manifest import SentimentModel
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.predict.columns import first_long_text, plan_columns, predict_chunk
from sentiment_pipeline.predict.formats import (
    check_paths,
    input_format,
    missing_column,
    output_format,
)
from sentiment_pipeline.predict.readers import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_MAX_CHUNK_BYTES,
    Chunk,
    read_chunks,
    row_count,
)
from sentiment_pipeline.predict.writers import open_writer
from sentiment_pipeline.registry import opening

logger = logging.getLogger(__name__)
# The longest text predict classifies (--max-text-chars): a longer one is an error naming its
# row rather than cut, as every input value is written out as it was read.
DEFAULT_MAX_TEXT_CHARS = 100_000


def open_model(
    spec: str | None,
    *,
    model_name: str,
    paths: ProjectPaths,
    trust: bool | None = None,
) -> SentimentModel:
    """`--model` (folder, models:/ URI or None: the champion) opened as serve and analyze do."""
    return opening.open_model(spec, model_name=model_name, paths=paths, trust=trust).model


@dataclass(frozen=True)
class PredictResult:
    output: Path
    rows: int
    blank: int
    seconds: float

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("nan")


def stream_predictions(
    model: SentimentModel,
    chunks: Iterable[Chunk],
    text_column: str,
    *,
    source: Path,
    keep_columns: bool = True,
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
) -> Iterator[tuple[Chunk, pd.DataFrame]]:
    """Each input chunk with its predictions; the first chunk fixes the columns written.

    A text longer than `max_text_chars` is an error naming its row.
    """
    kept: list[str] | None = None
    renames: dict[str, str] = {}
    for chunk in chunks:
        frame = chunk.frame
        if kept is None:
            check_unique_columns(source, list(frame.columns))
            if text_column not in frame.columns:
                raise missing_column(source, text_column, frame.columns)
            kept, renames = plan_columns(model, list(frame.columns), keep_columns, text_column)
            frame = _first_chunk_types(frame, text_column)
        else:
            extra = [name for name in frame.columns if name not in kept]
            if extra and keep_columns:
                logger.warning(
                    "%s: columns %s first appear at row %d; only the first rows' columns %s "
                    "are written", source, extra, chunk.first_row + 1, kept,
                )
        long = first_long_text(frame[text_column], max_text_chars)
        if long is not None:
            raise DataError(
                f"row {chunk.first_row + long[0] + 1:,} of {source} holds a text of "
                f"{long[1]:,} characters in column {text_column!r}, more than --max-text-chars "
                f"{max_text_chars:,}; shorten or drop that row, or raise --max-text-chars"
            )
        yield chunk, predict_chunk(model, frame.reindex(columns=kept), text_column, renames)


def _first_chunk_types(frame: pd.DataFrame, text_column: str) -> pd.DataFrame:
    """A column with no value at all in the first rows is stored as text (later rows may have)."""
    empty = [
        name for name in frame.columns
        if name != text_column and len(frame) and frame[name].isna().all()
        and not isinstance(frame[name].dtype, pd.ArrowDtype)
    ]
    return frame.astype({name: "string" for name in empty}) if empty else frame


@contextlib.contextmanager
def _progress(desc: str, total: int | None, enabled: bool) -> Iterator[object]:
    from tqdm.auto import tqdm

    with tqdm(
        total=total, desc=desc, unit=" rows", unit_scale=True, file=sys.stderr,
        disable=None if enabled else True, dynamic_ncols=True,
    ) as bar:
        yield bar


def predict_file(
    model: SentimentModel,
    source: Path,
    output: Path,
    *,
    text_column: str = "text",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    in_format: str | None = None,
    out_format: str | None = None,
    keep_columns: bool = True,
    progress: bool = True,
    encoding: str = "auto",
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
    max_chunk_bytes: int = DEFAULT_MAX_CHUNK_BYTES,
) -> PredictResult:
    """Classify every row of `source` into `output`, one chunk in memory at a time.

    The output appears only once complete: it is written to a hidden temporary sibling and
    renamed at the end, so an interrupted run leaves no (partial) output file. A chunk that
    decodes to more than `max_chunk_bytes`, or a text longer than `max_text_chars`, is an
    error naming its rows.
    """
    check_paths(source, output)
    fmt_in = input_format(source, in_format)
    fmt_out = output_format(output, out_format)
    started = time.perf_counter()
    rows = blank = 0
    total = row_count(source, fmt_in)
    with (
        atomic_path(output) as tmp,
        open_writer(tmp, fmt_out) as writer,
        _progress(source.name, total, progress) as bar,
    ):
        chunks = read_chunks(source, in_format, chunk_size, encoding, max_chunk_bytes)
        for chunk, predictions in stream_predictions(
            model, chunks, text_column, source=source, keep_columns=keep_columns,
            max_text_chars=max_text_chars,
        ):
            writer.write(predictions)
            rows += len(predictions)
            blank += int(predictions["blank"].sum())
            _advance(bar, len(predictions), rows, chunk.done)
        if rows == 0 and fmt_in == "jsonl":  # an empty JSON lines file: no columns to check
            writer.write(predict_chunk(model, pd.DataFrame({text_column: []}), text_column, {}))
    seconds = time.perf_counter() - started
    logger.debug("wrote %d predictions to %s (%d blank texts)", rows, output, blank)
    return PredictResult(output=output, rows=rows, blank=blank, seconds=seconds)


def _advance(bar, count: int, rows: int, done: float | None) -> None:  # noqa: ANN001 - tqdm
    """Move the bar; without a row count, estimate the total from the share of bytes read."""
    if done is not None:
        bar.total = rows if done >= 1 else max(rows, round(rows / max(done, 1e-9)))
    bar.update(count)


def write_texts(model: SentimentModel, texts: Sequence[str], output: Path, fmt: str | None) -> int:
    """Positional texts with --output: the same columns as a file with a `text` column."""
    check_paths(None, output)
    fmt_out = output_format(output, fmt)
    frame = predict_chunk(model, pd.DataFrame({"text": list(texts)}), "text", {})
    with atomic_path(output) as tmp, open_writer(tmp, fmt_out) as writer:
        writer.write(frame)
    return len(frame)


def describe_result(result: PredictResult) -> str:
    return (
        f"wrote {result.rows} predictions to {result.output} ({result.blank} blank texts, "
        f"{result.rows_per_s:,.0f} rows/s)"
    )
