"""Batch prediction (the `predict` command): texts, or a file streamed chunk by chunk."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

import numpy as np
import pandas as pd

from sentiment_pipeline.data.ingestion import detect_format
from sentiment_pipeline.data.values import is_missing
from sentiment_pipeline.errors import DataError
from sentiment_pipeline.io import atomic_path
from sentiment_pipeline.models.artifacts.loader import load_model
from sentiment_pipeline.models.artifacts.manifest import SentimentModel
from sentiment_pipeline.paths import ProjectPaths
from sentiment_pipeline.registry import resolve as registry_resolve

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 10_000
INPUT_FORMATS = ("csv", "tsv", "parquet", "jsonl")
OUTPUT_EXTENSIONS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
OUTPUT_FORMATS = ("parquet", "csv", "tsv", "jsonl")
_COMPRESSION = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zip": "zip", ".zst": "zstd"}
_SEPARATORS = {"csv": ",", "tsv": "\t"}
UTF8_HINT = (
    "predict reads text files as UTF-8: convert the file, e.g. "
    "`iconv -f latin1 -t utf-8 {name} > utf8_{name}` (use the file's real encoding), "
    "and run again"
)


# --- the model --------------------------------------------------------------


def open_model(
    spec: str | None,
    *,
    model_name: str,
    paths: ProjectPaths,
    trust: bool | None = None,
) -> SentimentModel:
    """Resolve `--model` (folder, models:/ URI or None: the champion) and load it.

    trust None: a model downloaded from the registry with matching hashes is trusted, else
    SENTIMENT_PIPELINE_TRUST_ARTIFACTS decides (see load_model); False trusts only ./models.
    """
    resolved = registry_resolve.resolve_model(spec, model_name=model_name, paths=paths)
    logger.info("predicting with %s (%s)", resolved.source, resolved.path)
    if trust is None and resolved.trusted:
        trust = True
    return load_model(resolved.path, require_real=True, trust=trust, project=paths)


# --- pure functions: texts and chunks to predictions -----------------------


def prediction_columns(model: SentimentModel, texts: Sequence[str]) -> pd.DataFrame:
    """label, score (the label's probability) and one p_<class> column per class."""
    labels = list(model.labels)
    if len(texts) == 0:  # scikit-learn refuses an empty batch
        proba = np.zeros((0, len(labels)))
    else:
        proba = np.asarray(model.predict_proba(list(texts)), dtype=np.float64)
    best = proba.argmax(axis=1)
    frame = pd.DataFrame(
        {
            "label": pd.Series([labels[i] for i in best], dtype=object),
            "score": proba[np.arange(len(best)), best],
        }
    )
    for i, label in enumerate(labels):
        frame[f"p_{label}"] = proba[:, i]
    return frame


def predict_texts(model: SentimentModel, texts: Sequence[str]) -> pd.DataFrame:
    """One row per text: the text, the predicted label and one probability column per class."""
    frame = prediction_columns(model, texts).drop(columns="score")
    frame.insert(0, "text", list(texts))
    return frame


def output_columns(model: SentimentModel) -> list[str]:
    """The columns predict adds after the input's: label, score, p_<class>..., blank."""
    return ["label", "score", *(f"p_{label}" for label in model.labels), "blank"]


def text_values(column: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """The text column as strings (missing kept missing) and which rows are blank.

    Blank: missing, empty or only whitespace. A value that is not a string (a number in JSON)
    is classified as its text.
    """
    text = column.map(lambda v: None if is_missing(v) else str(v)).astype("string")
    blank = text.isna().to_numpy() | (text.fillna("").str.strip() == "").to_numpy()
    return text, blank


def predict_chunk(
    model: SentimentModel, frame: pd.DataFrame, text_column: str, renames: dict[str, str]
) -> pd.DataFrame:
    """One output row per input row, in order: the input columns, then the predictions.

    A blank text is classified as the empty string and flagged in `blank`. `renames` moves
    input columns out of the way of the prediction columns (see plan_columns).
    """
    text, blank = text_values(frame[text_column])
    texts = ["" if is_blank else value for value, is_blank in zip(text, blank, strict=True)]
    predictions = prediction_columns(model, texts)
    predictions["blank"] = blank
    inputs = frame.assign(**{text_column: text}).rename(columns=renames)
    return pd.concat(
        [inputs.reset_index(drop=True), predictions.reset_index(drop=True)], axis=1
    )


def plan_columns(
    model: SentimentModel, columns: Sequence[str], keep_columns: bool, text_column: str
) -> tuple[list[str], dict[str, str]]:
    """The input columns to keep and the renames of those named like a prediction column.

    An input column `label` (say, the true label) becomes `input_label`.
    """
    kept = list(columns) if keep_columns else [text_column]
    taken = set(output_columns(model))
    renames: dict[str, str] = {}
    for name in kept:
        if name in taken:
            new = f"input_{name}"
            while new in taken or new in kept:
                new = f"input_{new}"
            renames[name] = new
            taken.add(new)
    if renames:
        logger.warning("input columns renamed so the predictions can take their names: %s", renames)
    return kept, renames


# --- formats and paths ------------------------------------------------------


def input_format(path: Path, fmt: str | None = None) -> str:
    if fmt is not None:
        if fmt not in INPUT_FORMATS:
            raise DataError(
                f"--input-format {fmt!r} is not supported; accepted: {', '.join(INPUT_FORMATS)}"
            )
        return fmt
    try:
        return detect_format(path)
    except DataError as exc:
        raise DataError(f"{exc}; or pass --input-format") from None


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
            f"--input {source}: {what} there; give an existing csv/tsv/parquet/jsonl file"
        )
    if output.exists() and output.resolve() == source.resolve():
        raise DataError(f"--output {output} is the input file; write the predictions elsewhere")


# --- readers ----------------------------------------------------------------


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
            encoding="utf-8",
            compression=compression,
            dtype_backend="numpy_nullable",
        )
    # Every column as text: a chunk cannot know what later chunks hold, and CSV is text anyway.
    # As in read_table, only an empty field is missing: "NA" or "null" is a legitimate text.
    return pd.read_csv(
        handle,
        sep=_SEPARATORS[fmt],
        chunksize=chunk_size,
        dtype="string",
        keep_default_na=False,
        na_values=[""],
        encoding="utf-8",
        compression=compression,
    )


def _read_text_file(path: Path, fmt: str, chunk_size: int) -> Iterator[Chunk]:
    size = path.stat().st_size or 1
    with path.open("rb") as handle:
        rows = 0
        try:
            for frame in _text_chunks(path, fmt, chunk_size, handle):
                yield Chunk(frame, rows, min(handle.tell() / size, 1.0))
                rows += len(frame)
        except UnicodeDecodeError as exc:
            raise encoding_error(path, exc) from None
        except ImportError as exc:  # .zst needs the zstandard package
            raise DataError(f"cannot read {path}: {exc}") from None
        except (ValueError, pd.errors.ParserError) as exc:
            where = f"line {rows + 1} or later" if fmt == "jsonl" else f"after data row {rows}"
            raise DataError(
                f"cannot read {path} as {fmt} ({where}): {type(exc).__name__}: {exc}; "
                "check the file or pass --input-format"
            ) from None


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


def _missing_column(source: Path, column: str, columns: Sequence[str]) -> DataError:
    return DataError(
        f"expected a column {column!r} in {source}, found {list(columns)}; pass --text-column"
    )


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
        raise _missing_column(source, column, columns)


def read_chunks(path: Path, fmt: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[Chunk]:
    """The rows of a csv/tsv/parquet/jsonl file, `chunk_size` at a time, in order."""
    if fmt == "parquet":
        return _read_parquet(path, chunk_size)
    return _read_text_file(path, fmt, chunk_size)


# --- writers ----------------------------------------------------------------


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
        frame.to_csv(
            self.handle, sep=_SEPARATORS[self.fmt], header=self.header, index=False,
            lineterminator="\n",
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


# --- the streamed run -------------------------------------------------------


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
) -> Iterator[tuple[Chunk, pd.DataFrame]]:
    """Each input chunk with its predictions; the first chunk fixes the columns written."""
    kept: list[str] | None = None
    renames: dict[str, str] = {}
    for chunk in chunks:
        frame = chunk.frame
        if kept is None:
            if text_column not in frame.columns:
                raise _missing_column(source, text_column, frame.columns)
            kept, renames = plan_columns(model, list(frame.columns), keep_columns, text_column)
            frame = _first_chunk_types(frame, text_column)
        else:
            extra = [name for name in frame.columns if name not in kept]
            if extra and keep_columns:
                logger.warning(
                    "%s: columns %s first appear at row %d; only the first rows' columns %s "
                    "are written", source, extra, chunk.first_row + 1, kept,
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
) -> PredictResult:
    """Classify every row of `source` into `output`, one chunk in memory at a time.

    The output appears only once complete: it is written to a hidden temporary sibling and
    renamed at the end, so an interrupted run leaves no (partial) output file.
    """
    check_paths(source, output)
    fmt_in = input_format(source, in_format)
    fmt_out = output_format(output, out_format)
    started = time.perf_counter()
    rows = blank = 0
    total = _parquet_file(source).metadata.num_rows if fmt_in == "parquet" else None
    with (
        atomic_path(output) as tmp,
        open_writer(tmp, fmt_out) as writer,
        _progress(source.name, total, progress) as bar,
    ):
        chunks = read_chunks(source, fmt_in, chunk_size)
        for chunk, predictions in stream_predictions(
            model, chunks, text_column, source=source, keep_columns=keep_columns
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

