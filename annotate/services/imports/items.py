"""items_import: all-or-nothing, idempotent, streaming import of items into a campaign."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import orjson
import psycopg.errors
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from psycopg.copy import QueuedLibpqWriter

from annotate.models import Campaign, Item
from routing.api import initial_route, items_imported, route_new_items

from .errors import ImportFailed, RowError, RowProblem
from .mapping import Mapping, mapping_apply, mapping_field
from .readers import ReaderError, _size_of, read_rows
from .rows import ItemRow, changed_fields, item_row_parse

BATCH_SIZE = 2000
PROGRESS_EVERY = 5000
MAX_CONFLICTS_LISTED = 100
ANALYZE_AFTER = 1000


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    unchanged: int = 0
    conflicts: list[dict] = field(default_factory=list)
    n_conflicts: int = 0
    dry_run: bool = False
    errors: list[RowError] = field(default_factory=list)  # a dry run's problems (a real import raises them)

    @property
    def valid(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict:
        out = {
            "rows": self.rows,
            "created": self.created,
            "unchanged": self.unchanged,
            "conflicts": self.n_conflicts,
            "conflict_rows": self.conflicts,
        }
        if self.dry_run:
            out.update({"dry_run": True, "valid": self.valid, "errors": [e.as_dict() for e in self.errors]})
        return out


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
    mapping: Mapping | None = None,
    dry_run: bool = False,
) -> ImportReport:
    """Import every row of `stream` into `campaign`, or nothing at all (ImportFailed).

    One transaction: the campaign row is locked (two uploads cannot both create an id), and new
    rows stream into the table as they are parsed (COPY on PostgreSQL, large executemany batches
    on SQLite). A bad row anywhere rolls back everything written before it.

    Into a campaign without items (the bulk case) rows go straight in and the database's unique
    constraint finds duplicate ids, so memory stays flat in the file size. Any problem there —
    a bad row, a duplicate — rolls that attempt back and the file is read again by the checked
    pass, which keeps the campaign's ids and the file's in memory to word every problem by line
    and field (and which a campaign that already has items always takes).

    `mapping` (see `mapping_parse`) renames source columns to item fields first. With `dry_run`
    nothing is written or locked: the report says what the import would do, and lists the problems
    in `report.errors` instead of raising them.
    """
    mapping = mapping or {}
    with transaction.atomic():
        if not dry_run:
            Campaign.objects.select_for_update().filter(pk=campaign.pk).exists()
        started = timezone.now()
        report = None
        if not dry_run and _rewindable(stream) and not Item.objects.filter(campaign=campaign).exists():
            position = stream.tell()
            try:
                with transaction.atomic():  # a savepoint: a failed attempt leaves nothing behind
                    report = _import_unchecked(
                        campaign=campaign, stream=stream, filename=filename, fmt=fmt, progress=progress, mapping=mapping
                    )
            except _NeedsChecking:
                stream.seek(position)
        if report is None:
            report = _import_checked(
                campaign=campaign,
                stream=stream,
                filename=filename,
                fmt=fmt,
                progress=progress,
                mapping=mapping,
                dry_run=dry_run,
            )
        if dry_run:
            return report
        # Decisions for the new items, and routes for items an earlier policy left unrouted.
        route_new_items(campaign=campaign, since=started)
        if report.created:
            items_imported(campaign=campaign)  # a routing pass once this commits, when the policy needs one
        if report.created >= ANALYZE_AFTER and connection.vendor == "postgresql":
            # Fresh statistics, so the annotators' queue query is planned for the real table size
            # at once instead of after autovacuum gets round to it.
            with connection.cursor() as cursor:
                # Only the columns the queue query plans on: a third of the time of a full ANALYZE.
                cursor.execute(
                    f"ANALYZE {Item._meta.db_table} "
                    "(campaign_id, route, gold_label, assigned_count, queue_rank, external_id)"
                )
    return report


class _NeedsChecking(Exception):
    """The unchecked pass met a problem; the checked pass reads the file again to word it."""


def _rewindable(stream: BinaryIO) -> bool:
    try:
        return stream.seekable()
    except (AttributeError, OSError, ValueError):
        return False


def _import_unchecked(
    *, campaign: Campaign, stream: BinaryIO, filename: str, fmt: str | None, progress, mapping: Mapping
) -> ImportReport:
    """Every row straight into an empty campaign; _NeedsChecking at the first problem of any kind."""
    report = ImportReport()
    estimate = _RowEstimate(stream) if progress else None
    kind, schema = campaign.kind, campaign.label_schema
    try:
        with _sink(campaign) as sink:
            add = sink.add
            for _where, raw in iter_source(stream, filename=filename, fmt=fmt):
                if isinstance(raw, ReaderError):
                    raise _NeedsChecking
                add(item_row_parse(mapping_apply(raw, mapping) if mapping else raw, kind=kind, schema=schema))
                report.rows += 1
                if estimate and report.rows % PROGRESS_EVERY == 0:
                    progress(done=report.rows, total=estimate.total(report.rows))
            if report.rows == 0:
                raise _NeedsChecking
    except (RowProblem, ReaderError, IntegrityError, sqlite3.IntegrityError, psycopg.errors.IntegrityError):
        raise _NeedsChecking from None
    report.created = report.rows
    return report


def _import_checked(
    *,
    campaign: Campaign,
    stream: BinaryIO,
    filename: str,
    fmt: str | None,
    progress,
    mapping: Mapping,
    dry_run: bool,
) -> ImportReport:
    """Row by row against the campaign's ids and the file's: every problem found and worded, conflicts listed."""
    errors = ErrorCollector(filename)
    report = ImportReport(dry_run=dry_run)
    seen: dict[str, str] = {}  # external id -> where it first appeared in this file
    conflicted: list[tuple[str, ItemRow]] = []
    estimate = _RowEstimate(stream) if progress else None
    existing = dict(Item.objects.filter(campaign=campaign).values_list("external_id", "content_hash"))
    with _NullSink() if dry_run else _sink(campaign) as sink:
        for where, raw in rows_checked(iter_source(stream, filename=filename, fmt=fmt), errors):
            report.rows += 1
            try:
                row = item_row_parse(mapping_apply(raw, mapping), kind=campaign.kind, schema=campaign.label_schema)
            except RowProblem as exc:
                errors.add(where, mapping_field(exc.field, mapping), str(exc))
                continue
            first = seen.get(row.external_id)
            if first is not None:
                errors.add(where, mapping_field("id", mapping), f"duplicate id {row.external_id!r} (first at {first})")
                continue
            seen[row.external_id] = where
            if errors.errors:
                if errors.full:
                    break
                if not dry_run:
                    continue  # keep validating to report more problems, but write nothing more
            old_hash = existing.get(row.external_id)
            if old_hash is None:
                sink.add(row)
                report.created += 1
            elif old_hash == row.content_hash:
                report.unchanged += 1
            else:
                conflicted.append((where, row))
            if estimate and report.rows % PROGRESS_EVERY == 0:
                progress(done=report.rows, total=estimate.total(report.rows))
        if not errors.errors and report.rows == 0:
            errors.add("", "", "the file has no rows")
        if dry_run:
            report.errors = errors.errors
        else:
            errors.raise_if_any()  # inside the sink: an unfinished COPY is aborted, not committed
    if conflicted:
        _record_conflicts(campaign, conflicted, report)
    return report


class _NullSink:
    """A dry run's sink: counts as if it wrote, writes nothing."""

    def __enter__(self):
        return self

    def add(self, row: ItemRow) -> None:
        pass

    def __exit__(self, exc_type, exc, tb):
        return False


class _RowEstimate:
    """How many rows the whole file holds, guessed from how far into it the reader is.

    Streamed formats (JSONL, CSV) move the file position as they go; a JSON array or Parquet file
    is read up front, so there no total is guessed (None) until the import ends.
    """

    def __init__(self, stream: BinaryIO):
        self.stream = stream
        self.size = _size_of(stream)

    def total(self, rows: int) -> int | None:
        try:
            position = self.stream.tell()
        except (AttributeError, OSError, ValueError):
            return None
        if not self.size or not 0 < position < self.size:
            return None
        return max(rows + 1, round(rows * self.size / position))


def _record_conflicts(campaign: Campaign, conflicted: list[tuple[str, ItemRow]], report: ImportReport) -> None:
    report.n_conflicts += len(conflicted)
    conflicted = conflicted[:MAX_CONFLICTS_LISTED]
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
    "gold_explanation",
    "route",
    "content_hash",
    "human_label_count",
    "assigned_count",
    "queue_rank",
    "created_at",
)


class _CopySink:
    """Streams rows into the item table with one COPY; PostgreSQL ingests while we parse."""

    CHUNK = 1 << 20

    def __init__(self, campaign: Campaign):
        self.campaign_id = campaign.pk
        now = timezone.now().isoformat()
        route = initial_route(campaign=campaign)
        self.head = f"{campaign.pk}\t"
        self.tail = f"\t{route}\t%s\t0\t0\t%d\t{now}\n"
        self.lines: list[str] = []
        self.size = 0

    def __enter__(self):
        sql = f"COPY {Item._meta.db_table} ({', '.join(COPY_COLUMNS)}) FROM STDIN"
        self._cursor = connection.cursor()
        raw = self._cursor.cursor
        self._copy_cm = raw.copy(sql, writer=QueuedLibpqWriter(raw))
        self.copy = self._copy_cm.__enter__()
        return self

    def add(self, row: ItemRow) -> None:
        line = (
            self.head
            + "\t".join(
                (
                    _copy_text(row.external_id),
                    _copy_json(row.prompt),
                    _copy_text(row.response_a),
                    _copy_text(row.response_b),
                    _copy_text(row.model_a),
                    _copy_text(row.model_b),
                    _copy_text(row.response),
                    _copy_text(row.reference),
                    _copy_json(row.metadata),
                    "\\N" if row.gold_label is None else _copy_json(row.gold_label),
                    _copy_text(row.gold_explanation),
                )
            )
            + self.tail % (row.content_hash, queue_rank(self.campaign_id, row.external_id))
        )
        self.lines.append(line)
        self.size += len(line)
        if self.size >= self.CHUNK:
            self._send()

    def _send(self) -> None:
        if self.lines:
            self.copy.write("".join(self.lines).encode("utf-8"))
            self.lines, self.size = [], 0

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self._send()
            return self._copy_cm.__exit__(exc_type, exc, tb)
        finally:
            self._cursor.close()


class _BulkSink:
    """SQLite and other databases: one prepared INSERT run by executemany over large batches.

    Raw parameter tuples instead of model instances (bulk_create builds an object and a multi-row
    statement per batch, several times the cost of the insert itself). On SQLite the page cache
    is enlarged for the load, so index pages stay in memory; the connection gets its own size back
    afterwards. `synchronous` is left as the settings have it (NORMAL under WAL: a commit is
    durable once the WAL is synced, and a bulk load gains little from weakening that).
    """

    BATCH = 5000
    CACHE_KIB = 16 * 1024  # 16 vs 64 MiB: the same CPU for a 50k-row load (bench), 50 MB less RSS

    def __init__(self, campaign: Campaign):
        self.campaign_id = campaign.pk
        self.route = initial_route(campaign=campaign)
        self.now = connection.ops.adapt_datetimefield_value(timezone.now())
        self.rows: list[tuple] = []
        columns = ", ".join(COPY_COLUMNS)
        self.sql = f"INSERT INTO {Item._meta.db_table} ({columns}) VALUES ({', '.join(['%s'] * len(COPY_COLUMNS))})"
        self.sqlite = connection.vendor == "sqlite"
        self.cache_size = None

    def __enter__(self):
        self._cursor = connection.cursor()
        if self.sqlite:
            self._cursor.execute("PRAGMA cache_size")
            self.cache_size = self._cursor.fetchone()[0]
            self._cursor.execute(f"PRAGMA cache_size = -{self.CACHE_KIB}")
        return self

    def add(self, row: ItemRow) -> None:
        dumps = orjson.dumps
        self.rows.append(
            (
                self.campaign_id,
                row.external_id,
                dumps(row.prompt).decode(),
                row.response_a,
                row.response_b,
                row.model_a,
                row.model_b,
                row.response,
                row.reference,
                dumps(row.metadata).decode(),
                None if row.gold_label is None else dumps(row.gold_label).decode(),
                row.gold_explanation,
                self.route,
                row.content_hash,
                0,
                0,
                queue_rank(self.campaign_id, row.external_id),
                self.now,
            )
        )
        if len(self.rows) >= self.BATCH:
            self._send()

    def _send(self) -> None:
        if self.rows:
            self._cursor.executemany(self.sql, self.rows)
            self.rows = []

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self._send()
        finally:
            if self.cache_size is not None:
                self._cursor.execute(f"PRAGMA cache_size = {int(self.cache_size)}")
            self._cursor.close()
        return False


def _sink(campaign: Campaign):
    return _CopySink(campaign) if connection.vendor == "postgresql" else _BulkSink(campaign)


# COPY's text format: backslash, tab, newline and carriage return are escaped (rows with NUL are refused).
def _copy_text(value: str) -> str:
    # Chained str.replace is C speed; str.translate with a dict is several times slower here.
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _copy_json(value: object) -> str:
    # orjson never writes a raw tab, newline or CR (they are escaped inside strings): only backslashes.
    return orjson.dumps(value).decode("utf-8").replace("\\", "\\\\")


def queue_rank(campaign_id: int, external_id: str) -> int:
    """A stable pseudo-random rank: the same item keeps its place, each campaign has its own order."""
    digest = hashlib.blake2b(f"{campaign_id}:{external_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
