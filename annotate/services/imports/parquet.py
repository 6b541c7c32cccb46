"""Reading Parquet without trusting it: the footer is checked before any data is read, and each row group's
decoded size before its rows become Python objects.

A Parquet file can be tiny and decode to gigabytes: a column of one repeated 1 MB string is stored once in
a dictionary page and a few bytes of run-length indices per row group. The footer cannot tell (it counts
encoded bytes), so every text column is read as a dictionary — in memory as it is on disk — and the bytes
it would decode to are summed from the dictionary's value lengths before a single row is materialized.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from .errors import ReaderError, row_too_big

SLICE_ROWS = 256  # rows turned into Python objects at a time
# Decoded bytes always allowed, however small the file; beyond it, TANDEM_IMPORT_MAX_EXPANSION × file size.
EXPANSION_FLOOR = 64 * 1024 * 1024


def decoded_bytes(array) -> int:
    """The bytes an Arrow array holds once its dictionaries are expanded, without expanding them."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(array, pa.ChunkedArray):
        return sum(decoded_bytes(chunk) for chunk in array.chunks)
    if isinstance(array, pa.DictionaryArray):
        lengths = pc.binary_length(array.dictionary) if _is_binary(array.dictionary.type) else None
        if lengths is None:
            return array.nbytes
        total = pc.sum(pc.take(lengths, array.indices)).as_py() or 0
        return total + array.indices.nbytes
    if isinstance(array, (pa.ListArray, pa.LargeListArray, pa.MapArray, pa.FixedSizeListArray)):
        return decoded_bytes(array.values) + (array.offsets.nbytes if hasattr(array, "offsets") else 0)
    if isinstance(array, pa.StructArray):
        return sum(decoded_bytes(array.field(i)) for i in range(array.type.num_fields))
    return array.nbytes


def _is_binary(kind) -> bool:
    import pyarrow as pa

    kinds = (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary, pa.types.is_large_binary)
    return any(is_kind(kind) for is_kind in kinds)


def _footer_check(parquet, *, max_rows: int, max_file_bytes: int) -> list[str]:
    """Refuse from the footer alone: too many rows, too many (encoded, uncompressed) bytes. Returns the
    byte-array leaf columns, to be read as dictionaries."""
    meta = parquet.metadata
    if meta.num_rows > max_rows:
        raise ReaderError(
            "", f"the file has {meta.num_rows:,} rows; the limit is {max_rows:,} (TANDEM_IMPORT_MAX_ROWS)", fatal=True
        )
    uncompressed = 0
    byte_columns: set[str] = set()
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for c in range(group.num_columns):
            column = group.column(c)
            uncompressed += column.total_uncompressed_size
            if column.physical_type == "BYTE_ARRAY":
                byte_columns.add(column.path_in_schema)
    if uncompressed > max_file_bytes:
        raise ReaderError(
            "",
            f"the file's data is {uncompressed:,} bytes uncompressed; the limit is {max_file_bytes:,} "
            "(TANDEM_IMPORT_MAX_FILE_BYTES)",
            fatal=True,
        )
    return sorted(byte_columns)


def read_parquet(
    stream: BinaryIO,
    *,
    max_row_bytes: int,
    max_rows: int,
    max_file_bytes: int,
    max_expansion: int,
    file_size: int | None,
) -> Iterator[tuple[str, object]]:
    """Rows of a Parquet file as `(where, row)`, one row group at a time, within the limits."""
    import json

    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(stream)
        byte_columns = _footer_check(parquet, max_rows=max_rows, max_file_bytes=max_file_bytes)
        parquet = pq.ParquetFile(stream, read_dictionary=byte_columns)
    except ReaderError:
        raise
    except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
        raise ReaderError("", f"not a readable Parquet file: {exc}", fatal=True) from None
    budget = min(max_file_bytes, max(EXPANSION_FLOOR, max_expansion * (file_size or 0)))
    decoded, row_no = 0, 0
    for g in range(parquet.metadata.num_row_groups):
        try:
            table = parquet.read_row_group(g)
        except Exception as exc:
            raise ReaderError(f"row {row_no + 1}", f"unreadable Parquet row group {g + 1}: {exc}", fatal=True) from None
        decoded += sum(decoded_bytes(column) for column in table.columns)
        if decoded > budget:
            raise ReaderError(
                f"row {row_no + 1}",
                f"the file decodes to more than {budget:,} bytes (row group {g + 1} of a {file_size or 0:,}-byte "
                f"file); the limit is TANDEM_IMPORT_MAX_EXPANSION={max_expansion} times the file's size, at least "
                f"{EXPANSION_FLOOR:,} and at most TANDEM_IMPORT_MAX_FILE_BYTES={max_file_bytes:,}",
                fatal=True,
            )
        for start in range(0, table.num_rows, SLICE_ROWS):
            for row in table.slice(start, SLICE_ROWS).to_pylist():
                row_no += 1
                where = f"row {row_no}"
                row = {k: v for k, v in row.items() if v is not None}
                if len(json.dumps(row, default=str)) > max_row_bytes:
                    yield where, row_too_big(where, 0, max_row_bytes)
                    continue
                yield where, row
        del table
