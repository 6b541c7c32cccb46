"""After a judge run: one combined verdict per item from its stored judgments, and humans for the items
the judges could not label.

Per (judge, prompt version, sample): with two orders (pairwise and "both" campaigns), the two give one
label (`verdicts.consistency`: equal → that label; pairwise keys on the same side → the milder one,
opposite sides → a tie if allowed, else undecided; per-response rubric keys → their mean rounded down)
and a consistency flag; rubric, the label itself. These are then combined across samples and judges
(`verdicts.aggregate_judgments`: majority for pairwise keys, mean for rubric scores). The confidence
multiplies what each source of doubt says: agreement across samples and judges, the share of consistent
order pairs, and the mean logprob confidence when offered.
"""

from __future__ import annotations

import statistics
from collections import defaultdict

from django.db import transaction
from django.utils import timezone

from annotate.models import Annotation, Campaign, Item, JudgeVerdict, RoutingDecision
from routing.judges.plans import JOB_KIND, TWO_ORDER_KINDS
from routing.judges.store import ITEM_CHUNK
from routing.judges.verdicts import aggregate_judgments, consistency
from routing.signals import verdicts_updated

# How judgments of several samples and judges combine, per campaign kind (`verdicts.aggregate_judgments`).
AGGREGATION = {Campaign.Kind.PAIRWISE: "majority", Campaign.Kind.RUBRIC: "mean", Campaign.Kind.BOTH: "mixed"}
VERDICT_FIELDS = [
    "label", "confidence", "position_consistency", "logprob_confidence", "n_judgments", "n_parse_failures",
    "judges", "updated_at",
]  # fmt: skip


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _judgments(item_ids: list[int]) -> tuple[dict, dict]:
    """Per item, its judgments grouped by (judge, prompt version, sample) and then order; and per item the
    (judge name, prompt version) pairs seen."""
    groups: dict[int, dict[tuple, dict[bool, Annotation]]] = defaultdict(lambda: defaultdict(dict))
    judges_seen: dict[int, set] = defaultdict(set)
    judgments = Annotation.objects.filter(item_id__in=item_ids, source=Annotation.Source.JUDGE).select_related("judge")
    for a in judgments.only(
        "item_id", "judge__name", "prompt_version", "sample_index", "position_swapped", "label", "confidence",
        "parse_failed",
    ):  # fmt: skip
        groups[a.item_id][(a.judge_id, a.prompt_version, a.sample_index)][bool(a.position_swapped)] = a
        judges_seen[a.item_id].add((a.judge.name, a.prompt_version))
    return groups, judges_seen


def _verdict(campaign: Campaign, item_id: int, by_key: dict, judges_seen: set) -> JudgeVerdict:
    """One item's combined verdict from its judgments (see the module's docstring)."""
    schema = campaign.label_schema
    votes, consistent, logprobs, n, failed = [], [], [], 0, 0
    for orders in by_key.values():
        n += len(orders)
        failed += sum(a.parse_failed for a in orders.values())
        usable = [a for a in orders.values() if not a.parse_failed and a.label is not None]
        logprobs += [a.confidence for a in usable if a.confidence is not None]
        if campaign.kind in TWO_ORDER_KINDS and len(usable) == 2:
            check = consistency(orders[False].label, orders[True].label, campaign_schema=schema)
            consistent.append(1.0 if check.consistent else 0.0)
            if check.aggregate is not None:
                votes.append((check.aggregate, None))
        elif usable:
            votes.append((usable[0].label, None))
    aggregate = aggregate_judgments(votes, campaign_schema=schema, method=AGGREGATION[campaign.kind])
    position, logprob = _mean(consistent), _mean(logprobs)
    confidence = None
    if aggregate.label is not None:
        confidence = aggregate.confidence if aggregate.confidence is not None else 1.0
        confidence *= (position if position is not None else 1.0) * (logprob if logprob is not None else 1.0)
        confidence = min(1.0, max(0.0, confidence))
    return JudgeVerdict(
        campaign=campaign,
        item_id=item_id,
        label=aggregate.label,
        confidence=confidence,
        position_consistency=position,
        logprob_confidence=logprob,
        n_judgments=n,
        n_parse_failures=failed,
        judges=[{"judge": name, "prompt_version": v} for name, v in sorted(judges_seen)],
    )


def judge_verdicts_update(*, campaign: Campaign, item_ids: list[int]) -> int:
    """Recompute the judges' combined verdict of these items from every stored judgment of them (see the
    module's docstring); returns how many verdicts were written."""
    written = 0
    for start in range(0, len(item_ids), ITEM_CHUNK):
        groups, judges_seen = _judgments(item_ids[start : start + ITEM_CHUNK])
        verdicts = [_verdict(campaign, item_id, by_key, judges_seen[item_id]) for item_id, by_key in groups.items()]
        JudgeVerdict.objects.bulk_create(
            verdicts, update_conflicts=True, unique_fields=["item"], update_fields=VERDICT_FIELDS
        )
        # A verdict that arrives after the humans labelled can dispute their majority (dynamic overlap).
        verdicts_updated.send(sender=JOB_KIND, campaign=campaign, item_ids=[verdict.item_id for verdict in verdicts])
        written += len(verdicts)
    return written


def unjudgeable_route(*, campaign: Campaign, item_ids: list[int]) -> int:
    """Items only the judges were to label, on which they gave no usable verdict, go to humans."""
    with transaction.atomic():
        stuck = list(
            Item.objects.filter(
                pk__in=JudgeVerdict.objects.filter(
                    campaign=campaign, item_id__in=item_ids, label__isnull=True, n_parse_failures__gt=0
                ).values("item_id"),
                route=Item.Route.LLM,
            ).values_list("pk", flat=True)
        )
        if not stuck:
            return 0
        Item.objects.filter(pk__in=stuck).update(route=Item.Route.HUMAN)
        now = timezone.now()
        RoutingDecision.objects.bulk_create(
            RoutingDecision(
                campaign=campaign,
                item_id=item_id,
                destination=RoutingDecision.Destination.HUMAN,
                policy=campaign.routing_policy,
                reason="the judges gave no usable verdict (unparsable output or a refusal); a human labels it",
                created_at=now,
            )
            for item_id in stuck
        )
    return len(stuck)
