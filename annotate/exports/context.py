"""What every format module is handed besides the item: the campaign's schema and kind, the options, and how
prompts are shaped (plain strings, or chat message lists) — and the column types the formats share."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property

import orjson
import pyarrow as pa

from annotate import schema as label_schema
from annotate.exports.options import ExportOptions

MESSAGE = pa.struct([pa.field("role", pa.string()), pa.field("content", pa.string())])
MESSAGES = pa.list_(MESSAGE)


@dataclass(frozen=True)
class ExportContext:
    """schema: the campaign's normalised label schema; kind: pairwise | rubric | both.

    conversational: whether prompts are written as message lists. It is a property of the whole export, not
    of each row, because a Parquet or CSV column (and a `datasets` feature) has one type: the caller sets it
    when any of the campaign's prompts is a message list, and string prompts are then written as a single
    user message.
    """

    schema: dict
    kind: str
    options: ExportOptions
    conversational: bool = False

    # Computed once per export, not once per item: formats ask for them on every row.
    @cached_property
    def label_keys(self) -> tuple[label_schema.LabelKey, ...]:
        return tuple(label_schema.label_keys(self.schema, self.kind))


def column(name: str, type_: pa.DataType, description: str) -> pa.Field:
    """A column: its Parquet type and the sentence the dataset card shows for it."""
    return pa.field(name, type_, nullable=True, metadata={"description": description})


def final_columns(ctx: ExportContext) -> list[pa.Field]:
    """How each row's final label was decided, with the reviewer's reason on adjudicated items, and (when
    asked for) the vote distribution: the columns every format with a final label shares."""
    fields = [
        column(
            "final_source",
            pa.string(),
            "How the final label was decided: adjudicated (a reviewer's label on a contested item), majority, "
            "dawid_skene, or mean (rubric scores).",
        ),
        column("adjudication_reason", pa.string(), "The reviewer's reason on adjudicated items, else empty."),
    ]
    if ctx.options.soft_labels:
        overall = next(key for key in ctx.label_keys if key.pairwise and key.name == label_schema.OVERALL)
        values = list(range(overall.low, overall.high + 1))
        fields.append(
            column(
                "soft_labels",
                pa.list_(pa.float64()),
                f"Share of the counted labels giving each overall value, in the order {values} (sums to 1).",
            )
        )
    return fields


def final_values(final, ctx: ExportContext) -> dict:
    """The `final_columns` of one row, from its item's FinalLabel."""
    review = final.adjudication or {}
    values = {"final_source": final.final_source, "adjudication_reason": review.get("reason") or ""}
    if ctx.options.soft_labels:
        values["soft_labels"] = list(final.soft_labels) if final.soft_labels is not None else None
    return values


def prompt_type(ctx: ExportContext) -> pa.DataType:
    return MESSAGES if ctx.conversational else pa.string()


def messages(prompt: object) -> list[dict[str, str]]:
    """A prompt as chat messages with exactly the keys role and content (the Parquet struct's fields)."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [{"role": str(message["role"]), "content": str(message["content"])} for message in prompt]


def prompt_value(item: Mapping, ctx: ExportContext) -> str | list[dict[str, str]]:
    prompt = item["prompt"]
    if ctx.conversational:
        return messages(prompt)
    if not isinstance(prompt, str):
        raise ValueError(
            f"item {item['id']!r} has a message-list prompt but the export is not conversational "
            "(pass conversational=True when any prompt is a message list)"
        )
    return prompt


def completion(text: str, ctx: ExportContext) -> str | list[dict[str, str]]:
    """A response in the prompt's shape: an assistant turn in conversational exports, the text otherwise."""
    return [{"role": "assistant", "content": text}] if ctx.conversational else text


def prompt_text(prompt: object) -> str:
    """The text a prompt is hashed by for the train/test split: the string itself, or the messages'
    canonical JSON (so the same conversation always hashes alike)."""
    if isinstance(prompt, str):
        return prompt
    return orjson.dumps(messages(prompt), option=orjson.OPT_SORT_KEYS).decode()


def timestamp_text(value: object) -> str | None:
    """A time as ISO 8601 in UTC with microseconds, always the same width.

    One fixed shape because readers infer types from text: pyarrow's JSON reader (under `datasets`) takes
    "2025-03-01T00:00:00+00:00" for a timestamp but "…00.123456+00:00" for a string, and a column whose
    rows differ would load as one type or the other depending on the data, or fail.
    """
    if value is None or value == "":
        return None
    if isinstance(value, str) and len(value) == 32 and value.endswith("+00:00") and value[19] == ".":
        return value  # already in the shape (the common case: the caller's times are UTC with microseconds)
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return when.isoformat(timespec="microseconds")
