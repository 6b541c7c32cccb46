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
from django.conf import settings

from .errors import ReaderError, row_too_big
from .limits import csv_oversize, depth_refusal, json_depth_over
from .parquet import read_parquet

FORMATS = ("jsonl", "json", "csv", "parquet")


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


def read_jsonl(stream: BinaryIO, *, max_row_bytes: int, max_depth: int) -> Iterator[tuple[str, object]]:
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
            yield where, row_too_big(where, size, max_row_bytes)
            continue
        if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            # orjson checks the UTF-8 itself: the line is decoded to text only when it fails.
            value = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            try:
                text = _decode(raw, where)
            except ReaderError as bad_utf8:
                yield where, bad_utf8
                continue
            if not text.strip():
                continue
            value = _json_fallback(text, str(exc), where, max_depth)
            if isinstance(value, ReaderError):
                yield where, value
                continue
        yield where, _depth_checked(value, raw, where, max_depth)


def _json_fallback(text: str, orjson_error: str, where: str, max_depth: int) -> object:
    """What orjson refused, read by the standard library (which words the error better, and reads NaN)."""
    if orjson_error.startswith("depth limit"):
        return ReaderError(where, depth_refusal(max_depth))
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        return ReaderError(where, f"invalid JSON: {exc.msg} at column {exc.colno}")
    except RecursionError:
        return ReaderError(where, depth_refusal(max_depth))


def _depth_checked(value: object, raw: bytes, where: str, max_depth: int) -> object:
    # Nesting needs one bracket a level: a line with no more brackets than the limit (strings included)
    # cannot be too deep, and two C-speed counts are far cheaper than walking the value.
    if raw.count(b"[") + raw.count(b"{") > max_depth and json_depth_over(value, max_depth):
        return ReaderError(where, depth_refusal(max_depth))
    return value


def read_json_array(
    stream: BinaryIO, *, max_row_bytes: int, max_file_bytes: int, max_depth: int
) -> Iterator[tuple[str, object]]:
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
        except RecursionError:
            raise ReaderError(where, depth_refusal(max_depth), fatal=True) from None
        if len(text[pos:end].encode("utf-8")) > max_row_bytes:
            yield where, row_too_big(where, 0, max_row_bytes)
        elif json_depth_over(value, max_depth):
            yield where, ReaderError(where, depth_refusal(max_depth))
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


class _CsvLines:
    """The file's lines for `csv.reader`, one record's bytes at a time. An iterator object rather than a
    generator, so that a record over the size limit can be skipped and a fresh reader go on after it."""

    def __init__(self, stream: BinaryIO, max_row_bytes: int):
        self.stream = stream
        self.max_row_bytes = max_row_bytes
        self.line = 0
        self.record: list[bytes] = []
        self.size = 0

    def start_record(self) -> None:
        self.record, self.size = [], 0

    def _read(self) -> bytes:
        raw = self.stream.readline(self.max_row_bytes + 1)
        if raw:
            self.line += 1
        return raw

    def __iter__(self):
        return self

    def __next__(self) -> str:
        raw = self._read()
        if not raw:
            raise StopIteration
        if self.line == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        self.record.append(raw)
        self.size += len(raw)
        if self.size > self.max_row_bytes:
            raise _Oversized(self.line - len(self.record) + 1, csv_oversize(self.record, self._read))
        return _decode(raw, f"line {self.line}")


class _Oversized(Exception):
    def __init__(self, line: int, scan):
        self.line = line
        self.scan = scan


def _oversized_error(exc: _Oversized, header: list[str], limit: int) -> ReaderError:
    where, scan = f"line {exc.line}", exc.scan
    if scan.largest > limit:
        field = header[scan.largest_field] if scan.largest_field < len(header) else f"cell {scan.largest_field + 1}"
        return ReaderError(
            where,
            f"cell of {scan.largest:,} bytes exceeds the limit of {limit:,} bytes (TANDEM_IMPORT_MAX_ROW_BYTES)",
            field=field,
        )
    return ReaderError(
        where, f"row of {scan.total:,} bytes exceeds the limit of {limit:,} bytes (TANDEM_IMPORT_MAX_ROW_BYTES)"
    )


def read_csv(stream: BinaryIO, *, max_row_bytes: int) -> Iterator[tuple[str, object]]:
    """CSV with a header row; a cell holding JSON (messages, metadata) is decoded by the row parser.

    A cell may be as large as a row (the csv module's own 128 KiB field limit is raised to the row limit);
    a row over the limit is reported with its largest cell and skipped."""
    if csv.field_size_limit() < max_row_bytes:
        csv.field_size_limit(max_row_bytes)
    lines = _CsvLines(stream, max_row_bytes)
    reader = csv.reader(lines, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return
    except _Oversized as exc:
        raise _fatal(_oversized_error(exc, [], max_row_bytes), exc.line) from None
    except (ReaderError, csv.Error) as exc:
        raise _fatal(exc, lines.line) from None
    header = [h.strip() for h in header]
    if len(set(header)) != len(header):
        raise ReaderError("line 1", "the header names a column twice", fatal=True)
    while True:
        lines.start_record()
        start_line = lines.line + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except _Oversized as exc:
            yield f"line {exc.line}", _oversized_error(exc, header, max_row_bytes)
            reader = csv.reader(lines, strict=True)
            continue
        except (ReaderError, csv.Error) as exc:
            raise _fatal(exc, lines.line) from None
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


def read_rows(
    stream: BinaryIO,
    *,
    filename: str,
    max_row_bytes: int,
    max_file_bytes: int,
    fmt: str | None = None,
    max_rows: int | None = None,
    max_depth: int | None = None,
    max_expansion: int | None = None,
) -> Iterator[tuple[str, object]]:
    """Yield (where, row-or-ReaderError) for every row of an upload or file. The limits not given are the
    settings' (TANDEM_IMPORT_MAX_ROWS, TANDEM_IMPORT_MAX_JSON_DEPTH, TANDEM_IMPORT_MAX_EXPANSION)."""
    max_rows = settings.TANDEM_IMPORT_MAX_ROWS if max_rows is None else max_rows
    max_depth = settings.TANDEM_IMPORT_MAX_JSON_DEPTH if max_depth is None else max_depth
    max_expansion = settings.TANDEM_IMPORT_MAX_EXPANSION if max_expansion is None else max_expansion
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
    if fmt == "parquet":
        rows = read_parquet(
            stream,
            max_row_bytes=max_row_bytes,
            max_rows=max_rows,
            max_file_bytes=max_file_bytes,
            max_expansion=max_expansion,
            file_size=size,
        )
    elif fmt == "csv":
        rows = read_csv(stream, max_row_bytes=max_row_bytes)
    else:
        head = stream.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
        stream.seek(0)
        array = head.startswith(b"[") if fmt == "jsonl" else not head.startswith(b"{")
        if array:
            rows = read_json_array(
                stream, max_row_bytes=max_row_bytes, max_file_bytes=max_file_bytes, max_depth=max_depth
            )
        else:
            rows = read_jsonl(stream, max_row_bytes=max_row_bytes, max_depth=max_depth)
    for count, (where, row) in enumerate(rows, start=1):
        if count > max_rows:
            raise ReaderError(where, f"the file has more than {max_rows:,} rows (TANDEM_IMPORT_MAX_ROWS)", fatal=True)
        yield where, row


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
