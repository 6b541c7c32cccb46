"""items_import: all-or-nothing, idempotent, streaming import of items into a campaign."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import orjson
import psycopg.errors
from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import Max
from django.utils import timezone
from psycopg.copy import QueuedLibpqWriter
from psycopg.types.json import set_json_dumps

from annotate.models import Campaign, Item
from routing.api import initial_route, items_imported, route_new_items

from .columns import COPY_COLUMNS, COPY_TYPES, content_values, content_values_json, item_values
from .errors import ImportFailed, RowError, RowProblem
from .mapping import Mapping, mapping_apply, mapping_field
from .readers import ReaderError, _size_of, read_rows
from .rows import ItemRow, changed_fields, item_row_parse
from .staging import FILE_END, import_stage

logger = logging.getLogger(__name__)

BATCH_SIZE = 2000
PROGRESS_EVERY = 5000
MAX_CONFLICTS_LISTED = 100
ANALYZE_AFTER = 1000
ANALYZE_TARGET = 10
ANALYZE_LOCK_WAIT_MS = 200
_SET_LOCAL = "SELECT set_config('lock_timeout', %s, true), set_config('default_statistics_target', %s, true)"


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
    """Keeps the first problems, each with its place in the file; once there is one, nothing more is written."""

    def __init__(self, filename: str):
        self.filename = filename
        self.errors: list[RowError] = []
        self.places: list[int] = []  # each error's ordinal, so problems found later merge in in file order
        self.ordinal = 0  # the source entry being looked at (rows and reader errors), counted by rows_checked

    def add(self, where: str, field_name: str, message: str, *, place: int | None = None) -> None:
        self.errors.append(RowError(self.filename, where, field_name, message))
        self.places.append(self.ordinal if place is None else place)

    def keep_first(self) -> None:
        """The first MAX_ERRORS problems in file order, once problems found after the read are added."""
        order = sorted(range(len(self.errors)), key=self.places.__getitem__)[: ImportFailed.MAX_ERRORS]
        self.errors = [self.errors[i] for i in order]
        self.places = [self.places[i] for i in order]

    @property
    def full(self) -> bool:
        return len(self.errors) >= ImportFailed.MAX_ERRORS

    def raise_if_any(self) -> None:
        if self.errors:
            raise ImportFailed(self.errors)


def rows_checked(source: Iterable[tuple[str, object]], errors: ErrorCollector) -> Iterator[tuple[str, object]]:
    """Pass good rows on, record reader errors; stop at a fatal one or when enough are found.

    `errors.ordinal` numbers the source's entries as they come: the ordinal of the row just passed on.
    """
    try:
        for where, row in source:
            errors.ordinal += 1
            if isinstance(row, ReaderError):
                errors.add(row.where or where, row.field, str(row))
            else:
                yield where, row
            if errors.full:
                return
    except ReaderError as exc:
        errors.ordinal += 1
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
        # Every id the sequence hands out from here on is larger: the new items are the ids above it.
        last_id = Item.objects.aggregate(last=Max("id"))["last"] or 0
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
        route_new_items(campaign=campaign, after_id=last_id if report.created else None)
        if report.created:
            items_imported(campaign=campaign)  # a routing pass once this commits, when the policy needs one
        if report.created >= ANALYZE_AFTER and connection.vendor == "postgresql":
            _items_analyze()
    return report


def _items_analyze() -> None:
    """Fresh statistics, so the annotators' queue query is planned for the real table size at once
    instead of after autovacuum gets round to it.

    Only the columns the queue query plans on, from a sample of 3,000 rows instead of 30,000 (15 ms
    instead of 340 for 50,000 new items): row counts and the share of gold and human items are all the
    plan needs; autovacuum's ANALYZE refines it later. And never a wait: an autovacuum at work on the
    table holds the lock ANALYZE needs until the deadlock timeout cancels it (a second or more added to
    an import), so after ANALYZE_LOCK_WAIT_MS the import goes without, and autovacuum analyzes it.
    """
    try:
        with transaction.atomic(), connection.cursor() as cursor:  # a savepoint: a lock timeout undoes only this
            cursor.execute("SELECT current_setting('lock_timeout'), current_setting('default_statistics_target')")
            before = cursor.fetchone()
            cursor.execute(_SET_LOCAL, [f"{ANALYZE_LOCK_WAIT_MS}ms", str(ANALYZE_TARGET)])
            cursor.execute(
                f"ANALYZE {Item._meta.db_table} "
                "(campaign_id, route, gold_label, assigned_count, queue_rank, external_id)"
            )
            cursor.execute(_SET_LOCAL, list(before))  # the rest of the caller's transaction as it was
    except OperationalError as exc:
        if not isinstance(exc.__cause__, psycopg.errors.LockNotAvailable):
            raise
        logger.info("import: ANALYZE skipped, %s is locked (autovacuum at work)", Item._meta.db_table)


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
    """Every problem found and worded by line and field, conflicts listed; memory flat in the file and campaign.

    Rows are parsed here (reader and row problems by line and field) and staged in a temporary
    table (staging.py): the ids the file repeats and the file's rows against the campaign's are
    found there in SQL, and the new rows go from it into the item table in one statement.
    """
    errors = ErrorCollector(filename)
    report = ImportReport(dry_run=dry_run)
    unparsed: list[int] = []  # ordinals of rows that did not parse (rows, unlike reader errors); at most MAX_ERRORS
    estimate = _RowEstimate(stream) if progress else None
    kind, schema = campaign.kind, campaign.label_schema
    with import_stage(campaign) as stage:
        with stage.loading() as stage_row:
            for where, raw in rows_checked(iter_source(stream, filename=filename, fmt=fmt), errors):
                report.rows += 1
                try:
                    row = item_row_parse(mapping_apply(raw, mapping), kind=kind, schema=schema)
                except RowProblem as exc:
                    errors.add(where, mapping_field(exc.field, mapping), str(exc))
                    unparsed.append(errors.ordinal)
                else:
                    stage_row(errors.ordinal, where, row)
                if estimate and report.rows % PROGRESS_EVERY == 0:
                    progress(done=report.rows, total=estimate.total(report.rows))
        repeats = stage.repeats(limit=ImportFailed.MAX_ERRORS)
        id_field = mapping_field("id", mapping)
        for ordinal, where, external_id, first in repeats:
            errors.add(where, id_field, f"duplicate id {external_id!r} (first at {first})", place=ordinal)
        errors.keep_first()
        if not errors.errors and report.rows == 0:
            errors.add("", "", "the file has no rows")
        if not dry_run:
            errors.raise_if_any()  # the stage goes with its savepoint; nothing was written
        before = FILE_END
        if errors.full:
            # Checking row by row stopped at the last problem listed: report what came before it.
            before = errors.places[-1]
            report.rows = stage.count(before=before + 1) + sum(1 for ordinal in unparsed if ordinal <= before)
        if repeats:
            stage.drop_repeats()  # each id counted once, at its first row
        report.created, report.unchanged, report.n_conflicts = stage.tally(before=before)
        if report.n_conflicts:
            _record_conflicts(campaign, stage.conflicts(limit=MAX_CONFLICTS_LISTED, before=before), report)
        if dry_run:
            report.errors = errors.errors
        elif report.created:
            report.created = stage.insert(some_known=bool(report.unchanged or report.n_conflicts))
    return report


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
    """List the first conflicting rows with the fields that differ (report.n_conflicts counts them all)."""
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


class _CopySink:
    """Streams rows into the item table with one binary COPY; PostgreSQL ingests while we parse.

    Binary rather than text: strings go as they are (length-prefixed, no escaping in Python, no
    unescaping in the server), rows are packed by psycopg's C code, and JSON is written by orjson.
    The writer queue hands the data to libpq from a thread, so the server ingests one chunk while
    the next is parsed.
    """

    def __init__(self, campaign: Campaign):
        self.campaign_id = campaign.pk
        self.now = timezone.now()
        self.route = initial_route(campaign=campaign)

    def __enter__(self):
        sql = f"COPY {Item._meta.db_table} ({', '.join(COPY_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
        self._cursor = connection.cursor()
        raw = self._cursor.cursor
        set_json_dumps(orjson.dumps, raw)
        self._copy_cm = raw.copy(sql, writer=QueuedLibpqWriter(raw))
        self.copy = self._copy_cm.__enter__()
        self.copy.set_types(COPY_TYPES)
        self._write_row = self.copy.write_row
        return self

    def add(self, row: ItemRow) -> None:
        self._write_row(
            item_values(row, content_values(row), campaign_id=self.campaign_id, route=self.route, now=self.now)
        )

    def __exit__(self, exc_type, exc, tb):
        try:
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
        self.rows.append(
            item_values(row, content_values_json(row), campaign_id=self.campaign_id, route=self.route, now=self.now)
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
