"""annotations_import: labels a team already has, from humans or judges, all or nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import BinaryIO

from django.contrib.auth import get_user_model
from django.db import transaction

from annotate import schema as label_schema
from annotate.models import Annotation, Campaign, Item, Judge
from annotate.services.counters import item_counts_add

from .errors import RowProblem
from .items import ErrorCollector, ImportReport, iter_source, rows_checked

BATCH_SIZE = 2000
KNOWN_FIELDS = {
    "item",
    "annotator",
    "judge",
    "label",
    "justification",
    "seconds",
    "rater_confidence",
    "confidence",
    "position_swapped",
    "raw",
    "parse_failed",
    "prompt_version",
    "sample",
    "prompt_tokens",
    "completion_tokens",
    "latency_ms",
    "cost",
}


@dataclass
class AnnotationRow:
    where: str
    item_external_id: str
    author: str
    is_judge: bool
    label: dict | None
    justification: str
    seconds: float | None
    rater_confidence: int | None
    confidence: float | None
    position_swapped: bool | None
    raw_output: str
    parse_failed: bool
    prompt_version: str
    sample_index: int
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: int | None
    cost: Decimal | None

    @property
    def key(self) -> tuple:
        if self.is_judge:
            return (
                self.item_external_id,
                "judge",
                self.author,
                self.prompt_version,
                self.position_swapped,
                self.sample_index,
            )
        return (self.item_external_id, "human", self.author)


def _optional_number(row: dict, key: str, kind: type, low: float | None = None, high: float | None = None):
    if key not in row or row[key] is None or row[key] == "":
        return None
    value = row[key]
    if isinstance(value, str):
        try:
            value = kind(value)
        except ValueError:
            raise RowProblem(f"{value!r} is not a number", key) from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RowProblem(f"must be a number, not {type(value).__name__}", key)
    if kind is int and (not isinstance(value, int) and not float(value).is_integer()):
        raise RowProblem(f"{value!r} is not an integer", key)
    value = kind(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise RowProblem(f"{value} is outside {low}..{high}", key)
    return value


def _optional_bool(row: dict, key: str) -> bool | None:
    value = row.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    raise RowProblem(f"must be true or false, not {value!r}", key)


def annotation_row_parse(row: object, *, where: str, campaign: Campaign) -> AnnotationRow:
    if not isinstance(row, dict):
        raise RowProblem(f"a row must be a JSON object, not {type(row).__name__}")
    unknown = sorted(set(row) - KNOWN_FIELDS)
    if unknown:
        raise RowProblem(f"unknown field (known: {', '.join(sorted(KNOWN_FIELDS))})", unknown[0])
    item = row.get("item")
    if isinstance(item, bool) or not isinstance(item, (str, int)) or str(item).strip() == "":
        raise RowProblem("missing: the external id of the item" if item is None else "must be the item's id", "item")
    if ("annotator" in row) == ("judge" in row):
        raise RowProblem("give exactly one of 'annotator' (a human) or 'judge'", "annotator")
    is_judge = "judge" in row
    author_key = "judge" if is_judge else "annotator"
    author = row[author_key]
    if not isinstance(author, str) or not author.strip() or len(author) > 100:
        raise RowProblem("must be a non-empty name of at most 100 characters", author_key)
    justification = row.get("justification") or ""
    if not isinstance(justification, str):
        raise RowProblem("must be a string", "justification")
    parse_failed = bool(_optional_bool(row, "parse_failed"))
    label = row.get("label")
    if label is None:
        if not is_judge:
            raise RowProblem("missing", "label")
        parse_failed = True  # a judge verdict that could not be parsed: kept with its raw output
    rater_confidence = _optional_number(row, "rater_confidence", int, 1, 5)
    if label is not None:
        try:
            label = label_schema.label_validate(
                schema=campaign.label_schema,
                kind=campaign.kind,
                label=label,
                justification=justification,
                confidence=rater_confidence,
                partial=is_judge,
                source="judge" if is_judge else "human",
            )
        except label_schema.LabelError as exc:
            raise RowProblem(str(exc).split(": ", 1)[-1], exc.field) from None
    cost = row.get("cost")
    if cost is not None:
        try:
            cost = Decimal(str(cost))
        except InvalidOperation:
            raise RowProblem(f"{cost!r} is not a number", "cost") from None
    raw = row.get("raw") or ""
    if not isinstance(raw, str):
        raise RowProblem("must be a string", "raw")
    prompt_version = row.get("prompt_version") or ""
    if not isinstance(prompt_version, str) or len(prompt_version) > 64:
        raise RowProblem("must be a string of at most 64 characters", "prompt_version")
    return AnnotationRow(
        where=where,
        item_external_id=str(item).strip(),
        author=author.strip(),
        is_judge=is_judge,
        label=label,
        justification=justification,
        seconds=_optional_number(row, "seconds", float, 0, None),
        rater_confidence=rater_confidence,
        confidence=_optional_number(row, "confidence", float, 0, 1),
        position_swapped=_optional_bool(row, "position_swapped")
        if not is_judge
        else bool(_optional_bool(row, "position_swapped")),
        raw_output=raw,
        parse_failed=parse_failed,
        prompt_version=prompt_version,
        sample_index=_optional_number(row, "sample", int, 0, 1000) or 0,
        prompt_tokens=_optional_number(row, "prompt_tokens", int, 0, None),
        completion_tokens=_optional_number(row, "completion_tokens", int, 0, None),
        latency_ms=_optional_number(row, "latency_ms", int, 0, None),
        cost=cost,
    )


def annotations_import(
    *,
    campaign: Campaign,
    stream: BinaryIO,
    filename: str,
    fmt: str | None = None,
    progress: Callable[..., None] | None = None,
) -> ImportReport:
    """Import labels; unknown annotators become inactive accounts, unknown judges imported judges."""
    errors = ErrorCollector(filename)
    report = ImportReport()
    seen: dict[tuple, str] = {}
    batch: list[AnnotationRow] = []
    with transaction.atomic():
        Campaign.objects.select_for_update().filter(pk=campaign.pk).exists()
        for where, raw in rows_checked(iter_source(stream, filename=filename, fmt=fmt), errors):
            report.rows += 1
            try:
                row = annotation_row_parse(raw, where=where, campaign=campaign)
            except RowProblem as exc:
                errors.add(where, exc.field, str(exc))
                continue
            first = seen.get(row.key)
            if first is not None:
                who = f"judge {row.author!r}" if row.is_judge else f"annotator {row.author!r}"
                errors.add(
                    where, "item", f"a second label from {who} for item {row.item_external_id!r} (first at {first})"
                )
                continue
            seen[row.key] = where
            batch.append(row)
            if len(batch) >= BATCH_SIZE:
                _flush(campaign, batch, report, errors)
                batch = []
                if progress:
                    progress(done=report.rows)
            if errors.full:
                break
        if batch:
            _flush(campaign, batch, report, errors)
        if not errors.errors and report.rows == 0:
            errors.add("", "", "the file has no rows")
        errors.raise_if_any()
        transaction.on_commit(lambda: _after_import(campaign))
    return report


def _after_import(campaign: Campaign) -> None:
    """Statistics with the new labels, and a routing pass when the campaign routes by judge verdicts."""
    from annotate.services.stats import stats_request
    from routing.api import labels_imported

    stats_request(campaign_id=campaign.pk)
    labels_imported(campaign=campaign)


def _flush(campaign: Campaign, batch: list[AnnotationRow], report: ImportReport, errors: ErrorCollector) -> None:
    items = dict(
        Item.objects.filter(campaign=campaign, external_id__in={r.item_external_id for r in batch}).values_list(
            "external_id", "id"
        )
    )
    for row in batch:
        if row.item_external_id not in items:
            errors.add(row.where, "item", f"no item with id {row.item_external_id!r} in campaign {campaign.slug!r}")
    if errors.errors:
        return
    annotators = _annotators({r.author for r in batch if not r.is_judge})
    judges = _judges({r.author for r in batch if r.is_judge})
    existing = _existing(campaign, batch, items, annotators, judges)
    new: list[Annotation] = []
    new_human_items: list[int] = []
    for row in batch:
        item_id = items[row.item_external_id]
        if row.is_judge:
            key = ("judge", item_id, judges[row.author], row.prompt_version, row.position_swapped, row.sample_index)
        else:
            key = ("human", item_id, annotators[row.author])
        old = existing.get(key)
        if old is not None:
            if old == (row.label, row.justification):
                report.unchanged += 1
            else:
                report.n_conflicts += 1
                if len(report.conflicts) < 100:
                    report.conflicts.append(
                        {
                            "id": row.item_external_id,
                            "where": row.where,
                            "fields": ["label" if old[0] != row.label else "justification"],
                            "message": "this source already labelled the item differently; the stored label was kept",
                        }
                    )
            continue
        new.append(
            Annotation(
                item_id=item_id,
                campaign=campaign,
                source=Annotation.Source.JUDGE if row.is_judge else Annotation.Source.HUMAN,
                annotator_id=None if row.is_judge else annotators[row.author],
                judge_id=judges[row.author] if row.is_judge else None,
                label=row.label,
                justification=row.justification,
                seconds=row.seconds,
                rater_confidence=row.rater_confidence,
                confidence=row.confidence,
                position_swapped=row.position_swapped,
                raw_output=row.raw_output,
                parse_failed=row.parse_failed,
                prompt_version=row.prompt_version,
                sample_index=row.sample_index,
                prompt_tokens=row.prompt_tokens,
                completion_tokens=row.completion_tokens,
                latency_ms=row.latency_ms,
                cost=row.cost,
                imported=True,
            )
        )
        if not row.is_judge:
            new_human_items.append(item_id)
    Annotation.objects.bulk_create(new, batch_size=1000)
    report.created += len(new)
    # The per-item counters move in the same transaction as the labels.
    item_counts_add(item_ids=new_human_items, fields=("human_label_count", "assigned_count"))


def _annotators(names: set[str]) -> dict[str, int]:
    if not names:
        return {}
    User = get_user_model()
    found = dict(User.objects.filter(username__in=names).values_list("username", "id"))
    for name in sorted(names - set(found)):
        user = User(username=name, is_active=False)
        user.set_unusable_password()
        user.save()
        found[name] = user.id
    return found


def _judges(names: set[str]) -> dict[str, int]:
    if not names:
        return {}
    found = dict(Judge.objects.filter(name__in=names).values_list("name", "id"))
    for name in sorted(names - set(found)):
        found[name] = Judge.objects.create(name=name, imported=True, active=False).id
    return found


def _existing(campaign, batch, items, annotators, judges) -> dict[tuple, tuple]:
    item_ids = [items[r.item_external_id] for r in batch]
    out: dict[tuple, tuple] = {}
    for a in Annotation.objects.filter(campaign=campaign, item_id__in=item_ids).values(
        "source",
        "item_id",
        "annotator_id",
        "judge_id",
        "prompt_version",
        "position_swapped",
        "sample_index",
        "label",
        "justification",
    ):
        if a["source"] == Annotation.Source.JUDGE:
            key = ("judge", a["item_id"], a["judge_id"], a["prompt_version"], a["position_swapped"], a["sample_index"])
        else:
            key = ("human", a["item_id"], a["annotator_id"])
        out[key] = (a["label"], a["justification"])
    return out
