"""A judge run's storage: which judgments are stored already, what is still pending, and what they cost.

A judgment is keyed by (item, judge, prompt version, order, sample) — the key the database holds unique —
so a run that is retried or redelivered skips what is stored and never asks the endpoint twice for it;
cost is the sum over stored judgments, never a counter that a retry could bump twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from django.db.models import Count, Sum

from annotate.models import Annotation, Campaign, Item
from routing.judges.plans import Plan, judged_by, run_items

ITEM_CHUNK = 500
COST_QUANTUM = Decimal(1).scaleb(-Annotation._meta.get_field("cost").decimal_places)
ITEM_FIELDS = ("id", "external_id", "prompt", "response_a", "response_b", "response", "reference")


def stored_keys(*, item_ids: list[int], plans: list[Plan]) -> set[tuple]:
    """(item, judge, position_swapped, sample) of every judgment of these items stored with a current prompt."""
    return set(
        Annotation.objects.filter(judged_by(plans), item_id__in=item_ids, source=Annotation.Source.JUDGE).values_list(
            "item_id", "judge_id", "position_swapped", "sample_index"
        )
    )


def pending(*, plans: list[Plan], item_ids: list[int]) -> Iterator[tuple]:
    """(plan, item, swapped, sample) for every judgment not stored yet, reading items a chunk at a time."""
    for start in range(0, len(item_ids), ITEM_CHUNK):
        chunk = item_ids[start : start + ITEM_CHUNK]
        stored = stored_keys(item_ids=chunk, plans=plans)
        items = Item.objects.filter(pk__in=chunk).values(*ITEM_FIELDS)
        for item in sorted(items, key=lambda i: i["id"]):
            for plan in plans:
                for sample in range(plan.samples):
                    for swapped in plan.orders:
                        if (item["id"], plan.judge.pk, swapped, sample) not in stored:
                            yield plan, item, swapped, sample


def judgments_store(rows: list[Annotation]) -> None:
    """Store received judgments; one stored meanwhile (a redelivered run, another shard) is kept as it is."""
    if rows:
        Annotation.objects.bulk_create(rows, ignore_conflicts=True)


def money(value) -> Decimal:
    """A sum of costs at the column's precision: SQLite sums decimals as floats (170.191000000001)."""
    return Decimal(str(value or 0)).quantize(COST_QUANTUM)


def stored_count(*, campaign: Campaign, plans: list[Plan], scope: str) -> tuple[int, Decimal]:
    """How many of the run's judgments are stored, and their cost."""
    items = run_items(campaign=campaign, scope=scope)
    totals = Annotation.objects.filter(
        judged_by(plans), campaign=campaign, source=Annotation.Source.JUDGE, item__in=items
    ).aggregate(n=Count("id"), cost=Sum("cost"))
    return totals["n"], money(totals["cost"])
