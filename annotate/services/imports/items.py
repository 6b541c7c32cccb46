"""items_import: all-or-nothing, idempotent, streaming import of items into a campaign."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from annotate.models import Campaign, Item
from routing.api import route_new_items

from .errors import ImportFailed, RowError, RowProblem
from .readers import ReaderError, read_rows
from .rows import ItemRow, changed_fields, item_row_parse

BATCH_SIZE = 5000
MAX_CONFLICTS_LISTED = 100
ANALYZE_AFTER = 1000


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    unchanged: int = 0
    conflicts: list[dict] = field(default_factory=list)
    n_conflicts: int = 0
    format: str = ""

    def as_dict(self) -> dict:
        return {
            "rows": self.rows,
            "created": self.created,
            "unchanged": self.unchanged,
            "conflicts": self.n_conflicts,
            "conflict_rows": self.conflicts,
        }


def iter_source(stream: BinaryIO, *, filename: str, fmt: str | None = None) -> Iterator[tuple[str, object]]:
    return read_rows(
        stream,
        filename=filename,
        fmt=fmt,
        max_row_bytes=settings.TANDEM_IMPORT_MAX_ROW_BYTES,
        max_file_bytes=settings.TANDEM_IMPORT_MAX_FILE_BYTES,
    )


class ErrorCollector:
    """Keeps the first problems; once there is one, nothing more is written."""

    def __init__(self, filename: str):
        self.filename = filename
        self.errors: list[RowError] = []

    def add(self, where: str, field_name: str, message: str) -> None:
        self.errors.append(RowError(self.filename, where, field_name, message))

    @property
    def full(self) -> bool:
        return len(self.errors) >= ImportFailed.MAX_ERRORS

    def raise_if_any(self) -> None:
        if self.errors:
            raise ImportFailed(self.errors)


def rows_checked(source: Iterable[tuple[str, object]], errors: ErrorCollector) -> Iterator[tuple[str, object]]:
    """Pass good rows on, record reader errors; stop at a fatal one or when enough are found."""
    try:
        for where, row in source:
            if isinstance(row, ReaderError):
                errors.add(row.where or where, row.field, str(row))
            else:
                yield where, row
            if errors.full:
                return
    except ReaderError as exc:
        errors.add(exc.where, exc.field, str(exc))


def items_import(
    *,
    campaign: Campaign,
    stream: BinaryIO,
    filename: str,
    fmt: str | None = None,
    progress: Callable[..., None] | None = None,
) -> ImportReport:
    """Import every row of `stream` into `campaign`, or nothing at all (ImportFailed)."""
    errors = ErrorCollector(filename)
    report = ImportReport()
    seen: dict[str, str] = {}  # external id -> where it first appeared in this file
    batch: list[tuple[str, ItemRow]] = []
    with transaction.atomic():
        # Serialise imports into one campaign so two concurrent uploads cannot both create an id.
        Campaign.objects.select_for_update().filter(pk=campaign.pk).exists()
        for where, raw in rows_checked(iter_source(stream, filename=filename, fmt=fmt), errors):
            report.rows += 1
            try:
                row = item_row_parse(raw, kind=campaign.kind, schema=campaign.label_schema)
            except RowProblem as exc:
                errors.add(where, exc.field, str(exc))
                continue
            first = seen.get(row.external_id)
            if first is not None:
                errors.add(where, "id", f"duplicate id {row.external_id!r} (first at {first})")
                continue
            seen[row.external_id] = where
            if errors.errors:
                continue  # keep validating to report more problems, but write nothing more
            batch.append((where, row))
            if len(batch) >= BATCH_SIZE:
                _flush(campaign, batch, report)
                batch = []
                if progress:
                    progress(done=report.rows)
            if errors.full:
                break
        if not errors.errors and report.rows == 0:
            errors.add("", "", "the file has no rows")
        errors.raise_if_any()
        if batch:
            _flush(campaign, batch, report)
        # Also routes items left unrouted by an earlier policy change; a no-op when none are.
        route_new_items(campaign=campaign)
        if report.created >= ANALYZE_AFTER and connection.vendor == "postgresql":
            # Fresh statistics, so the annotators' queue query is planned for the real table size
            # at once instead of after autovacuum gets round to it.
            with connection.cursor() as cursor:
                cursor.execute(f"ANALYZE {Item._meta.db_table}")
    return report


def _flush(campaign: Campaign, batch: list[tuple[str, ItemRow]], report: ImportReport) -> None:
    ids = [row.external_id for _, row in batch]
    existing = dict(
        Item.objects.filter(campaign=campaign, external_id__in=ids).values_list("external_id", "content_hash")
    )
    new_rows: list[ItemRow] = []
    conflicted: list[tuple[str, ItemRow]] = []
    for where, row in batch:
        old_hash = existing.get(row.external_id)
        if old_hash is None:
            new_rows.append(row)
        elif old_hash == row.content_hash:
            report.unchanged += 1
        else:
            conflicted.append((where, row))
    if conflicted:
        _record_conflicts(campaign, conflicted, report)
    if new_rows:
        _insert(campaign, new_rows)
        report.created += len(new_rows)


def _record_conflicts(campaign: Campaign, conflicted: list[tuple[str, ItemRow]], report: ImportReport) -> None:
    report.n_conflicts += len(conflicted)
    room = MAX_CONFLICTS_LISTED - len(report.conflicts)
    if room <= 0:
        return
    conflicted = conflicted[:room]
    stored = {
        values["external_id"]: values
        for values in Item.objects.filter(
            campaign=campaign, external_id__in=[row.external_id for _, row in conflicted]
        ).values("external_id", *ItemRow.CONTENT_FIELDS)
    }
    for where, row in conflicted:
        report.conflicts.append(
            {
                "id": row.external_id,
                "where": where,
                "fields": changed_fields(stored[row.external_id], row),
                "message": "an item with this id exists with different content; it was left unchanged",
            }
        )


COPY_COLUMNS = (
    "campaign_id",
    "external_id",
    "prompt",
    "response_a",
    "response_b",
    "model_a",
    "model_b",
    "response",
    "reference",
    "metadata",
    "gold_label",
    "route",
    "content_hash",
    "human_label_count",
    "assigned_count",
    "queue_rank",
    "created_at",
)


def _insert(campaign: Campaign, rows: list[ItemRow]) -> None:
    now = timezone.now()
    if connection.vendor == "postgresql":
        # COPY is several times faster than multi-row INSERT for wide text rows.
        sql = f"COPY {Item._meta.db_table} ({', '.join(COPY_COLUMNS)}) FROM STDIN"
        with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(
                    (
                        campaign.pk,
                        row.external_id,
                        _json(row.prompt),
                        row.response_a,
                        row.response_b,
                        row.model_a,
                        row.model_b,
                        row.response,
                        row.reference,
                        _json(row.metadata),
                        None if row.gold_label is None else _json(row.gold_label),
                        Item.Route.UNROUTED,
                        row.content_hash,
                        0,
                        0,
                        queue_rank(campaign.pk, row.external_id),
                        now,
                    )
                )
        return
    Item.objects.bulk_create(
        [
            Item(
                campaign=campaign,
                external_id=row.external_id,
                prompt=row.prompt,
                response_a=row.response_a,
                response_b=row.response_b,
                model_a=row.model_a,
                model_b=row.model_b,
                response=row.response,
                reference=row.reference,
                metadata=row.metadata,
                gold_label=row.gold_label,
                content_hash=row.content_hash,
                queue_rank=queue_rank(campaign.pk, row.external_id),
            )
            for row in rows
        ],
        batch_size=500,
    )


def queue_rank(campaign_id: int, external_id: str) -> int:
    """A stable pseudo-random rank: the same item keeps its place, each campaign has its own order."""
    digest = hashlib.blake2b(f"{campaign_id}:{external_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)
