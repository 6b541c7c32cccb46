"""Dynamic overlap: ask for another human label when an item's labels disagree, up to `overlap_max`.

When a work item reaches its target (`targets.item_target`) and its human labels are disputed
(`annotate.stats.consensus`) — or, with `Campaign.overlap_on_judge_disagreement`, their strict majority
differs from the judges' verdict (`JudgeVerdict`, the judges' combined label) — the item's target grows
by one (`Item.extra_labels`), and the assignment engine hands it out again; an item still disputed at
`overlap_max` is marked contested and goes to the reviewers (annotate/services/quality/review.py).

Every decision holds the item's row lock, so concurrent submits on one item decide one after the other
and the target never grows past the maximum. An item once contested stays contested until a reviewer
adjudicates it, even if a later judge verdict would settle it: its labels are what a reviewer is
reading, and an item that leaves the queue under their eyes helps nobody.
"""

from __future__ import annotations

from collections import defaultdict

from django.db import transaction

from annotate.models import Annotation, Campaign, Item, JudgeVerdict
from annotate.services.quality.labels import countable_human_labels
from annotate.services.targets import item_target
from annotate.stats.consensus import label_consensus, verdict_differs

RECHECK_CHUNK = 500
HUMAN_ROUTES = (Item.Route.HUMAN, Item.Route.BOTH)


def _labels_of(item_ids: list[int], campaign: Campaign) -> dict[int, list[dict]]:
    """The labels that count (quality/labels.py): a dispute is judged on what statistics and exports will see."""
    labels: dict[int, list[dict]] = defaultdict(list)
    rows = countable_human_labels(Annotation.objects.filter(item_id__in=item_ids), campaign=campaign).order_by("id")
    for item_id, label in rows.values_list("item_id", "label"):
        if label:
            labels[item_id].append(label)
    return labels


def _verdicts_of(item_ids: list[int]) -> dict[int, dict]:
    rows = JudgeVerdict.objects.filter(item_id__in=item_ids, label__isnull=False).values_list("item_id", "label")
    return dict(rows)


def item_disputed(*, labels: list[dict], verdict: dict | None, campaign: Campaign) -> bool:
    """The campaign's dispute rule on one item: its human labels disagree, or (when the campaign says so)
    their majority differs from the judges' verdict."""
    schema, kind, threshold = campaign.label_schema, campaign.kind, campaign.agreement_threshold
    if label_consensus(labels, schema=schema, kind=kind, threshold=threshold).disputed:
        return True
    return campaign.overlap_on_judge_disagreement and verdict_differs(
        labels, verdict, schema=schema, kind=kind, threshold=threshold
    )


def _decide(item: Item, campaign: Campaign, labels: list[dict], verdict: dict | None) -> str:
    """On a locked item: "more" (another label wanted), "contested", or "" (nothing to do)."""
    if item.review_state or item.gold_label is not None or item.route not in HUMAN_ROUTES:
        return ""
    target = item_target(item, campaign)
    if item.human_label_count < target:
        return ""  # labels are still coming: decide when the last one arrives
    if not item_disputed(labels=labels, verdict=verdict, campaign=campaign):
        return ""
    if item.human_label_count < campaign.overlap_max:
        # One label more than the item has (labels can exceed a target an admin lowered after the
        # leases went out); below the maximum the target is not capped, so target − extras is the base.
        base = target - item.extra_labels
        item.extra_labels = item.human_label_count + 1 - base
        item.save(update_fields=["extra_labels"])
        return "more"
    item.review_state = Item.ReviewState.CONTESTED
    item.save(update_fields=["review_state"])
    return "contested"


def after_label(*, item_id: int, campaign: Campaign) -> None:
    """Another label wanted (Item.extra_labels + 1) or the item contested; nothing when overlap_max is off.

    Runs inside the submit's transaction, after the label and the item's counters were written.
    """
    if campaign.overlap_max is None:
        return
    item = Item.objects.select_for_update().get(pk=item_id)
    _decide(item, campaign, _labels_of([item_id], campaign).get(item_id, []), _verdicts_of([item_id]).get(item_id))


def items_recheck(*, campaign: Campaign, item_ids: list[int]) -> dict[str, int]:
    """Decide again on items whose judges' verdict changed after the humans had labelled them.

    Only the judge rule can have changed (the human rule was decided at the last human label), so
    nothing happens unless dynamic overlap is on and the campaign counts judge disagreement. One
    transaction per chunk of items, rows locked in id order (as every other multi-item lock), so a
    submit on one of them waits for the decision or is waited for. Returns {"more": n, "contested": n}.
    """
    done = {"more": 0, "contested": 0}
    if campaign.overlap_max is None or not campaign.overlap_on_judge_disagreement:
        return done
    ids = sorted({int(pk) for pk in item_ids})
    for start in range(0, len(ids), RECHECK_CHUNK):
        chunk = ids[start : start + RECHECK_CHUNK]
        with transaction.atomic():
            items = list(
                Item.objects.select_for_update()
                .filter(
                    pk__in=chunk,
                    campaign=campaign,
                    route__in=HUMAN_ROUTES,
                    gold_label__isnull=True,
                    review_state=Item.ReviewState.NONE,
                    human_label_count__gt=0,
                )
                .order_by("pk")
            )
            if not items:
                continue
            found = [item.pk for item in items]
            labels, verdicts = _labels_of(found, campaign), _verdicts_of(found)
            for item in items:
                outcome = _decide(item, campaign, labels.get(item.pk, []), verdicts.get(item.pk))
                if outcome:
                    done[outcome] += 1
    return done
