"""The assignment engine: leasing items to annotators, heartbeats, expiry, submit, skip and edits.

Counters live on the item and move in the same transaction as the lease or label that changes
them: `assigned_count` = human labels + live leases (what counts against the overlap),
`human_label_count` = human labels. On PostgreSQL the queue is read with
`SELECT … FOR UPDATE SKIP LOCKED` over a partial index in queue order, so concurrent annotators
never wait on each other's rows and never get the same slot; on SQLite every write transaction
is IMMEDIATE, so writers simply take turns.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import BooleanField, Count, Exists, F, OuterRef, Sum, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import Least
from django.utils import timezone

from annotate import schema as label_schema
from annotate.models import Annotation, AnnotationRevision, Assignment, Campaign, Item
from annotate.services.counters import item_counts_add

MAX_LIVE_LEASES = 2  # the item on screen and the one prefetched behind it
EXPIRE_BATCH = 500
WORKABLE_STATES = (Campaign.State.ACTIVE,)
SUBMITTABLE_STATES = (Campaign.State.ACTIVE, Campaign.State.PAUSED)


class AssignmentError(Exception):
    """A request the engine refuses; `code` is stable for API clients, the message is for people."""

    def __init__(self, message: str, code: str, field: str = "", status: int = 400):
        super().__init__(message)
        self.code = code
        self.field = field
        self.status = status


@dataclass(frozen=True)
class NoWork:
    """Why there is nothing to lease: `done`, `wait` (others hold the rest; retry later) or `hold`."""

    reason: str
    retry_after: int | None = None
    message: str = ""


# --- leasing ----------------------------------------------------------------------------------


def next_assignment_for(
    *, annotator, campaign: Campaign, exclude: frozenset[int] | set[int] = frozenset(), now: datetime | None = None
) -> Assignment | NoWork:
    """The annotator's oldest live lease not in `exclude`, or a new lease; NoWork when none.

    `exclude` holds the leases the client already shows (the current item when prefetching), so
    asking again after a timeout returns the same lease instead of leaking a new one.
    """
    now = now or timezone.now()
    if campaign.state not in WORKABLE_STATES:
        raise AssignmentError(
            f"campaign {campaign.slug!r} is {campaign.state}, not open for labelling", "closed", status=409
        )
    for attempt in (1, 2):
        with transaction.atomic():
            live = list(
                Assignment.objects.filter(
                    campaign=campaign, annotator=annotator, state=Assignment.State.LEASED, expires_at__gt=now
                ).order_by("leased_at", "id")
            )
            for assignment in live:
                if assignment.pk not in exclude:
                    return assignment
            if len(live) >= MAX_LIVE_LEASES:
                return NoWork("hold", message="You already hold the items on your screen.")
            item = _lease_candidate(annotator=annotator, campaign=campaign)
            if item is BUSY:
                return NoWork(
                    "wait", retry_after=1, message="Others are taking the last items right now; trying again."
                )
            if item is not None:
                if item.gold_label is None:
                    Item.objects.filter(pk=item.pk).update(assigned_count=F("assigned_count") + 1)
                return Assignment.objects.create(
                    campaign=campaign,
                    item=item,
                    annotator=annotator,
                    expires_at=now + timedelta(seconds=campaign.lease_seconds),
                    position_swapped=(random.random() < 0.5) if campaign.has_pairwise else None,
                )
        # The queue looks empty: return expired leases to the pool (the periodic sweep may not have
        # run yet) and look once more before saying so.
        if attempt == 1 and not leases_expire(campaign=campaign, now=now):
            break
    return _why_no_work(annotator=annotator, campaign=campaign, now=now)


def _not_seen_by(annotator) -> RawSQL:
    """Items this annotator never leased nor labelled.

    Written as scalar subqueries with LIMIT rather than NOT EXISTS: PostgreSQL cannot turn them
    into an anti-join, so each candidate the queue index yields costs two unique-index probes,
    whatever the (often stale, on a fresh campaign) table statistics say. With NOT EXISTS a
    planner that believed the tables empty chose to rescan all of an annotator's rows per candidate.
    """
    item = Item._meta.db_table
    return RawSQL(
        f"NOT COALESCE((SELECT true FROM {Assignment._meta.db_table} a "
        f"WHERE a.item_id = {item}.id AND a.annotator_id = %s LIMIT 1), false) "
        f"AND NOT COALESCE((SELECT true FROM {Annotation._meta.db_table} n "
        f"WHERE n.item_id = {item}.id AND n.annotator_id = %s AND n.source = 'human' LIMIT 1), false)",
        [annotator.pk, annotator.pk],
        output_field=BooleanField(),
    )


def _lease_candidate(*, annotator, campaign: Campaign) -> Item | None:
    if campaign.gold_rate and random.random() < campaign.gold_rate:
        gold = (
            Item.objects.filter(campaign=campaign, gold_label__isnull=False)
            .filter(_not_seen_by(annotator))
            .order_by("queue_rank")
        )
        found = _first_locked(gold)
        if found is not None and found is not BUSY:
            return found
    queue = (
        Item.objects.filter(
            campaign=campaign,
            route__in=(Item.Route.HUMAN, Item.Route.BOTH),
            gold_label__isnull=True,
            assigned_count__lt=campaign.overlap,
        )
        .filter(_not_seen_by(annotator))
        .order_by("-assigned_count", "queue_rank")
    )
    return _first_locked(queue)


BUSY = object()  # every candidate is held by a transaction still in flight


def _first_locked(queryset):
    """The first row nobody else holds; BUSY when candidates exist but all are being taken now.

    SKIP LOCKED alone could answer "nothing" while other transactions are about to release rows
    they only looked at. A blocking FOR UPDATE over the queue would wait for them, but it also keeps
    every row it locked and then found full, and two such walks can deadlock. So: retry briefly,
    checking without locks whether candidates still exist at all.
    """
    if connection.vendor != "postgresql":
        return queryset.first()
    for attempt in range(5):
        found = queryset.select_for_update(skip_locked=True, of=("self",)).first()
        if found is not None or not queryset.exists():
            return found
        time.sleep(0.005 * (attempt + 1))
    return BUSY


def _why_no_work(*, annotator, campaign: Campaign, now: datetime) -> NoWork:
    """Nothing leasable: either everything is done for this annotator, or others hold the rest."""
    held = (
        Assignment.objects.filter(
            campaign=campaign,
            state=Assignment.State.LEASED,
            expires_at__gt=now,
            item__human_label_count__lt=campaign.overlap,
            item__gold_label__isnull=True,
        )
        .exclude(annotator=annotator)
        .filter(~Exists(Assignment.objects.filter(item=OuterRef("item"), annotator=annotator)))
        .order_by("expires_at")
        .values_list("expires_at", flat=True)
        .first()
    )
    if held is not None:
        wait = max(1, int((held - now).total_seconds()) + 1)
        return NoWork(
            "wait",
            retry_after=min(wait, 60),
            message="The remaining items are being labelled by others right now. Items come back if they are not "
            "finished; try again shortly.",
        )
    return NoWork("done", message="You have labelled every item available to you in this campaign. Thank you!")


def leases_expire(*, campaign: Campaign | None = None, now: datetime | None = None) -> int:
    """Return expired leases to the pool; safe to run from many processes at once."""
    now = now or timezone.now()
    expired = 0
    while True:
        with transaction.atomic():
            queryset = Assignment.objects.filter(state=Assignment.State.LEASED, expires_at__lte=now)
            if campaign is not None:
                queryset = queryset.filter(campaign=campaign)
            if connection.vendor == "postgresql":
                queryset = queryset.select_for_update(skip_locked=True)
            batch = list(queryset.values_list("id", "item_id", "item__gold_label")[:EXPIRE_BATCH])
            if not batch:
                return expired
            Assignment.objects.filter(id__in=[b[0] for b in batch]).update(
                state=Assignment.State.EXPIRED, finished_at=now
            )
            _release_slots([item_id for _, item_id, gold in batch if gold is None])
            expired += len(batch)
        if len(batch) < EXPIRE_BATCH:
            return expired


def _release_slots(item_ids: list[int]) -> None:
    item_counts_add(item_ids=item_ids, fields=("assigned_count",), sign=-1)


# --- the annotator's actions on a lease ------------------------------------------------------


def _locked_assignment(*, assignment_id: int, annotator) -> Assignment:
    assignment = (
        Assignment.objects.select_for_update(of=("self",))
        .select_related("campaign", "item")
        .filter(pk=assignment_id, annotator=annotator)
        .first()
    )
    if assignment is None:
        # Someone else's lease looks exactly like a missing one: nothing to learn by probing.
        raise AssignmentError("no such assignment of yours", "not_found", status=404)
    return assignment


def _retake_slot(assignment: Assignment, now: datetime) -> None:
    """A lease that expired and was reclaimed can come back only if the item still has room."""
    item = Item.objects.select_for_update().get(pk=assignment.item_id)
    if item.gold_label is None:
        if item.assigned_count >= assignment.campaign.overlap:
            raise AssignmentError(
                "Your lease on this item expired and it went to someone else; your answer was not stored.",
                "lease_lost",
                status=409,
            )
        Item.objects.filter(pk=item.pk).update(assigned_count=F("assigned_count") + 1)
    assignment.state = Assignment.State.LEASED


def lease_heartbeat(*, assignment_id: int, annotator, active_seconds: float | None = None, now=None) -> Assignment:
    """Keep a lease alive while its page is open, and record the client's active time."""
    now = now or timezone.now()
    with transaction.atomic():
        assignment = _locked_assignment(assignment_id=assignment_id, annotator=annotator)
        if assignment.state in (Assignment.State.SUBMITTED, Assignment.State.SKIPPED):
            return assignment
        if assignment.state == Assignment.State.EXPIRED:
            _retake_slot(assignment, now)
        assignment.expires_at = now + timedelta(seconds=assignment.campaign.lease_seconds)
        if active_seconds is not None:
            assignment.active_seconds = _active_time(assignment, active_seconds, now)
        assignment.save(update_fields=["state", "expires_at", "active_seconds"])
        return assignment


def _active_time(assignment: Assignment, reported: float, now: datetime) -> float:
    """The client's active time, never more than the wall time since the lease, never going back."""
    wall = max(0.0, (now - assignment.leased_at).total_seconds())
    try:
        reported = float(reported)
    except (TypeError, ValueError):
        return assignment.active_seconds
    return round(max(assignment.active_seconds, min(max(reported, 0.0), wall)), 3)


def annotation_submit(
    *,
    assignment_id: int,
    annotator,
    label: object,
    justification: str = "",
    rater_confidence: int | None = None,
    active_seconds: float | None = None,
    now: datetime | None = None,
) -> tuple[Annotation, bool]:
    """Store the label for a lease; returns (annotation, created).

    `label` is in display order (negative favours the response shown on the left); it is stored in
    the item's own A/B order. Submitting the same lease again returns the stored label unchanged.
    """
    now = now or timezone.now()
    with transaction.atomic():
        assignment = _locked_assignment(assignment_id=assignment_id, annotator=annotator)
        campaign = assignment.campaign
        if assignment.state == Assignment.State.SUBMITTED:
            return Annotation.objects.get(assignment=assignment), False
        if assignment.state == Assignment.State.SKIPPED:
            raise AssignmentError("You skipped this item; it cannot be labelled now.", "skipped", status=409)
        if campaign.state not in SUBMITTABLE_STATES:
            raise AssignmentError(f"campaign {campaign.slug!r} is {campaign.state}", "closed", status=409)
        item_label = _validated(campaign, assignment.position_swapped, label, justification, rater_confidence)
        if assignment.state == Assignment.State.EXPIRED:
            _retake_slot(assignment, now)
        if active_seconds is not None:
            assignment.active_seconds = _active_time(assignment, active_seconds, now)
        annotation = Annotation.objects.create(
            item=assignment.item,
            campaign=campaign,
            source=Annotation.Source.HUMAN,
            annotator=annotator,
            assignment=assignment,
            label=item_label,
            justification=justification.strip(),
            rater_confidence=rater_confidence,
            seconds=assignment.active_seconds or None,
            position_swapped=assignment.position_swapped,
        )
        assignment.state = Assignment.State.SUBMITTED
        assignment.finished_at = now
        assignment.save(update_fields=["state", "finished_at", "active_seconds"])
        Item.objects.filter(pk=assignment.item_id).update(human_label_count=F("human_label_count") + 1)
        return annotation, True


def _validated(campaign, position_swapped, label, justification, rater_confidence) -> dict[str, int]:
    try:
        display_label = label_schema.label_validate(
            schema=campaign.label_schema,
            kind=campaign.kind,
            label=label,
            justification=justification,
            confidence=rater_confidence,
        )
    except label_schema.LabelError as exc:
        raise AssignmentError(str(exc), "invalid_label", field=exc.field) from None
    return label_schema.label_orient(
        schema=campaign.label_schema,
        kind=campaign.kind,
        label=display_label,
        position_swapped=position_swapped,
    )


def assignment_skip(*, assignment_id: int, annotator, reason: str, now: datetime | None = None) -> Assignment:
    """Give an item back with a reason; it goes to someone else, never again to this annotator."""
    now = now or timezone.now()
    reason = (reason or "").strip()
    if not reason:
        raise AssignmentError("Say why you skip this item.", "reason_required", field="reason")
    with transaction.atomic():
        assignment = _locked_assignment(assignment_id=assignment_id, annotator=annotator)
        if assignment.state == Assignment.State.SKIPPED:
            return assignment
        if assignment.state == Assignment.State.SUBMITTED:
            raise AssignmentError("This item is already labelled; change the label instead.", "submitted", status=409)
        if assignment.state == Assignment.State.LEASED and assignment.item.gold_label is None:
            _release_slots([assignment.item_id])
        assignment.state = Assignment.State.SKIPPED
        assignment.skip_reason = reason[:500]
        assignment.finished_at = now
        assignment.save(update_fields=["state", "skip_reason", "finished_at"])
        return assignment


def annotation_update(
    *, annotation_id: int, annotator, label: object, justification: str = "", rater_confidence: int | None = None
) -> Annotation:
    """Change one of my labels while the campaign is open; the old value is kept as a revision."""
    with transaction.atomic():
        annotation = (
            Annotation.objects.select_for_update(of=("self",))
            .select_related("campaign", "assignment")
            .filter(pk=annotation_id, annotator=annotator, source=Annotation.Source.HUMAN)
            .first()
        )
        if annotation is None:
            raise AssignmentError("no such label of yours", "not_found", status=404)
        campaign = annotation.campaign
        if campaign.state not in WORKABLE_STATES:
            raise AssignmentError(
                f"campaign {campaign.slug!r} is {campaign.state}; labels can no longer change", "closed", status=409
            )
        item_label = _validated(campaign, annotation.position_swapped, label, justification, rater_confidence)
        if (item_label, justification.strip(), rater_confidence) == (
            annotation.label,
            annotation.justification,
            annotation.rater_confidence,
        ):
            return annotation
        AnnotationRevision.objects.create(
            annotation=annotation,
            revision=annotation.revision,
            label=annotation.label,
            justification=annotation.justification,
            rater_confidence=annotation.rater_confidence,
        )
        annotation.label = item_label
        annotation.justification = justification.strip()
        annotation.rater_confidence = rater_confidence
        annotation.revision += 1
        annotation.save(update_fields=["label", "justification", "rater_confidence", "revision", "updated_at"])
        return annotation


# --- reads ----------------------------------------------------------------------------------


def display_label(annotation: Annotation) -> dict[str, int]:
    """A stored label as the annotator saw it (left/right), for reopening it."""
    return label_schema.label_orient(
        schema=annotation.campaign.label_schema,
        kind=annotation.campaign.kind,
        label=annotation.label,
        position_swapped=annotation.position_swapped,
    )


def my_label_count(*, annotator, campaign: Campaign) -> int:
    """One indexed count: cheap enough to answer every submit with."""
    return Annotation.objects.filter(campaign=campaign, annotator=annotator, source=Annotation.Source.HUMAN).count()


def annotator_progress(*, annotator, campaign: Campaign) -> dict:
    """My labels in a campaign, and the campaign's progress towards `overlap` labels per human item.

    The campaign part reads every human item of the campaign: for page loads, not for each submit.
    """
    mine = my_label_count(annotator=annotator, campaign=campaign)
    totals = Item.objects.filter(
        campaign=campaign, route__in=(Item.Route.HUMAN, Item.Route.BOTH), gold_label__isnull=True
    ).aggregate(n=Count("id"), done=Sum(Least("human_label_count", Value(campaign.overlap))))
    wanted = totals["n"] * campaign.overlap
    done = totals["done"] or 0
    return {
        "mine": mine,
        "campaign_labels": done,
        "campaign_wanted": wanted,
        "campaign_fraction": done / wanted if wanted else 1.0,
    }
