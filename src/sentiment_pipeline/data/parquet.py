"""Parquet read one row group at a time under a budget, dictionary values counted as decoded."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from sentiment_pipeline.data.budget import Meter
from sentiment_pipeline.data.table_checks import TableFile, check_unique_columns
from sentiment_pipeline.errors import DataError, shortened


def open_file(table: TableFile, handle: IO[bytes], read_dictionary: list[str] | None = None
              ) -> Any:  # a pyarrow ParquetFile
    """The file's reader (its footer read, its column names checked); a damaged file is a
    DataError naming it."""
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(handle, read_dictionary=read_dictionary)
    except Exception as exc:  # pyarrow raises several kinds for a damaged file
        raise DataError(
            f"cannot read {table.name} as parquet: {type(exc).__name__}: "
            f"{shortened(str(exc), 200)}; check the file or "
            f"{table.options.change(table.options.format)}"
        ) from exc
    check_unique_columns(table.name, file.schema_arrow.names)
    return file


def dictionary_columns(file: Any) -> list[str]:
    """The paths of the text (BYTE_ARRAY) columns that the file stores dictionary-encoded."""
    metadata = file.metadata
    paths = []
    for index in range(metadata.num_columns):
        column = file.schema.column(index)
        if column.physical_type == "BYTE_ARRAY" and any(
            metadata.row_group(group).column(index).has_dictionary_page
            for group in range(metadata.num_row_groups)
        ):
            paths.append(column.path)
    return paths


def _row_groups(table: TableFile, handle: IO[bytes], meter: Meter, chunk_rows: int | None
                ) -> Iterator[Any]:  # pyarrow Tables, dictionary-encoded text kept encoded
    """Each row group read whole, its dictionary-encoded text read as Arrow dictionaries (so a
    value repeated a million times is held once until it is counted).

    A row group is refused before it is read when its uncompressed size (a lower bound of what
    it decodes to) cannot fit: in the whole budget (`chunk_rows` None), or spread over the
    chunks of `chunk_rows` rows it will be cut into.
    """
    plain = open_file(table, handle)
    metadata = plain.metadata
    if chunk_rows is None:
        meter.expect(rows=metadata.num_rows)
    handle.seek(0)
    file = open_file(table, handle, dictionary_columns(plain))
    first = 0
    for group in range(metadata.num_row_groups):
        size, rows = metadata.row_group(group).total_byte_size, metadata.row_group(group).num_rows
        if chunk_rows is None:
            meter.expect(size=size)
        else:
            meter.restart(first)
            meter.expect(size=-(-size // (-(-rows // chunk_rows) + 1)))
        yield file.read_row_group(group)
        first += rows


def read_whole(table: TableFile, meter: Meter) -> Any:  # a pyarrow Table
    """The whole file as one Arrow table of its own types, counted on `meter` (dictionary
    values as the values they stand for) one row group at a time, before it is decoded."""
    import pyarrow as pa

    with table.path.open("rb") as handle:
        schema = open_file(table, handle).schema_arrow
        handle.seek(0)
        read = []
        for group in _row_groups(table, handle, meter, None):
            meter.add_bytes(decoded_nbytes(group))
            meter.add_rows(group.num_rows)
            read.append(group.cast(schema))
    return pa.concat_tables(read) if read else schema.empty_table()


def chunks(table: TableFile, meter: Meter, size: int) -> Iterator[tuple[Any, int]]:
    """The file's rows as Arrow tables of its own types, `size` rows each (the last may be
    shorter; an empty file: one empty table), with their first data row (0-based). Each
    chunk is counted on `meter` before its dictionary values are decoded."""
    import pyarrow as pa

    with table.path.open("rb") as handle:
        schema = open_file(table, handle).schema_arrow
        handle.seek(0)
        pending, first = None, 0
        for group in _row_groups(table, handle, meter, size):
            pending = group if pending is None else pa.concat_tables([pending, group])
            while pending.num_rows >= size:
                yield _counted(pending.slice(0, size), schema, meter, first), first
                pending, first = pending.slice(size), first + size
        if first == 0 or (pending is not None and pending.num_rows):
            rest = pending if pending is not None else schema.empty_table()
            yield _counted(rest, schema, meter, first), first


def _counted(rows: Any, schema: Any, meter: Meter, first: int) -> Any:
    meter.restart(first)
    meter.add_bytes(decoded_nbytes(rows))
    meter.add_rows(rows.num_rows)
    return rows.cast(schema).combine_chunks()


def decoded_nbytes(data: Any) -> int:
    """The bytes an Arrow batch, array or table takes once its dictionaries are expanded."""
    import pyarrow as pa

    if isinstance(data, pa.RecordBatch | pa.Table):
        return sum(decoded_nbytes(column) for column in data.columns)
    if isinstance(data, pa.ChunkedArray):
        return sum(decoded_nbytes(chunk) for chunk in data.chunks)
    kind = data.type
    if pa.types.is_dictionary(kind):
        return _dictionary_nbytes(data)
    if not _holds_dictionary(kind):
        return data.nbytes
    if pa.types.is_struct(kind):
        return sum(decoded_nbytes(child) for child in data.flatten())
    if pa.types.is_map(kind):
        children = (data.keys, data.items)
    else:
        children = (data.flatten(),)
    return 8 * (len(data) + 1) + sum(decoded_nbytes(child) for child in children)


def _holds_dictionary(kind: Any) -> bool:
    import pyarrow as pa

    return pa.types.is_dictionary(kind) or any(
        _holds_dictionary(kind.field(i).type) for i in range(kind.num_fields)
    )


def _dictionary_nbytes(array: Any) -> int:
    """Each index counts as the size of the value it points to, plus its offset."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = array.dictionary
    kind = values.type
    count = len(array) - array.null_count
    if pa.types.is_string(kind) or pa.types.is_binary(kind):
        sizes = pc.add(pc.cast(pc.binary_length(values), pa.int64()), 4)
    elif pa.types.is_large_string(kind) or pa.types.is_large_binary(kind):
        sizes = pc.add(pc.binary_length(values), 8)
    else:  # a fixed-width or another value type: each value at the dictionary's mean size
        return count * max(values.nbytes // max(len(values), 1), 1)
    total = pc.sum(pc.take(sizes, array.indices)).as_py()
    return int(total or 0) + (len(array) + 7) // 8

