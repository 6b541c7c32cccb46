"""Dataset exports: read a campaign's items and labels in id order, a chunk at a time, and hand them as plain
data to annotate/exports, which aggregates, shapes and writes the files and the dataset card.

Which human labels count is annotate/services/quality/labels.py's rule: every label is read with the reason
it does not count (if any), so the export leaves it out and the card says how many were left out and why.
Reviewers' adjudications travel with their items and are the final label where there is one.

An export runs as a job. Its files are written under TANDEM_EXPORT_DIR/<campaign>-<export id>/ as
`.partial` files renamed on success; a retried job starts the directory again (the same data and options
give the same bytes), and `complete` is set only when every file and the card are in place.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import orjson
from django.conf import settings
from django.db import transaction
from django.db.models import Count, TextField
from django.db.models.functions import Cast

from annotate.exports.card import CARD_NAME
from annotate.exports.options import ExportOptions
from annotate.models import (
    Adjudication,
    Annotation,
    Campaign,
    DatasetExport,
    Item,
    Job,
    RoutingDecision,
    StatsSnapshot,
)
from annotate.services.quality.gold import gold_accuracy
from annotate.services.quality.labels import countable_human_labels, uncounted_reason
from jobs.registry import JobFailed, job_handler
from jobs.runner import job_create

JOB_KIND = "export"
CARD_FILE = CARD_NAME
CHUNK = 1000
ITEM_FIELDS = (
    "id", "external_id", "prompt", "response_a", "response_b", "model_a", "model_b", "response", "reference",
    "metadata", "gold_label",
)  # fmt: skip


def pseudonym(user_id: int) -> str:
    """A stable name for an annotator that is not their account name (and cannot be turned back into it
    without this installation's secret key)."""
    digest = hashlib.sha256(f"{settings.SECRET_KEY}:annotator:{user_id}".encode()).hexdigest()
    return f"annotator-{digest[:12]}"


def export_start(*, campaign: Campaign, options: dict, created_by=None, dispatch: bool = True) -> DatasetExport:
    """Check the options (ExportOptionsError names the wrong one) and queue the export as a job."""
    # Here, not at the top: build brings pandas and pyarrow (~160 MiB), which a web process otherwise never needs.
    from annotate.exports.build import export_context

    checked = ExportOptions.from_dict(options)
    export_context(schema=campaign.label_schema, kind=campaign.kind, options=checked)  # the format fits the campaign
    with transaction.atomic():
        export = DatasetExport.objects.create(campaign=campaign, options=checked.to_dict(), created_by=created_by)
        export.job = job_create(
            kind=JOB_KIND, params={"export": export.pk}, campaign=campaign, created_by=created_by, dispatch=dispatch
        )
        export.save(update_fields=["job"])
    return export


def export_directory(export: DatasetExport) -> Path:
    return Path(settings.TANDEM_EXPORT_DIR) / f"{export.campaign.slug}-{export.pk}"


_LABEL_COLUMNS = (
    "item_id", "source", "annotator_id", "judge__name", "judge__model", "prompt_version", "label_text",
    "justification", "position_swapped", "seconds", "parse_failed", "confidence", "created_at", "uncounted",
)  # fmt: skip


def _stream(queryset, columns: tuple[str, ...]) -> Iterator[tuple]:
    """Rows as tuples through a server-side cursor where the database has one: memory stays flat."""
    return queryset.values_list(*columns).iterator(chunk_size=CHUNK)


def _label_rows(campaign: Campaign) -> Iterator[tuple[int, dict]]:
    """(item id, label) in item id order, then creation order. The label's JSON is read as text and parsed
    with orjson: Django's JSONField converter was most of an export's time."""
    labels = (
        Annotation.objects.filter(campaign=campaign)
        .annotate(label_text=Cast("label", TextField()), uncounted=uncounted_reason(campaign=campaign))
        .order_by("item_id", "created_at", "id")
    )
    pseudonyms: dict[int, str] = {}
    for row in _stream(labels, _LABEL_COLUMNS):
        (item_id, source, annotator_id, judge_name, judge_model, prompt_version, label_text, justification,
         position_swapped, seconds, parse_failed, confidence, created_at, uncounted) = row  # fmt: skip
        annotator = None
        if annotator_id is not None:
            annotator = pseudonyms.get(annotator_id) or pseudonyms.setdefault(annotator_id, pseudonym(annotator_id))
        judge = None
        if source == Annotation.Source.JUDGE:
            judge = {"name": judge_name, "model": judge_model, "prompt_version": prompt_version}
        yield (
            item_id,
            {
                "item": item_id,
                "source": source,
                "annotator": annotator,
                "judge": judge,
                "label": (orjson.loads(label_text) if label_text and label_text != "null" else None) or {},
                "justification": justification,
                "position_swapped": position_swapped,
                "seconds": seconds,
                "parse_failed": parse_failed,
                "confidence": confidence,
                "created_at": created_at.isoformat(),
                "uncounted": uncounted or None,
            },
        )


def _adjudication_rows(campaign: Campaign) -> Iterator[tuple[int, dict]]:
    """(item id, adjudication) in item id order; the reviewer stays out (exports name no account)."""
    adjudications = (
        Adjudication.objects.filter(campaign=campaign)
        .annotate(label_text=Cast("label", TextField()))
        .order_by("item_id")
    )
    for item_id, label_text, reason, revision, updated_at in _stream(
        adjudications, ("item_id", "label_text", "reason", "revision", "updated_at")
    ):
        yield (
            item_id,
            {
                "label": orjson.loads(label_text) if label_text else {},
                "reason": reason,
                "revision": revision,
                "adjudicated_at": updated_at.isoformat(),
            },
        )


def _routing_rows(campaign: Campaign) -> Iterator[tuple[int, dict]]:
    """(item id, decision) in item id order, then creation order; the features' JSON read as text and parsed with
    orjson, like the labels'."""
    decisions = (
        RoutingDecision.objects.filter(campaign_id=campaign.pk)
        .annotate(features_text=Cast("features", TextField()))
        .order_by("item_id", "created_at", "id")
    )
    for item_id, destination, policy, reason, features_text, created_at in _stream(
        decisions, ("item_id", "destination", "policy", "reason", "features_text", "created_at")
    ):
        yield (
            item_id,
            {
                "destination": destination,
                "policy": policy,
                "reason": reason,
                "features": orjson.loads(features_text) if features_text else None,
                "decided_at": created_at.isoformat(),
            },
        )


def _grouped(rows: Iterator[tuple[int, dict]]) -> Iterator[tuple[int, list[dict]]]:
    current, group = None, []
    for item_id, row in rows:
        if item_id != current:
            if current is not None:
                yield current, group
            current, group = item_id, []
        group.append(row)
    if current is not None:
        yield current, group


def items_with_labels(*, campaign: Campaign, progress=None) -> Iterator[tuple[dict, list[dict]]]:
    """(item, labels) in item id order, labels in creation order: a stable order, so the same data gives the
    same file. Four streams (items, labels, routing decisions, adjudications) read in id order and merged,
    inside one transaction so they see the same snapshot; memory does not grow with the campaign."""
    total = Item.objects.filter(campaign=campaign).count()
    items = Item.objects.filter(campaign=campaign).order_by("id").annotate(prompt_text=Cast("prompt", TextField()))
    item_columns = tuple("prompt_text" if f == "prompt" else f for f in ITEM_FIELDS)
    with transaction.atomic():
        labels, routing = _grouped(_label_rows(campaign)), _grouped(_routing_rows(campaign))
        reviews = _adjudication_rows(campaign)
        next_labels, next_routing, next_review = next(labels, None), next(routing, None), next(reviews, None)
        for n, values in enumerate(_stream(items, item_columns), start=1):
            item = dict(zip(ITEM_FIELDS, values, strict=True))
            item_id = item["id"]
            item["prompt"] = orjson.loads(item["prompt"])
            item["id"] = item.pop("external_id")
            item_labels: list[dict] = []
            while next_labels is not None and next_labels[0] <= item_id:
                if next_labels[0] == item_id:
                    item_labels = next_labels[1]
                next_labels = next(labels, None)
            item["routing"] = None
            while next_routing is not None and next_routing[0] <= item_id:
                if next_routing[0] == item_id:
                    item["routing"] = next_routing[1][-1]  # the latest decision
                next_routing = next(routing, None)
            item["adjudication"] = None
            while next_review is not None and next_review[0] <= item_id:
                if next_review[0] == item_id:
                    item["adjudication"] = next_review[1]
                next_review = next(reviews, None)
            yield item, item_labels
            if progress is not None and (n % CHUNK == 0 or n == total):
                progress(done=n, total=total)


def _facts(campaign: Campaign) -> dict:
    """What the dataset card says about the campaign."""
    judges = (
        Annotation.objects.filter(campaign=campaign, source=Annotation.Source.JUDGE)
        .values("judge__name", "judge__model", "prompt_version")
        .annotate(n=Count("id"))
        .order_by("judge__name", "prompt_version")
    )
    pool = list(campaign.annotators.values_list("id", flat=True))
    human_labels = countable_human_labels(Annotation.objects.filter(campaign=campaign), campaign=campaign)
    decisions = Item.objects.filter(campaign=campaign).values("route").annotate(n=Count("id")).order_by("route")
    snapshot = StatsSnapshot.objects.filter(campaign=campaign).first()
    return {
        "name": campaign.name,
        "description": f"Preference labels from the Tandem campaign `{campaign.slug}` ({campaign.kind}).",
        "guidelines_version": campaign.guidelines_version,
        "guidelines": campaign.guidelines,
        "annotator_pools": [
            {
                "name": "campaign pool" if pool else "every account",
                "annotators": human_labels.values("annotator").distinct().count(),
                "labels": human_labels.count(),
                "description": f"{len(pool)} named annotators" if pool else "open to every annotator account",
            }
        ],
        "judges": [
            {
                "name": j["judge__name"],
                "model": j["judge__model"],
                "prompt_version": j["prompt_version"],
                "labels": j["n"],
            }
            for j in judges
        ],
        "swap_policy": "every pairwise judgment is asked in both orders; verdicts are mapped back to A/B",
        "routing": {
            "policy": campaign.routing_policy,
            "params": campaign.routing_params,
            "human_budget": campaign.human_budget,
            "decisions": {d["route"]: d["n"] for d in decisions},
        },
        "agreement_computed_at": snapshot.computed_at.isoformat() if snapshot else None,
        "gold_accuracy": _gold_facts(campaign),
    }, (snapshot.payload["criteria"] if snapshot else {})


def _gold_facts(campaign: Campaign) -> dict | None:
    """Humans' and judges' gold accuracy for the card, pooled: the per-annotator rows name accounts, and a
    dataset card names no one. None when the campaign has no gold item."""
    gold = gold_accuracy(campaign=campaign)
    if not gold["gold_items"]:
        return None
    humans = {key: value for key, value in gold["humans"].items() if key != "annotators"}
    return {**gold, "humans": humans}


@job_handler(JOB_KIND)
def export_build(job: Job, progress) -> dict:
    from annotate.exports.build import export_dataset

    export = DatasetExport.objects.select_related("campaign").get(pk=job.params["export"])
    campaign = export.campaign
    options = ExportOptions.from_dict(export.options)
    directory = export_directory(export)
    if directory.exists():  # a retried job starts again: the same data gives the same bytes
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    facts, agreement = _facts(campaign)
    # Message-list prompts make the export conversational (TRL's format for chat data).
    conversational = Item.objects.filter(campaign=campaign, prompt__0__role__isnull=False).exists()
    # Dawid–Skene reads the items twice (fit, then write): progress follows the writing pass only.
    passes = iter([None, progress] if options.aggregation == "dawid_skene" else [progress])
    try:
        result = export_dataset(
            lambda: items_with_labels(campaign=campaign, progress=next(passes)),
            schema=campaign.label_schema,
            kind=campaign.kind,
            options=options,
            directory=directory,
            stem=f"{campaign.slug}-{options.format}",
            conversational=conversational,
            facts=facts,
            agreement=agreement,
        )
    except ValueError as exc:
        shutil.rmtree(directory, ignore_errors=True)
        raise JobFailed(str(exc)) from None
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)  # nothing half-written stays behind
        raise
    files = [
        {"split": split, "name": info["file"], "rows": info["rows"], "bytes": info["bytes"], "sha256": info["sha256"]}
        for split, info in result["splits"].items()
    ]
    DatasetExport.objects.filter(pk=export.pk).update(
        directory=str(directory), files=files, counts=result["counts"], complete=True
    )
    return {"export": export.pk, "files": files, "counts": result["counts"]}


def export_delete(*, export: DatasetExport) -> None:
    """Remove an export's files and its row."""
    if export.directory:
        shutil.rmtree(export.directory, ignore_errors=True)
    export.delete()
