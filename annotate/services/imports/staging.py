"""The checked item import's working set: a file's parsed rows in a temporary table, checked by set operations.

The checked pass (a campaign that already has items, a dry run, an unchecked attempt that failed)
must find ids repeated inside the file, rows the campaign already holds unchanged, and rows whose id
it holds with other content. Dicts of every id in the file and in the campaign made that pass grow
with both (+384 MB at 950k rows); staged rows let the database answer with joins, so Python holds one
batch at a time and the short lists it reports.

PostgreSQL stages with one COPY into a `TEMP ... ON COMMIT DROP` table, SQLite with large executemany
batches into a TEMP table. The table is made inside a savepoint, so a failed import takes it along,
and dropped when the import is done, so a second import in the same transaction starts afresh.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import orjson
from django.db import connection, transaction
from django.utils import timezone
from psycopg.copy import QueuedLibpqWriter
from psycopg.types.json import set_json_dumps

from annotate.models import Campaign, Item
from routing.api import initial_route

from .columns import CONTENT_COLUMNS, COPY_COLUMNS, JSON_COLUMNS, content_values, content_values_json, queue_rank
from .rows import ItemRow

TABLE = "import_stage"
STAGE_COLUMNS = ("ordinal", "place", "external_id", "content_hash", *CONTENT_COLUMNS, "queue_rank")
FILE_END = 2**62  # an ordinal past the end of any file: "every staged row"


@contextmanager
def import_stage(campaign: Campaign) -> Iterator[ImportStage]:
    """A fresh stage for one import into `campaign`, gone when the block ends (however it ends)."""
    with transaction.atomic():  # a savepoint: an exception rolls the table's creation back with it
        stage = ImportStage(campaign)
        stage.create()
        yield stage
        stage.drop()


class ImportStage:
    """One file's parsed rows, by ordinal (their place in the source) with the reader's `where` text.

    Load them with `loading()`, then ask: `repeats` (ids the file gives twice), `tally` and
    `conflicts` (against the campaign's items), and `insert` the new rows into the item table.
    """

    BATCH = 1000  # SQLite rows per executemany: a 50k-row import peaks at 2 MB of Python, no slower than 5000

    def __init__(self, campaign: Campaign):
        self.campaign = campaign
        self.postgres = connection.vendor == "postgresql"

    def create(self) -> None:
        with connection.cursor() as cursor:
            if self.postgres:
                columns = ", ".join(f"{name} {_postgres_type(name)}" for name in STAGE_COLUMNS)
                # The primary key reads rows back in file order without sorting whole rows.
                cursor.execute(f"CREATE TEMP TABLE {TABLE} ({columns}, PRIMARY KEY (ordinal)) ON COMMIT DROP")
            else:
                columns = ", ".join(
                    "ordinal INTEGER PRIMARY KEY" if name == "ordinal" else f"{name} {_sqlite_type(name)}"
                    for name in STAGE_COLUMNS
                )
                cursor.execute(f"CREATE TEMP TABLE {TABLE} ({columns})")

    def drop(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE {TABLE}")

    @contextmanager
    def loading(self) -> Iterator[Callable[[int, str, ItemRow], None]]:
        """`add(ordinal, where, row)` for every parsed row, in file order; no other query until the block ends.

        On PostgreSQL the rows stream in by binary COPY (as the item sink writes items) while the file
        is parsed, and an exception aborts it.
        """
        campaign_id = self.campaign.pk
        with connection.cursor() as cursor:
            if self.postgres:
                raw = cursor.cursor
                set_json_dumps(orjson.dumps, raw)
                sql = f"COPY {TABLE} ({', '.join(STAGE_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
                with raw.copy(sql, writer=QueuedLibpqWriter(raw)) as copy:
                    copy.set_types([_postgres_type(name) for name in STAGE_COLUMNS])
                    write_row = copy.write_row

                    def add(ordinal: int, where: str, row: ItemRow) -> None:
                        write_row(
                            (
                                ordinal,
                                where,
                                row.external_id,
                                row.content_hash,
                                *content_values(row),
                                queue_rank(campaign_id, row.external_id),
                            )
                        )

                    yield add
                # No ANALYZE: the planner sizes the table from its pages, which is all its joins need,
                # and sampling a wide staged table costs a quarter of a 50k-row re-import.
            else:
                values = ", ".join(["%s"] * len(STAGE_COLUMNS))
                sql = f"INSERT INTO {TABLE} ({', '.join(STAGE_COLUMNS)}) VALUES ({values})"
                batch: list[tuple] = []

                def add(ordinal: int, where: str, row: ItemRow) -> None:
                    batch.append(
                        (
                            ordinal,
                            where,
                            row.external_id,
                            row.content_hash,
                            *content_values_json(row),
                            queue_rank(campaign_id, row.external_id),
                        )
                    )
                    if len(batch) >= self.BATCH:
                        cursor.executemany(sql, batch)
                        batch.clear()

                yield add
                if batch:
                    cursor.executemany(sql, batch)

    def repeats(self, *, limit: int) -> list[tuple[int, str, str, str]]:
        """The first `limit` rows whose id an earlier row of the file has: (ordinal, where, id, where first)."""
        sql = f"""
            SELECT ordinal, place, external_id, first_place FROM (
                SELECT ordinal, place, external_id,
                    FIRST_VALUE(place) OVER (PARTITION BY external_id ORDER BY ordinal) AS first_place,
                    ROW_NUMBER() OVER (PARTITION BY external_id ORDER BY ordinal) AS nth
                FROM {TABLE}
                WHERE external_id IN (SELECT external_id FROM {TABLE} GROUP BY external_id HAVING COUNT(*) > 1)
            ) AS repeated
            WHERE nth > 1 ORDER BY ordinal LIMIT %s
        """
        with connection.cursor() as cursor:
            cursor.execute(sql, [limit])
            return [tuple(r) for r in cursor.fetchall()]

    def drop_repeats(self) -> None:
        """Keep each id's first row only, so the tallies count every id once (as a dry run reports them)."""
        sql = f"""
            DELETE FROM {TABLE} WHERE ordinal NOT IN (SELECT MIN(ordinal) FROM {TABLE} GROUP BY external_id)
        """
        with connection.cursor() as cursor:
            cursor.execute(sql)

    def count(self, *, before: int = FILE_END) -> int:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM {TABLE} WHERE ordinal < %s", [before])
            return cursor.fetchone()[0]

    def tally(self, *, before: int = FILE_END) -> tuple[int, int, int]:
        """(new, unchanged, conflicting) among the staged rows before ordinal `before`."""
        sql = f"""
            SELECT COUNT(*), COUNT(i.id), COALESCE(SUM(CASE WHEN i.content_hash = s.content_hash THEN 1 ELSE 0 END), 0)
            FROM {TABLE} s LEFT JOIN {Item._meta.db_table} i ON i.campaign_id = %s AND i.external_id = s.external_id
            WHERE s.ordinal < %s
        """
        with connection.cursor() as cursor:
            cursor.execute(sql, [self.campaign.pk, before])
            rows, known, unchanged = cursor.fetchone()
        return rows - known, unchanged, known - unchanged

    def conflicts(self, *, limit: int, before: int = FILE_END) -> list[tuple[str, ItemRow]]:
        """The first `limit` staged rows (before `before`) whose id the campaign holds with other content."""
        sql = f"""
            SELECT s.place, s.external_id, s.content_hash, {", ".join(self._as_text(name) for name in CONTENT_COLUMNS)}
            FROM {TABLE} s JOIN {Item._meta.db_table} i ON i.campaign_id = %s AND i.external_id = s.external_id
            WHERE s.ordinal < %s AND i.content_hash <> s.content_hash
            ORDER BY s.ordinal LIMIT %s
        """
        with connection.cursor() as cursor:
            cursor.execute(sql, [self.campaign.pk, before, limit])
            fetched = cursor.fetchall()
        out = []
        for where, external_id, content_hash, *content in fetched:
            values = dict(zip(CONTENT_COLUMNS, content, strict=True))
            for name in JSON_COLUMNS:
                values[name] = None if values[name] is None else orjson.loads(values[name])
            out.append((where, ItemRow(external_id=external_id, content_hash=content_hash, **values)))
        return out

    def _as_text(self, name: str) -> str:
        return f"s.{name}::text" if self.postgres and name in JSON_COLUMNS else f"s.{name}"

    def insert(self, *, some_known: bool = True) -> int:
        """Every staged row whose id the campaign does not hold yet, in file order, as the import's sinks write it.

        Without `some_known` (the tally found none of the file's ids in the campaign) every row is new,
        and the check against the item table is left out.
        """
        given = {
            "campaign_id": "%(campaign)s",
            "route": "%(route)s",
            "human_label_count": "0",
            "assigned_count": "0",
            "created_at": "%(now)s",
        }
        table = Item._meta.db_table
        new_only = ""
        if some_known:
            new_only = f"""
                WHERE NOT EXISTS (
                    SELECT 1 FROM {table} i WHERE i.campaign_id = %(campaign)s AND i.external_id = s.external_id
                )
            """
        sql = f"""
            INSERT INTO {table} ({", ".join(COPY_COLUMNS)})
            SELECT {", ".join(given.get(name, f"s.{name}") for name in COPY_COLUMNS)}
            FROM {TABLE} s
            {new_only}
            ORDER BY s.ordinal
        """
        params = {
            "campaign": self.campaign.pk,
            "route": initial_route(campaign=self.campaign),
            "now": connection.ops.adapt_datetimefield_value(timezone.now()),
        }
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.rowcount


def _postgres_type(name: str) -> str:
    # JSON as jsonb: the server parses it while the COPY streams in, not in the INSERT after it.
    return "int8" if name in ("ordinal", "queue_rank") else "jsonb" if name in JSON_COLUMNS else "text"


def _sqlite_type(name: str) -> str:
    return "INTEGER" if name == "queue_rank" else "TEXT"
