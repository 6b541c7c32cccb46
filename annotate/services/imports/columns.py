"""The item columns an import writes, their PostgreSQL types and the queue rank: shared by the import's
sinks (`items`) and its staging table (`staging`); every other column takes its database default."""

from __future__ import annotations

import hashlib
from operator import attrgetter

import orjson

from .rows import ItemRow

# An item's content, in the order the import writes it: the fields its content hash covers, and the explanation.
CONTENT_COLUMNS = (*ItemRow.CONTENT_FIELDS, "gold_explanation")
JSON_COLUMNS = ("prompt", "metadata", "gold_label")
COPY_COLUMNS = (
    "campaign_id",
    "external_id",
    *CONTENT_COLUMNS,
    "route",
    "content_hash",
    "human_label_count",
    "assigned_count",
    "queue_rank",
    "created_at",
)


# PostgreSQL's types of COPY_COLUMNS, for COPY's binary format.
COPY_TYPES = (
    "int8",
    "varchar",
    "jsonb",
    "text",
    "text",
    "varchar",
    "varchar",
    "text",
    "text",
    "jsonb",
    "jsonb",
    "text",
    "varchar",
    "varchar",
    "int4",
    "int4",
    "int8",
    "timestamptz",
)


def queue_rank(campaign_id: int, external_id: str) -> int:
    """A stable pseudo-random rank: the same item keeps its place, each campaign has its own order."""
    digest = hashlib.blake2b(f"{campaign_id}:{external_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


# An ItemRow's content columns as a tuple of Python values (C speed: this runs for every imported row).
content_values = attrgetter(*CONTENT_COLUMNS)
_JSON_AT = tuple(i for i, name in enumerate(CONTENT_COLUMNS) if name in JSON_COLUMNS)


def content_values_json(row: ItemRow) -> tuple:
    """The same, the JSON columns as JSON text (SQLite's parameters; a missing gold label stays NULL)."""
    values = list(content_values(row))
    for i in _JSON_AT:
        if values[i] is not None:
            values[i] = orjson.dumps(values[i]).decode()
    return tuple(values)


def item_values(row: ItemRow, content: tuple, *, campaign_id: int, route: str, now) -> tuple:
    """One new item's values for COPY_COLUMNS: `content` from content_values or content_values_json."""
    return (
        campaign_id,
        row.external_id,
        *content,
        route,
        row.content_hash,
        0,
        0,
        queue_rank(campaign_id, row.external_id),
        now,
    )
