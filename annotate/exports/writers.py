"""Streaming, atomic, byte-deterministic writers for JSONL, Parquet and CSV, one file per split.

Every writer is given the export's columns (a `pyarrow.Schema`) up front, so the file's shape comes from
the format and not from the data: an empty export and a full one have the same columns and types.

- JSONL: one JSON object per line, keys sorted (orjson), UTF-8.
- Parquet: the declared schema (message lists as list<struct<role, content>>), zstd, written in row groups
  of `row_group_size` rows, so at most one row group per split is held in memory. pyarrow writes no
  timestamp into a Parquet file; `created_by` names the pyarrow version, so bytes are identical for the same
  input on the same pyarrow.
- CSV: RFC 4180 (CRLF between rows), a header of the column names; lists and structs as JSON text (sorted
  keys) in the cell, booleans as true/false, floats as their shortest round-tripping text, nulls as empty
  cells (so are empty strings: CSV cannot tell them apart). Text that a spreadsheet would run as a formula
  gets a leading `'` (`neutralise_formula`, OWASP's rule); JSONL and Parquet keep every value exactly.

Files are written to `<final name>.partial` and renamed over the final name only when every split has
been written; on any exception every partial file is removed and no final file is created or replaced.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import orjson

if TYPE_CHECKING:
    import pyarrow as pa

# pyarrow is imported where a Parquet file is written: the CSV cell rule (`_cell`) is used by web pages too
# (annotate/views/flags.py), which need not carry pyarrow (~60 MiB).

PARTIAL_SUFFIX = ".partial"
DEFAULT_ROW_GROUP_SIZE = 10_000
# Large enough to amortise a syscall, small enough not to matter next to a row group.
_BUFFER_BYTES = 1 << 20


class SplitWriter(Protocol):
    def write(self, row: Mapping[str, Any]) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


class _TextFileWriter:
    """A writer over one open file: flushed to disk on close (the rename that follows must not publish a file
    the disk does not have yet), simply closed on abort."""

    _file: Any

    def close(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def abort(self) -> None:
        self._file.close()


class JsonlWriter(_TextFileWriter):
    def __init__(self, path: Path, schema: pa.Schema):
        self._file = open(path, "wb", buffering=_BUFFER_BYTES)  # noqa: SIM115 (closed by close/abort)

    def write(self, row: Mapping[str, Any]) -> None:
        self._file.write(orjson.dumps(row, option=orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE))


FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formula(text: str) -> str:
    """Text a spreadsheet would run as a formula, made inert with a leading `'` (OWASP, "CSV Injection":
    https://owasp.org/www-community/attacks/CSV_Injection — cells that begin with =, +, -, @, tab or
    carriage return). LLM responses are untrusted, and an admin opens the export in a spreadsheet: a
    response "=HYPERLINK(...)" must stay text there. Numbers are written as numbers, not through here."""
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    if isinstance(value, float):
        return repr(value)  # the shortest text that reads back as the same float
    if isinstance(value, str):
        return neutralise_formula(value)
    return str(value)


class CsvWriter(_TextFileWriter):
    def __init__(self, path: Path, schema: pa.Schema):
        self._names = schema.names
        self._file = open(path, "w", encoding="utf-8", newline="", buffering=_BUFFER_BYTES)  # noqa: SIM115
        # CRLF (RFC 4180): the csv module quotes a cell only for the characters of the line terminator, so
        # with "\n" alone a bare carriage return inside a cell would end the row for every reader.
        self._csv = csv.writer(self._file, lineterminator="\r\n")
        self._csv.writerow(self._names)

    def write(self, row: Mapping[str, Any]) -> None:
        self._csv.writerow([_cell(row.get(name)) for name in self._names])


class ParquetWriter:
    def __init__(self, path: Path, schema: pa.Schema, row_group_size: int = DEFAULT_ROW_GROUP_SIZE):
        self._schema = schema
        self._row_group_size = row_group_size
        self._rows: list[Mapping[str, Any]] = []
        import pyarrow.parquet as pq

        self._file = open(path, "wb", buffering=_BUFFER_BYTES)  # noqa: SIM115
        self._writer = pq.ParquetWriter(
            self._file,
            schema,
            compression="zstd",
            # Statistics are a pure function of the data; they stay for readers that skip row groups by them.
            write_statistics=True,
            use_dictionary=True,
        )

    def write(self, row: Mapping[str, Any]) -> None:
        self._rows.append(row)
        if len(self._rows) >= self._row_group_size:
            self._flush()

    def _flush(self) -> None:
        if self._rows:
            import pyarrow as pa

            table = pa.Table.from_pylist(self._rows, schema=self._schema)
            self._writer.write_table(table, row_group_size=self._row_group_size)
            self._rows = []

    def close(self) -> None:
        self._flush()
        self._writer.close()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def abort(self) -> None:
        self._rows = []
        with contextlib.suppress(Exception):
            self._writer.close()
        self._file.close()


def open_writer(file_type: str, path: Path, schema: pa.Schema, *, row_group_size: int) -> SplitWriter:
    if file_type == "jsonl":
        return JsonlWriter(path, schema)
    if file_type == "csv":
        return CsvWriter(path, schema)
    if file_type == "parquet":
        return ParquetWriter(path, schema, row_group_size)
    raise ValueError(f"file_type must be jsonl, parquet or csv, got {file_type!r}")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(_BUFFER_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_splits(
    rows: Iterable[tuple[str, Mapping[str, Any]]],
    *,
    paths: Mapping[str, Path],
    file_type: str,
    schema: pa.Schema,
    row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
) -> dict[str, dict[str, Any]]:
    """Write each (split, row) to its split's file; return {split: {path, rows, bytes, sha256}}.

    Every split in `paths` gets a file, empty or not, so an export's set of files does not depend on its data.
    A row for a split not in `paths` is an error (and, like any error, leaves no file behind).
    """
    if row_group_size < 1:
        raise ValueError("row_group_size must be at least 1")
    partials = {split: Path(str(path) + PARTIAL_SUFFIX) for split, path in paths.items()}
    writers: dict[str, SplitWriter] = {}
    counts = dict.fromkeys(paths, 0)
    try:
        for split, partial in partials.items():
            writers[split] = open_writer(file_type, partial, schema, row_group_size=row_group_size)
        for split, row in rows:
            writer = writers.get(split)
            if writer is None:
                raise ValueError(f"a row for split {split!r}, which this export does not have ({', '.join(paths)})")
            writer.write(row)
            counts[split] += 1
        for split in list(writers):
            writers.pop(split).close()
    except BaseException:
        # BaseException too: a worker's hard time limit or Ctrl-C must not leave a half-written file behind.
        for writer in writers.values():
            with contextlib.suppress(Exception):
                writer.abort()
        for partial in partials.values():
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
        raise
    result: dict[str, dict[str, Any]] = {}
    for split, path in paths.items():
        result[split] = {
            "path": str(path),
            "rows": counts[split],
            "bytes": partials[split].stat().st_size,
            "sha256": sha256_of(partials[split]),
        }
    for split, path in paths.items():
        os.replace(partials[split], path)
    return result
