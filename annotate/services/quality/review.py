"""The adjudication queue: contested items for reviewers, and the final label a reviewer records.

An item is contested when its human labels still disagree at the campaign's `overlap_max`
(annotate/services/quality/overlap.py). A reviewer (the `reviewer` role, or an admin or owner) reads its
labels and justifications — annotators as "Annotator 1, 2, ..." unless the campaign lets reviewers see
who gave them — and the judges' verdict, and records a final label with a reason; the exports use it
as the item's final label. Recording it again replaces it and counts a revision.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import QuerySet

from annotate import schema as label_schema
from annotate.access import campaign_allows
from annotate.models import Adjudication, Annotation, Campaign, Item, JudgeVerdict
from annotate.selectors import item_display, prompt_preview
from annotate.services.stats import stats_request

REVIEW_STATES = (Item.ReviewState.CONTESTED, Item.ReviewState.ADJUDICATED)
FILTERS = {
    "contested": (Item.ReviewState.CONTESTED,),
    "adjudicated": (Item.ReviewState.ADJUDICATED,),
    "all": REVIEW_STATES,
}


class ReviewError(ValueError):
    """A final label the service refuses; `field` names the input at fault, `status` the HTTP answer."""

    def __init__(self, message: str, field: str = "", status: int = 400, code: str = "invalid"):
        super().__init__(message)
        self.field = field
        self.status = status
        self.code = code


# --- reads ------------------------------------------------------------------------------------


def contested_items(*, campaign: Campaign, state: str = "all") -> QuerySet[Item]:
    """The campaign's items in review: `state` "contested", "adjudicated" or "all"; contested first,
    oldest first. Walks the partial index on (campaign, review_state)."""
    if state not in FILTERS:
        raise ReviewError(f"state: choose one of {', '.join(FILTERS)} (not {state!r})", field="state")
    return (
        Item.objects.filter(campaign=campaign, review_state__in=FILTERS[state])
        .select_related("adjudication")
        .order_by("-review_state", "id")  # "contested" sorts after "adjudicated": descending puts it first
    )


def review_counts(*, campaign: Campaign) -> dict[str, int]:
    """How many items are contested and adjudicated (one grouped count over the partial index)."""
    counts = dict.fromkeys(("contested", "adjudicated"), 0)
    rows = Item.objects.filter(campaign=campaign, review_state__in=REVIEW_STATES).values_list("review_state")
    for (state,) in rows.order_by():
        counts[state] += 1
    return counts


def review_queue(*, campaign: Campaign, state: str = "all", limit: int = 200) -> list[dict]:
    """The first `limit` items in review as rows for a list: id, external id, prompt preview, labels, state."""
    rows = contested_items(campaign=campaign, state=state).only(
        "id", "external_id", "prompt", "human_label_count", "review_state", "adjudication__revision",
        "adjudication__updated_at",
    )[:limit]  # fmt: skip
    out = []
    for item in rows:
        adjudication = getattr(item, "adjudication", None)
        out.append(
            {
                "id": item.pk,
                "external_id": item.external_id,
                "prompt": prompt_preview(item.prompt),
                "labels": item.human_label_count,
                "state": item.review_state,
                "revision": adjudication.revision if adjudication else None,
                "adjudicated_at": adjudication.updated_at if adjudication else None,
            }
        )
    return out


@dataclass
class ReviewItem:
    """What a reviewer sees of one item: the texts in the item's own A/B order, every human label with its
    justification, the judges' verdict, the final label so far. `labels` rows: {who, label, justification,
    rater_confidence, seconds, too_fast, revision}; `who` is "Annotator n" unless identities are shown."""

    item: Item
    display: dict
    labels: list[dict] = field(default_factory=list)
    verdict: JudgeVerdict | None = None
    adjudication: Adjudication | None = None
    identities: bool = False


def review_item(*, campaign: Campaign, item_id: int) -> ReviewItem | None:
    """One item in review (contested or adjudicated) of this campaign, or None."""
    item = (
        Item.objects.filter(campaign=campaign, pk=item_id, review_state__in=REVIEW_STATES)
        .select_related("adjudication", "adjudication__reviewer")
        .first()
    )
    if item is None:
        return None
    identities = campaign.reviewers_see_identities
    annotations = (
        Annotation.objects.filter(item=item, source=Annotation.Source.HUMAN)
        .select_related("annotator")
        .order_by("created_at", "id")
    )
    labels = []
    for n, annotation in enumerate(annotations, start=1):
        labels.append(
            {
                "who": annotation.annotator.username if identities and annotation.annotator else f"Annotator {n}",
                "label": annotation.label,
                "justification": annotation.justification,
                "rater_confidence": annotation.rater_confidence,
                "seconds": annotation.seconds,
                "too_fast": annotation.too_fast,
                "revision": annotation.revision,
            }
        )
    return ReviewItem(
        item=item,
        # The item's own order (A left, B right): stored labels, verdicts and the final label use it too.
        display=item_display(item=item, campaign=campaign, position_swapped=False),
        labels=labels,
        verdict=JudgeVerdict.objects.filter(item=item).first(),
        adjudication=getattr(item, "adjudication", None),
        identities=identities,
    )


# --- the final label --------------------------------------------------------------------------


def adjudication_record(*, item: Item, reviewer, label: object, reason: str) -> Adjudication:
    """Record (or replace) the reviewer's final label on a contested item; the item becomes adjudicated.

    `label` is {aspect or criterion: int} in the item's own A/B order, checked by the one label validator
    the submit path runs (every key required; the justification and confidence rules are the annotators'
    and do not apply: the reason is the reviewer's). Replacing a final label bumps its revision.
    """
    campaign = item.campaign
    if not campaign_allows(user=reviewer, campaign=campaign, need="review"):
        raise ReviewError(
            f"Only the reviewers, admins and owners of {campaign.name!r} may record final labels.",
            status=403,
            code="forbidden",
        )
    reason = (reason or "").strip()
    if not reason:
        raise ReviewError("reason: say why this is the final label (the exports keep it).", field="reason")
    try:
        final = label_schema.label_validate(
            schema=campaign.label_schema, kind=campaign.kind, label=label, source="review"
        )
    except label_schema.LabelError as exc:
        raise ReviewError(str(exc), field=exc.field) from None
    with transaction.atomic():
        locked = Item.objects.select_for_update().get(pk=item.pk)
        if locked.review_state not in REVIEW_STATES:
            raise ReviewError(
                f"item {locked.external_id!r} is not contested: only contested items get a final label here.",
                field="item",
                status=409,
                code="not_contested",
            )
        adjudication = Adjudication.objects.select_for_update().filter(item=locked).first()
        if adjudication is None:
            adjudication = Adjudication.objects.create(
                campaign=campaign, item=locked, reviewer=reviewer, label=final, reason=reason
            )
        elif (adjudication.label, adjudication.reason, adjudication.reviewer_id) != (final, reason, reviewer.pk):
            adjudication.label, adjudication.reason, adjudication.reviewer = final, reason, reviewer
            adjudication.revision += 1
            adjudication.save(update_fields=["label", "reason", "reviewer", "revision", "updated_at"])
        if locked.review_state != Item.ReviewState.ADJUDICATED:
            locked.review_state = Item.ReviewState.ADJUDICATED
            locked.save(update_fields=["review_state"])
        # The hybrid leaderboard and agreement read adjudications: compute them again.
        transaction.on_commit(lambda: stats_request(campaign_id=campaign.pk))
        item.review_state = locked.review_state
        return adjudication
