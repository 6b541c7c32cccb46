"""items_preview: the first rows of an item file as they would be stored, read by the import's own code."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import islice
from typing import BinaryIO

from annotate.models import Campaign

from .errors import RowError, RowProblem
from .items import iter_source
from .mapping import Mapping, mapping_apply, mapping_field
from .readers import ReaderError
from .rows import ItemRow, item_row_parse

PREVIEW_ROWS = 10


@dataclass
class PreviewRow:
    where: str
    source: object  # the row as read from the file, before mapping
    item: ItemRow | None = None
    error: RowError | None = None


@dataclass
class Preview:
    rows: list[PreviewRow] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)  # source columns of the rows shown, in file order
    fatal: RowError | None = None  # set when the file cannot be read at all

    @property
    def recognised(self) -> bool:
        """Every row shown parsed: the layout (with the mapping, if any) is understood."""
        return self.fatal is None and bool(self.rows) and all(row.error is None for row in self.rows)


def items_preview(
    *,
    campaign: Campaign,
    stream: BinaryIO,
    filename: str,
    fmt: str | None = None,
    mapping: Mapping | None = None,
    limit: int = PREVIEW_ROWS,
) -> Preview:
    """Read the first `limit` rows and parse each exactly as `items_import` would; writes nothing."""
    mapping = mapping or {}
    preview = Preview()
    columns: dict[str, None] = {}
    try:
        for where, raw in islice(iter_source(stream, filename=filename, fmt=fmt), limit):
            row = PreviewRow(where=where, source=raw)
            preview.rows.append(row)
            if isinstance(raw, ReaderError):
                row.error = RowError(filename, raw.where or where, raw.field, str(raw))
                continue
            if isinstance(raw, dict):
                columns.update(dict.fromkeys(raw))
            try:
                row.item = item_row_parse(mapping_apply(raw, mapping), kind=campaign.kind, schema=campaign.label_schema)
            except RowProblem as exc:
                row.error = RowError(filename, where, mapping_field(exc.field, mapping), str(exc))
    except ReaderError as exc:
        preview.fatal = RowError(filename, exc.where, exc.field, str(exc))
    if not preview.rows and preview.fatal is None:
        preview.fatal = RowError(filename, "", "", "the file has no rows")
    preview.columns = list(columns)
    return preview
