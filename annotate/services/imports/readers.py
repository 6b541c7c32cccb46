"""Row readers for JSONL, JSON arrays, CSV and Parquet that say where every row came from.

Each reader yields `(where, row)` pairs — `where` is "line N" (or "row N" for Parquet) — and raises
RowProblem-carrying `ReaderError`s for rows it cannot decode. JSONL and CSV are read as a stream,
one line at a time, so memory does not grow with the file.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from typing import BinaryIO

import orjson

FORMATS = ("jsonl", "json", "csv", "parquet")


class ReaderError(ValueError):
    def __init__(self, where: str, message: str, field: str = "", fatal: bool = False):
        super().__init__(message)
        self.where = where
        self.field = field
        self.fatal = fatal  # True when reading cannot go on past this point


def detect_format(filename: str, head: bytes) -> str:
    """Pick the format from the file name, falling back to the first bytes."""
    name = filename.lower()
    for suffix, fmt in ((".jsonl", "jsonl"), (".ndjson", "jsonl"), (".csv", "csv"), (".parquet", "parquet")):
        if name.endswith(suffix):
            return fmt
    if head.startswith(b"PAR1"):
        return "parquet"
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"["):
        return "json"
    if stripped.startswith(b"{"):
        return "jsonl"
    if name.endswith(".json"):
        return "json"
    raise ReaderError("", f"cannot tell the format of {filename!r}: use .jsonl, .json, .csv or .parquet")


def _decode(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = raw[exc.start : exc.start + 1].hex()
        raise ReaderError(where, f"not valid UTF-8 (byte 0x{bad} at byte {exc.start + 1} of the line)") from None


def _too_big(where: str, size: int, limit: int) -> ReaderError:
    return ReaderError(
        where,
        f"row is over the size limit of {limit:,} bytes (TANDEM_IMPORT_MAX_ROW_BYTES)"
        + (f": {size:,} bytes" if size else ""),
    )


def read_jsonl(stream: BinaryIO, *, max_row_bytes: int) -> Iterator[tuple[str, object]]:
    line_no = 0
    while True:
        raw = stream.readline(max_row_bytes + 1)
        if not raw:
            return
        line_no += 1
        where = f"line {line_no}"
        if len(raw) > max_row_bytes and not raw.endswith(b"\n"):
            # Skip the rest of the oversized line so the following lines keep their numbers.
            size = len(raw)
            while raw and not raw.endswith(b"\n"):
                raw = stream.readline(1 << 20)
                size += len(raw)
            yield where, _too_big(where, size, max_row_bytes)
            continue
        if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            text = _decode(raw, where)
        except ReaderError as exc:
            yield where, exc
            continue
        if not text.strip():
            continue
        try:
            yield where, orjson.loads(raw)
        except orjson.JSONDecodeError:
            try:
                json.loads(text)
            except json.JSONDecodeError as exc:  # the standard library words the error better
                yield where, ReaderError(where, f"invalid JSON: {exc.msg} at column {exc.colno}")
            else:  # valid JSON orjson refuses (e.g. NaN): take the standard library's reading
                yield where, json.loads(text)


def read_json_array(stream: BinaryIO, *, max_row_bytes: int, max_file_bytes: int) -> Iterator[tuple[str, object]]:
    """A JSON array is decoded element by element so each error names the element's line."""
    raw = stream.read(max_file_bytes + 1)
    if len(raw) > max_file_bytes:
        raise ReaderError(
            "", f"file is over the size limit of {max_file_bytes:,} bytes (TANDEM_IMPORT_MAX_FILE_BYTES)", fatal=True
        )
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ReaderError(
            f"line {line}", f"not valid UTF-8 (byte 0x{raw[exc.start : exc.start + 1].hex()})", fatal=True
        ) from None
    del raw
    decoder = json.JSONDecoder()
    pos = _skip_ws(text, 0)
    if pos >= len(text) or text[pos] != "[":
        raise ReaderError("line 1", "expected a JSON array ('[') or one JSON object per line", fatal=True)
    pos = _skip_ws(text, pos + 1)
    line, counted_to = 1, 0
    if pos < len(text) and text[pos] == "]":
        return
    index = 0
    while True:
        line += text.count("\n", counted_to, pos)
        counted_to = pos
        index += 1
        where = f"line {line} (element {index})"
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            err_line = text.count("\n", 0, exc.pos) + 1
            raise ReaderError(f"line {err_line} (element {index})", f"invalid JSON: {exc.msg}", fatal=True) from None
        if len(text[pos:end].encode("utf-8")) > max_row_bytes:
            yield where, _too_big(where, 0, max_row_bytes)
        else:
            yield where, value
        pos = _skip_ws(text, end)
        if pos < len(text) and text[pos] == ",":
            pos = _skip_ws(text, pos + 1)
            continue
        if pos < len(text) and text[pos] == "]":
            if _skip_ws(text, pos + 1) != len(text):
                raise ReaderError(
                    f"line {text.count(chr(10), 0, pos) + 1}", "unexpected text after the array", fatal=True
                )
            return
        raise ReaderError(
            f"line {text.count(chr(10), 0, pos) + 1}", "expected ',' or ']' between array elements", fatal=True
        )


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def read_csv(stream: BinaryIO, *, max_row_bytes: int) -> Iterator[tuple[str, object]]:
    """CSV with a header row; a cell holding JSON (messages, metadata) is decoded by the row parser."""
    state = {"line": 0, "bytes": 0}

    def lines() -> Iterator[str]:
        first = True
        for raw in iter(lambda: stream.readline(max_row_bytes + 1), b""):
            state["line"] += 1
            state["bytes"] += len(raw)
            if first and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            first = False
            if state["bytes"] > max_row_bytes:
                raise _too_big(f"line {state['line']}", state["bytes"], max_row_bytes)
            yield _decode(raw, f"line {state['line']}")

    reader = csv.reader(lines(), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return
    except (ReaderError, csv.Error) as exc:
        raise _fatal(exc, state["line"]) from None
    header = [h.strip() for h in header]
    if len(set(header)) != len(header):
        raise ReaderError("line 1", "the header names a column twice", fatal=True)
    while True:
        state["bytes"] = 0
        start_line = state["line"] + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except (ReaderError, csv.Error) as exc:
            raise _fatal(exc, state["line"]) from None
        where = f"line {start_line}"
        if not cells or cells == [""]:
            continue
        if len(cells) != len(header):
            yield where, ReaderError(where, f"{len(cells)} cells, but the header has {len(header)} columns")
            continue
        yield where, {name: value for name, value in zip(header, cells, strict=True) if value != ""}


def _fatal(exc: Exception, line: int) -> ReaderError:
    if isinstance(exc, ReaderError):
        exc.fatal = True
        return exc
    return ReaderError(f"line {line}", f"malformed CSV: {exc}", fatal=True)


def read_parquet(stream: BinaryIO, *, max_row_bytes: int) -> Iterator[tuple[str, object]]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(stream)
    except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
        raise ReaderError("", f"not a readable Parquet file: {exc}", fatal=True) from None
    row_no = 0
    for batch in parquet.iter_batches(batch_size=2048):
        for row in batch.to_pylist():
            row_no += 1
            where = f"row {row_no}"
            row = {k: v for k, v in row.items() if v is not None}
            if len(json.dumps(row, default=str)) > max_row_bytes:
                yield where, _too_big(where, 0, max_row_bytes)
                continue
            yield where, row


def read_rows(
    stream: BinaryIO, *, filename: str, max_row_bytes: int, max_file_bytes: int, fmt: str | None = None
) -> Iterator[tuple[str, object]]:
    """Yield (where, row-or-ReaderError) for every row of an upload or file."""
    if not fmt:
        head = stream.read(64)
        stream.seek(0)
        fmt = detect_format(filename, head)
    if fmt not in FORMATS:
        raise ReaderError("", f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}", fatal=True)
    size = _size_of(stream)
    if size is not None and size > max_file_bytes:
        raise ReaderError(
            "", f"file is over the size limit of {max_file_bytes:,} bytes (TANDEM_IMPORT_MAX_FILE_BYTES)", fatal=True
        )
    if fmt == "jsonl":
        head = stream.read(64)
        stream.seek(0)
        if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"["):
            yield from read_json_array(stream, max_row_bytes=max_row_bytes, max_file_bytes=max_file_bytes)
        else:
            yield from read_jsonl(stream, max_row_bytes=max_row_bytes)
    elif fmt == "json":
        head = stream.read(64)
        stream.seek(0)
        if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
            yield from read_jsonl(stream, max_row_bytes=max_row_bytes)
        else:
            yield from read_json_array(stream, max_row_bytes=max_row_bytes, max_file_bytes=max_file_bytes)
    elif fmt == "csv":
        yield from read_csv(stream, max_row_bytes=max_row_bytes)
    else:
        yield from read_parquet(stream, max_row_bytes=max_row_bytes)


def _size_of(stream: BinaryIO) -> int | None:
    try:
        return os.fstat(stream.fileno()).st_size
    except (AttributeError, OSError, io.UnsupportedOperation):
        try:
            pos = stream.tell()
            stream.seek(0, os.SEEK_END)
            size = stream.tell()
            stream.seek(pos)
            return size
        except (AttributeError, OSError):
            return None
