"""How far an import lets a file push the server's decoders: JSON nesting and the cells of an oversized CSV row.

Decoders recurse: the standard library's JSON decoder raises RecursionError around a thousand levels,
orjson refuses at 1,024 when reading and at 255 when writing (our content hash writes every row). A
nesting limit far below both, checked right after decoding, turns all three into one error that names
the line. A CSV row over the size limit is not kept, only followed to its end, so the error can say
which cell is too big and reading goes on with the next row.
"""

from __future__ import annotations

import re

SPECIAL = re.compile(rb'[",\n]')


def json_depth_over(value: object, limit: int) -> bool:
    """Whether decoded JSON nests more than `limit` arrays and objects deep (iteratively: no recursion)."""
    stack = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(current, dict):
            stack.extend((v, depth + 1) for v in current.values() if isinstance(v, (dict, list)))
        elif isinstance(current, list):
            stack.extend((v, depth + 1) for v in current if isinstance(v, (dict, list)))
    return False


def max_json_depth() -> int:
    from django.conf import settings

    return settings.TANDEM_IMPORT_MAX_JSON_DEPTH


def depth_refusal(limit: int) -> str:
    return f"JSON nested deeper than the limit of {limit} levels (TANDEM_IMPORT_MAX_JSON_DEPTH)"


class RecordScan:
    """Follows one CSV record over raw bytes (the excel dialect: ',' between cells, '"' around them, doubled
    inside) to where it ends, measuring each cell and keeping none of it."""

    def __init__(self) -> None:
        self.in_quotes = False
        self.cell = 0  # bytes of the current cell so far
        self.field = 0
        self.largest_field, self.largest = 0, 0
        self.total = 0
        self.done = False

    def _end_cell(self) -> None:
        if self.cell > self.largest:
            self.largest_field, self.largest = self.field, self.cell
        self.field += 1
        self.cell = 0

    def feed(self, chunk: bytes) -> bool:
        """Read a chunk (a line, or part of one); True once the record has ended."""
        self.total += len(chunk)
        pos = 0
        while True:
            match = SPECIAL.search(chunk, pos)
            if match is None:
                self.cell += len(chunk) - pos
                return False
            at = match.start()
            char = chunk[at : at + 1]
            self.cell += at - pos
            pos = at + 1
            if char == b'"':
                if self.in_quotes and chunk[pos : pos + 1] == b'"':
                    self.cell, pos = self.cell + 2, pos + 1
                    continue
                if self.in_quotes or self.cell == 0:
                    self.in_quotes = not self.in_quotes
                self.cell += 1
            elif self.in_quotes:
                self.cell += 1
            else:
                self._end_cell()
                if char == b"\n":
                    self.done = True
                    return True


def csv_oversize(chunks: list[bytes], more) -> RecordScan:
    """Scan a record that went over the limit: the chunks read so far, then `more()` until it ends."""
    scan = RecordScan()
    for chunk in chunks:
        if scan.feed(chunk):
            return scan
    while not scan.done:
        chunk = more()
        if not chunk:
            scan._end_cell()
            break
        scan.feed(chunk)
    return scan
