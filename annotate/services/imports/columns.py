"""The item columns an import writes, their PostgreSQL types and the queue rank: shared by the import's
sinks (`items`) and its staging table (`staging`); every other column takes its database default."""

from __future__ import annotations

import hashlib

import orjson

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


def content_values(row) -> tuple:
    """An ItemRow's content columns (`prompt` … `gold_explanation`, in COPY_COLUMNS' order) as Python values."""
    return (
        row.prompt,
        row.response_a,
        row.response_b,
        row.model_a,
        row.model_b,
        row.response,
        row.reference,
        row.metadata,
        row.gold_label,
        row.gold_explanation,
    )


def content_values_json(row) -> tuple:
    """The same, the JSON columns as JSON text (SQLite's parameters)."""
    dumps = orjson.dumps
    return (
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
    )
