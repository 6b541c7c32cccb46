"""An export end to end, as generators: filter items and labels, aggregate in batches, shape rows, write splits.

The caller (a Celery job, the `export` command) reads the database and hands over plain data:

    pairs = ((item_dict, [label_dict, ...]) for each item, in a stable order)
    counts = ExportCounts()
    rows = export_rows(pairs, schema=..., kind=..., options=options, conversational=..., counts=counts)
    columns = export_columns(schema=..., kind=..., options=options, conversational=...)
    result = export_write(rows, directory=..., stem="tandem", options=options, columns=columns)

or `export_dataset(...)`, which does the same and writes the dataset card. Nothing holds more than one batch
of items (`batch_size`) and one Parquet row group per split, so memory does not grow with the dataset. The
same items in the same order with the same options give byte-identical files: the row order is the input
order, and the caller orders its query (by item id, labels by creation time and id).

Files are named `<stem>.<split>.<ext>` in `directory`: split "train" always; "test" when test_fraction > 0;
"ties" for the pairwise formats (trl, helpsteer2-preference) when ties are split. Every one of those files
is written even when it has no rows, so an export's set of files depends on its options alone.

The aggregation "dawid_skene" reads the data twice: once to fit the model on every exported item's counted
labels (`dawid_skene_winners`), once to write. `export_dataset` takes a callable that returns the pairs
afresh for that (or a sequence); `export_rows` takes the fitted winners.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from annotate import schema as label_schema
from annotate.exports import helpsteer2_preference, ratings, raw, trl
from annotate.exports.aggregate import FinalLabel, Label, aggregate_items, counted_labels
from annotate.exports.card import CARD_NAME, dataset_card
from annotate.exports.context import ExportContext, prompt_text
from annotate.exports.options import ExportOptions, ExportOptionsError
from annotate.exports.writers import DEFAULT_ROW_GROUP_SIZE, PARTIAL_SUFFIX, write_splits
from annotate.stats.aggregate import dawid_skene

FORMATS: dict[str, ModuleType] = {
    trl.NAME: trl,
    ratings.NAME: ratings,
    helpsteer2_preference.NAME: helpsteer2_preference,
    raw.NAME: raw,
}
DEFAULT_BATCH_SIZE = 1000


@dataclass
class ExportCounts:
    """What an export read, kept and left out, for the dataset card and the job's result.

    items: items read; items_exported: items with at least one row; rows: rows per split.
    dropped: what was left out, by reason. Items: "metadata" (filter), "no_labels" (no label the export
      counts), "no_majority" (undecided: no strict majority for a winner, pairwise formats), "min_agreement",
      "ties" (ties dropped). Human labels that do not count (annotate/services/quality/labels.py):
      "excluded_annotator", "too_fast", "qualification".
    labels_outside_dates: labels left out by the date range.
    labels: labels behind the exported rows, by source (human, judge; raw: reviewer too).
    finals: exported items whose final label came from humans / from judges (pairwise and ratings formats).
    final_sources: exported items by how their final label was decided (adjudicated, majority, dawid_skene,
      mean).
    ties: exported items whose final label is a tie.
    judges: labels behind the exported rows per judge (name, model, prompt_version).
    """

    items: int = 0
    items_exported: int = 0
    rows: Counter = field(default_factory=Counter)
    dropped: Counter = field(default_factory=Counter)
    labels_outside_dates: int = 0
    labels: Counter = field(default_factory=Counter)
    finals: Counter = field(default_factory=Counter)
    final_sources: Counter = field(default_factory=Counter)
    ties: int = 0
    judges: Counter = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "items_exported": self.items_exported,
            "rows": dict(sorted(self.rows.items())),
            "dropped": dict(sorted(self.dropped.items())),
            "labels_outside_dates": self.labels_outside_dates,
            "labels": dict(sorted(self.labels.items())),
            "finals": dict(sorted(self.finals.items())),
            "final_sources": dict(sorted(self.final_sources.items())),
            "ties": self.ties,
            "judges": [
                {"name": name, "model": model, "prompt_version": version, "labels": n}
                for (name, model, version), n in sorted(self.judges.items(), key=lambda kv: tuple(map(str, kv[0])))
            ],
        }


def export_context(*, schema: dict, kind: str, options: ExportOptions, conversational: bool = False) -> ExportContext:
    """The context the format modules get; checks that the format and options fit the campaign's kind."""
    module = FORMATS[options.format]
    schema = label_schema.schema_validate(schema, kind)
    if kind not in module.KINDS:
        raise ExportOptionsError("format", f"{options.format} needs a {' or '.join(module.KINDS)} campaign, not {kind}")
    if options.min_agreement is not None and kind == "rubric":
        raise ExportOptionsError("min_agreement", "agreement is on the pairwise winner; a rubric campaign has none")
    for name, asked in (("aggregation", options.aggregation != "majority"), ("soft_labels", options.soft_labels)):
        if asked and not module.PAIRWISE:
            raise ExportOptionsError(
                name,
                f"applies to the pairwise winner (trl, helpsteer2-preference); the {options.format} format has none",
            )
    return ExportContext(schema=schema, kind=kind, options=options, conversational=conversational)


def export_columns(*, schema: dict, kind: str, options: ExportOptions, conversational: bool = False) -> pa.Schema:
    """The export's columns and their types, from the format and the campaign's schema, never from the data."""
    ctx = export_context(schema=schema, kind=kind, options=options, conversational=conversational)
    return FORMATS[options.format].columns(ctx)


def export_splits(options: ExportOptions) -> tuple[str, ...]:
    splits = ["train"]
    if options.test_fraction > 0:
        splits.append("test")
    if FORMATS[options.format].PAIRWISE and options.ties == "split":
        splits.append("ties")
    return tuple(splits)


def export_paths(*, directory: str | os.PathLike, stem: str, options: ExportOptions) -> dict[str, Path]:
    """Each split's file: `<directory>/<stem>.<split>.<ext>`."""
    if not stem or os.sep in stem or (os.altsep and os.altsep in stem) or stem.startswith("."):
        raise ValueError(f"stem {stem!r} must be a plain file name without a directory")
    return {split: Path(directory) / f"{stem}.{split}.{options.extension}" for split in export_splits(options)}


def _same(a: object, b: object) -> bool:
    # True == 1 in Python, but a filter for the tag `true` must not match the number 1.
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return a == b


def metadata_matches(metadata: Mapping[str, Any] | None, filters: Sequence[tuple[str, tuple[Any, ...]]]) -> bool:
    """Whether an item's metadata passes every filter (a list value, such as tags, passes when one element does)."""
    metadata = metadata or {}
    for key, wanted in filters:
        if key not in metadata:
            return False
        value = metadata[key]
        candidates = value if isinstance(value, list) else [value]
        if not any(_same(candidate, w) for candidate in candidates for w in wanted):
            return False
    return True


def _when(value: object) -> datetime | None:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def in_date_range(label: Label, options: ExportOptions) -> bool:
    if options.created_from is None and options.created_to is None:
        return True
    created = _when(label.get("created_at"))
    if created is None:
        return False
    if options.created_from is not None and created < options.created_from:
        return False
    return options.created_to is None or created < options.created_to


def split_of(prompt: object, test_fraction: float) -> str:
    """The prompt's split: "test" for a `test_fraction` share of prompts, by the first 64 bits of the SHA-256
    of the prompt text, else "train"."""
    if test_fraction <= 0:
        return "train"
    digest = hashlib.sha256(prompt_text(prompt).encode()).digest()
    return "test" if int.from_bytes(digest[:8], "big") < test_fraction * 2**64 else "train"


def _selected(
    items_with_labels: Iterable[tuple[Mapping[str, Any], Sequence[Label]]], options: ExportOptions, counts: ExportCounts
) -> Iterator[tuple[Mapping[str, Any], list[Label]]]:
    """The items the options keep, each with the labels that count: the metadata filter, the date range, and
    the human labels the rule of annotate/services/quality/labels.py leaves out (marked `uncounted`)."""
    for item, labels in items_with_labels:
        counts.items += 1
        if options.metadata and not metadata_matches(item.get("metadata"), options.metadata):
            counts.dropped["metadata"] += 1
            continue
        in_range = [label for label in labels if in_date_range(label, options)]
        counts.labels_outside_dates += len(labels) - len(in_range)
        kept = []
        for label in in_range:
            if label.get("uncounted"):
                counts.dropped[label["uncounted"]] += 1
            else:
                kept.append(label)
        review = item.get("adjudication")
        if review is not None and not in_date_range({"created_at": review.get("adjudicated_at")}, options):
            item = {**item, "adjudication": None}  # a review outside the date range counts no more than a label
        yield item, kept


@dataclass(frozen=True)
class Winners:
    """A fitted Dawid–Skene model's pairwise winner per item id (NaN: its top posteriors tie), and how it went."""

    directions: Mapping[Any, float]
    method: str
    n_iter: int
    converged: bool
    raters: int
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "n_iter": self.n_iter,
            "converged": self.converged,
            "raters": self.raters,
            "notes": list(self.notes),
        }


def _rater(label: Label) -> str:
    if label.get("source") == "judge":
        judge = label.get("judge") or {}
        return f"judge:{judge.get('name')}:{judge.get('model')}:{judge.get('prompt_version')}"
    return f"human:{label.get('annotator')}"


def dawid_skene_winners(
    items_with_labels: Iterable[tuple[Mapping[str, Any], Sequence[Label]]],
    *,
    schema: dict,
    kind: str,
    options: ExportOptions,
) -> Winners:
    """Fit Dawid & Skene on the directions of the `overall` labels the export counts (one pass over the data).

    Every annotator (pseudonym) and every judge (name, model, prompt version) is a rater with a confusion
    matrix over A / tie / B (A / B when the schema allows no tie).
    """
    ctx = export_context(schema=schema, kind=kind, options=options)
    overall = next((k for k in ctx.label_keys if k.pairwise and k.name == label_schema.OVERALL), None)
    if overall is None:
        raise ExportOptionsError("aggregation", "dawid_skene decides the pairwise winner; this schema has no overall")
    rows: list[tuple[Any, str, float]] = []
    for item, labels in _selected(items_with_labels, options, ExportCounts()):
        _, chosen = counted_labels(labels, options.source)
        for label in chosen:
            value = label["label"].get(label_schema.OVERALL)
            if value is not None:
                rows.append((item["id"], _rater(label), float(np.sign(value))))
    domain = [-1.0, 0.0, 1.0] if overall.allow_tie else [-1.0, 1.0]
    fitted = dawid_skene(pd.DataFrame(rows, columns=["item", "rater", "value"]), domain=domain)
    return Winners(
        directions=dict(zip(fitted.labels.index, fitted.labels.to_numpy(dtype=float), strict=True)),
        method=fitted.method,
        n_iter=fitted.n_iter,
        converged=fitted.converged,
        raters=len({rater for _, rater, _ in rows}),
        notes=tuple(fitted.notes),
    )


def export_rows(
    items_with_labels: Iterable[tuple[Mapping[str, Any], Sequence[Label]]],
    *,
    schema: dict,
    kind: str,
    options: ExportOptions,
    conversational: bool = False,
    counts: ExportCounts | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    winners: Winners | None = None,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(split, row) for each output row, in input order. `counts`, when given, is filled in as rows go.

    With aggregation "dawid_skene", `winners` is the model fitted on the same data (`dawid_skene_winners`);
    when it is not given, `items_with_labels` must be a sequence, read once to fit it.
    """
    ctx = export_context(schema=schema, kind=kind, options=options, conversational=conversational)
    module = FORMATS[options.format]
    counts = counts if counts is not None else ExportCounts()
    if options.aggregation == "dawid_skene" and winners is None:
        if not isinstance(items_with_labels, Sequence):
            raise ValueError("aggregation dawid_skene reads the data twice: pass `winners` or a sequence of items")
        winners = dawid_skene_winners(items_with_labels, schema=schema, kind=kind, options=options)
    selected = _selected(items_with_labels, options, counts)
    while batch := list(itertools.islice(selected, batch_size)):
        finals = aggregate_items(
            [labels for _, labels in batch],
            schema=ctx.schema,
            kind=kind,
            source=options.source,
            aggregation=options.aggregation,
            winners=None if winners is None else [winners.directions.get(item["id"]) for item, _ in batch],
            adjudications=[item.get("adjudication") for item, _ in batch],
        )
        for (item, labels), final in zip(batch, finals, strict=True):
            yield from _item_rows(item, labels, final, ctx, module, counts)


def _item_rows(
    item: Mapping[str, Any],
    labels: Sequence[Label],
    final: FinalLabel,
    ctx: ExportContext,
    module: ModuleType,
    counts: ExportCounts,
) -> Iterator[tuple[str, dict[str, Any]]]:
    options = ctx.options
    if module.PAIRWISE and final.undecided:
        counts.dropped["no_majority"] += 1
        return
    adjudicated = final.final_source == "adjudicated"
    low = final.agreement is None or final.agreement < (options.min_agreement or 0.0)
    if options.min_agreement is not None and low and not adjudicated:
        # An item without a pairwise winner (no counted label, or judges that rated other aspects only) cannot
        # show the agreement asked for.
        counts.dropped["min_agreement" if final.source is not None else "no_labels"] += 1
        return
    tie = module.PAIRWISE and final.direction == 0
    if tie and options.ties == "drop":
        counts.dropped["ties"] += 1
        return
    split = "ties" if tie else split_of(item["prompt"], options.test_fraction)
    n = 0
    for row in module.rows(item, labels, final, ctx):
        n += 1
        counts.rows[split] += 1
        if module is raw:
            counts.labels[row["source"]] += 1
            if row["source"] == "judge":
                counts.judges[(row["judge"], row["judge_model"], row["judge_prompt_version"])] += 1
        yield split, row
    if n == 0:
        counts.dropped["no_labels"] += 1
        return
    counts.items_exported += 1
    counts.ties += int(tie)
    if module is not raw:
        counts.finals[final.source] += 1
        counts.final_sources[final.final_source] += 1
        for label in final.labels:
            counts.labels[label["source"]] += 1
            if label["source"] == "judge":
                judge = label.get("judge") or {}
                counts.judges[(judge.get("name"), judge.get("model"), judge.get("prompt_version"))] += 1


def export_write(
    rows: Iterable[tuple[str, Mapping[str, Any]]],
    *,
    directory: str | os.PathLike,
    stem: str,
    options: ExportOptions,
    columns: pa.Schema,
    row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
) -> dict[str, Any]:
    """Write the rows to one file per split, atomically; return what was written.

    {"format", "file_type", "rows" (total), "splits": {split: {"path", "file", "rows", "bytes", "sha256"}},
     "files": [{"split", "name", "rows", "bytes", "sha256"}] (the same, as a list in split order, to store)}
    """
    paths = export_paths(directory=directory, stem=stem, options=options)
    Path(directory).mkdir(parents=True, exist_ok=True)
    splits = write_splits(rows, paths=paths, file_type=options.file_type, schema=columns, row_group_size=row_group_size)
    for split, info in splits.items():
        info["file"] = paths[split].name
    return {
        "format": options.format,
        "file_type": options.file_type,
        "rows": sum(info["rows"] for info in splits.values()),
        "splits": splits,
        "files": [
            {"split": split, "name": info["file"], **{k: info[k] for k in ("rows", "bytes", "sha256")}}
            for split, info in splits.items()
        ],
    }


def export_winners(
    items_with_labels: Iterable[tuple[Mapping[str, Any], Sequence[Label]]]
    | Callable[[], Iterable[tuple[Mapping[str, Any], Sequence[Label]]]],
    *,
    schema: dict,
    kind: str,
    options: ExportOptions,
) -> tuple[Iterable[tuple[Mapping[str, Any], Sequence[Label]]], Any]:
    """The pairs to write and the Dawid–Skene winners (None under majority), for `export_rows`.

    Dawid–Skene fits on every item before the first row is written: a callable is read twice (streamed
    twice), anything else is held in memory once.
    """
    read = items_with_labels if callable(items_with_labels) else None
    pairs = read() if read is not None else items_with_labels
    if options.aggregation != "dawid_skene":
        return pairs, None
    if read is None and not isinstance(pairs, Sequence):
        pairs = list(pairs)
    winners = dawid_skene_winners(pairs, schema=schema, kind=kind, options=options)
    return (read() if read is not None else pairs), winners


def aggregation_summary(winners) -> dict[str, Any]:
    """What the card and the result say about the aggregation: the Dawid–Skene fit, or majority."""
    return winners.to_dict() if winners is not None else {"method": "majority"}


def export_dataset(
    items_with_labels: Iterable[tuple[Mapping[str, Any], Sequence[Label]]]
    | Callable[[], Iterable[tuple[Mapping[str, Any], Sequence[Label]]]],
    *,
    schema: dict,
    kind: str,
    options: ExportOptions,
    directory: str | os.PathLike,
    stem: str,
    conversational: bool = False,
    facts: Mapping[str, Any] | None = None,
    agreement: Mapping[str, Mapping[str, Any]] | None = None,
    row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> dict[str, Any]:
    """`export_rows` into `export_write`, then the dataset card (`README.md` in `directory`) from `facts` and the
    agreement snapshot (see `annotate.exports.card`). Returns export_write's result with "counts", "aggregation"
    ({"method": "majority"}, or the Dawid–Skene fit: `Winners.to_dict()`) and "card".

    `items_with_labels` may be a callable returning the pairs afresh: Dawid–Skene reads them twice, and a
    callable lets the caller stream them twice rather than hold them.
    """
    columns = export_columns(schema=schema, kind=kind, options=options, conversational=conversational)
    counts = ExportCounts()
    pairs, winners = export_winners(items_with_labels, schema=schema, kind=kind, options=options)
    rows = export_rows(
        pairs,
        winners=winners,
        schema=schema,
        kind=kind,
        options=options,
        conversational=conversational,
        counts=counts,
        batch_size=batch_size,
    )
    result = export_write(
        rows, directory=directory, stem=stem, options=options, columns=columns, row_group_size=row_group_size
    )
    result["counts"] = counts.to_dict()
    result["aggregation"] = aggregation_summary(winners)
    text = dataset_card(
        facts=facts or {},
        schema=label_schema.schema_validate(schema, kind),
        kind=kind,
        options=options,
        columns=columns,
        result=result,
        agreement=agreement or {},
    )
    card = Path(directory) / CARD_NAME
    partial = Path(str(card) + PARTIAL_SUFFIX)
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, card)
    result["card"] = str(card)
    return result
