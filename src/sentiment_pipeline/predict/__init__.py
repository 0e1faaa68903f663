"""Batch prediction (the `predict` command): texts, or a file streamed chunk by chunk.

formats: input/output formats and path checks; readers: the input chunk by chunk, through
data.tables (the reader of ingest and analyze too); writers: the output chunk by chunk;
columns: texts and chunks to prediction columns; stream: the model and the run that ties them
together. Every public name is importable from here.
"""

from sentiment_pipeline.predict.columns import (
    first_long_text,
    output_columns,
    plan_columns,
    predict_chunk,
    predict_texts,
    prediction_columns,
    text_values,
)
from sentiment_pipeline.predict.formats import (
    INPUT_FORMATS,
    INPUT_OPTIONS,
    OUTPUT_EXTENSIONS,
    OUTPUT_FORMATS,
    SEPARATORS,
    check_paths,
    input_format,
    missing_column,
    output_format,
)
from sentiment_pipeline.predict.readers import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_MAX_CHUNK_BYTES,
    Chunk,
    check_column,
    read_chunks,
    row_count,
)
from sentiment_pipeline.predict.stream import (
    DEFAULT_MAX_TEXT_CHARS,
    PredictResult,
    describe_result,
    open_model,
    predict_file,
    stream_predictions,
    write_texts,
)
from sentiment_pipeline.predict.writers import (
    ParquetChunkWriter,
    TextWriter,
    Writer,
    mixed_types,
    open_writer,
)

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_MAX_CHUNK_BYTES",
    "DEFAULT_MAX_TEXT_CHARS",
    "INPUT_FORMATS",
    "INPUT_OPTIONS",
    "OUTPUT_EXTENSIONS",
    "OUTPUT_FORMATS",
    "SEPARATORS",
    "Chunk",
    "ParquetChunkWriter",
    "PredictResult",
    "TextWriter",
    "Writer",
    "check_column",
    "check_paths",
    "describe_result",
    "first_long_text",
    "input_format",
    "missing_column",
    "mixed_types",
    "open_model",
    "open_writer",
    "output_columns",
    "output_format",
    "plan_columns",
    "predict_chunk",
    "predict_file",
    "predict_texts",
    "prediction_columns",
    "read_chunks",
    "row_count",
    "stream_predictions",
    "text_values",
    "write_texts",
]
