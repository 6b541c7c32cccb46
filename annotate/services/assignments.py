"""The assignment engine: leasing items to annotators, heartbeats, expiry, submit, skip and edits.

Counters live on the item and move in the same transaction as the lease or label that changes
them: `assigned_count` = human labels + live leases (what counts against the overlap),
`human_label_count` = human labels. An item's target is `Item.label_target` when an admin lowered it
(never above the campaign's `overlap`), else the overlap, plus dynamic overlap's extra labels
(annotate/services/targets.py: `item_target`, and `target_sql` for the queries). An annotator is never
given the same item twice unless an admin gave a stranded item back to them (`Assignment.returned_at`, see
annotate/services/queue.py): returned rows are history and no longer count as "seen".

On PostgreSQL the queue is read with `SELECT … FOR UPDATE SKIP LOCKED` over a partial index in
queue order, so concurrent annotators never wait on each other's rows and never get the same
slot; on SQLite every write transaction is IMMEDIATE, so writers simply take turns.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from annotate import schema as label_schema
from annotate.models import Annotation, AnnotationRevision, Assignment, Campaign, Item
from annotate.models.rawsql import instance_insert, instances_from_sql
from annotate.selectors import _pool_condition, in_campaign_pool
from annotate.services.counters import item_counts_add
from annotate.services.outcomes import AssignmentError, NoWork
from annotate.services.quality import gate, overlap
from annotate.services.targets import item_target, target_sql

MAX_LIVE_LEASES = 2  # the item on screen and the one prefetched behind it
EXPIRE_BATCH = 500
WORKABLE_STATES = (Campaign.State.OPEN,)
SUBMITTABLE_STATES = (Campaign.State.OPEN, Campaign.State.PAUSED)


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
        live = instances_from_sql(
            Assignment,
            f"SELECT * FROM {_ASSIGNMENT} WHERE campaign_id = %s AND annotator_id = %s AND state = %s "
            "AND expires_at > %s ORDER BY leased_at, id",
            [campaign.pk, annotator.pk, Assignment.State.LEASED, now],
        )
        for assignment in live:
            if assignment.pk not in exclude:
                assignment.campaign = campaign
                return assignment
        if len(live) >= MAX_LIVE_LEASES:
            return NoWork("hold", message="You already hold the items on your screen.")
        if campaign.label_limit is not None or campaign.daily_label_limit is not None:
            limited = _limit_reached(annotator=annotator, campaign=campaign, held=len(live), now=now)
            if limited is not None:
                return limited
        step = gate.work_step(annotator=annotator, campaign=campaign, now=now)
        if isinstance(step, NoWork):
            return step
        lease = _lease_skip_locked if connection.vendor == "postgresql" else _lease_in_turn
        if step == Assignment.Purpose.QUALIFICATION:
            assignment = lease(annotator=annotator, campaign=campaign, purpose=step, now=now)
            if assignment is None or assignment is BUSY:
                outcome = gate.no_qualification_item(annotator=annotator, campaign=campaign, now=now)
                if outcome is None:
                    # Passed: the gate now answers WORK, so this asks for a work item and cannot come back here.
                    return next_assignment_for(annotator=annotator, campaign=campaign, exclude=exclude, now=now)
                return outcome
            return assignment
        assignment = None
        if campaign.gold_rate and random.random() < campaign.gold_rate:
            assignment = lease(annotator=annotator, campaign=campaign, purpose=Assignment.Purpose.ATTENTION, now=now)
        if assignment is None or assignment is BUSY:
            assignment = lease(annotator=annotator, campaign=campaign, purpose=Assignment.Purpose.WORK, now=now)
        if assignment is None and campaign.overlap_max is not None:
            # The fresh queue is empty for this annotator: items dynamic overlap reopened.
            assignment = lease(
                annotator=annotator, campaign=campaign, purpose=Assignment.Purpose.WORK, now=now, reopened=True
            )
        if assignment is BUSY:
            return NoWork("wait", retry_after=1, message="Others are taking the last items right now; trying again.")
        if assignment is not None:
            return assignment
        # The queue looks empty: return expired leases to the pool (the periodic sweep may not have
        # run yet) and look once more before saying so.
        if attempt == 1 and not leases_expire(campaign=campaign, now=now):
            break
    return _why_no_work(annotator=annotator, campaign=campaign, now=now)


def _my_label_counts(*, annotator, campaign: Campaign, now: datetime) -> tuple[int, int, datetime]:
    """(labels in the campaign, labels today, today's start): one indexed count, UTC days."""
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    counts = Annotation.objects.filter(
        campaign=campaign, annotator=annotator, source=Annotation.Source.HUMAN
    ).aggregate(total=Count("id"), today=Count("id", filter=Q(created_at__gte=day)))
    return counts["total"], counts["today"], day


def _s(n: int) -> str:
    return "" if n == 1 else "s"


def _limit_reached(*, annotator, campaign: Campaign, held: int, now: datetime) -> NoWork | None:
    """NoWork("limit") when labels given plus leases held reach a per-person limit; None otherwise.

    Live leases count, so nobody can hold items past the limit. Only called when a limit is set.
    """
    total, today, day = _my_label_counts(annotator=annotator, campaign=campaign, now=now)
    limit, daily = campaign.label_limit, campaign.daily_label_limit
    if limit is not None and total + held >= limit:
        if total >= limit:
            return NoWork(
                "limit", message=f"You have given the {limit} label{_s(limit)} this campaign allows per person."
            )
        return NoWork(
            "limit",
            message=f"The items on your screen are the last of the {limit} label{_s(limit)} this campaign allows.",
        )
    if daily is not None and today + held >= daily:
        if today >= daily:
            message = (
                f"You have given the {daily} label{_s(daily)} this campaign allows per person today; more tomorrow"
            )
        else:
            message = (
                f"The items on your screen are the last of the {daily} label{_s(daily)} allowed today; more tomorrow"
            )
        return NoWork("limit", message=f"{message} (from 00:00 UTC).", resets_at=day + timedelta(days=1))
    return None


BUSY = object()  # every candidate is held by a transaction still in flight
_ITEM, _ASSIGNMENT, _ANNOTATION = (m._meta.db_table for m in (Item, Assignment, Annotation))
# What an annotator's page needs of an item; the rest (model names, metadata) never leaves the database.
_DISPLAY_COLUMNS = ("id", "prompt", "response_a", "response_b", "response", "reference", "gold_label")


def _candidates_sql(
    *,
    annotator,
    campaign: Campaign,
    gold: bool,
    columns: str,
    reopened: bool = False,
    fresh: bool = False,
    parts: bool = False,
) -> tuple:
    """The items this annotator may be given next, best first (no LIMIT, no locking clause); with `parts`,
    its pieces instead: (queue conditions, their params, "not seen" condition, its params, order).

    Hand-written because it runs on every lease and its shape matters:
    - the queue conditions repeat the partial index's predicate word for word, so the planner
      walks that index in queue order (fullest items first, then the campaign's shuffle);
    - the item's exact target (`target_sql`: a lowered `label_target`, dynamic overlap's extra
      labels) is a second condition next to a bound on `assigned_count`, so the bound stays an index
      condition and the exceptions are filtered as they are passed;
    - `reopened` picks the range of that bound: False, items below the campaign's overlap (the
      queue, and with dynamic overlap off the whole of it); True, items at or above the overlap that
      dynamic overlap reopened (below `overlap_max`). The two are asked apart because the reopened
      range is mostly finished items: walked first, on every lease, it would cost a pass over every
      finished item; asked only once the fresh queue is empty for this annotator, it costs that pass
      at the campaign's end alone;
    - "not seen by this annotator" is two scalar subqueries with LIMIT rather than NOT EXISTS:
      PostgreSQL cannot turn them into an anti-join, so each candidate costs two unique-index
      probes whatever the (often stale, on a fresh campaign) statistics say. With NOT EXISTS a
      planner that believed the tables empty chose to rescan all of an annotator's rows per
      candidate. `returned_at IS NULL` matches the unique index's predicate: a row an admin gave
      back does not count.
    """
    not_seen = (
        f"NOT COALESCE((SELECT 1 = 1 FROM {_ASSIGNMENT} a WHERE a.item_id = i.id AND a.annotator_id = %s "
        "AND a.returned_at IS NULL LIMIT 1), "
        f"1 = 0) AND NOT COALESCE((SELECT 1 = 1 FROM {_ANNOTATION} n WHERE n.item_id = i.id AND n.annotator_id = %s "
        "AND n.source = 'human' LIMIT 1), 1 = 0)"
    )
    if gold:
        where, order = "i.campaign_id = %s AND i.gold_label IS NOT NULL", "i.queue_rank"
        params = [campaign.pk]
    else:
        if fresh:  # untouched items only: an equality, so the index is walked in queue_rank order
            bound, bound_params = "i.assigned_count = 0", []
        elif reopened:
            bound = "i.assigned_count >= %s AND i.assigned_count < %s"
            bound_params = [campaign.overlap, campaign.overlap_max or campaign.overlap]
        else:
            bound, bound_params = "i.assigned_count < %s", [campaign.overlap]
        where = (
            f"i.campaign_id = %s AND i.route IN ('{Item.Route.HUMAN}', '{Item.Route.BOTH}') "
            f"AND i.gold_label IS NULL AND {bound} AND i.assigned_count < {target_sql(campaign)}"
        )
        order = "i.assigned_count DESC, i.queue_rank"
        params = [campaign.pk, *bound_params]
    if parts:
        return where, params, not_seen, [annotator.pk, annotator.pk], order
    sql = f"SELECT {columns} FROM {_ITEM} i WHERE {where} AND {not_seen} ORDER BY {order}"
    return sql, [*params, annotator.pk, annotator.pk]


# The first rows of the queue looked at for an item in progress (see `_work_walks`).
QUEUE_WINDOW = 64


def _work_walks(*, annotator, campaign: Campaign, columns: str):
    """The work-item lookups `_lease_in_turn` tries in turn, each `(sql, params)` answering at most one row.

    The queue puts the fullest items first, and the items this annotator labelled and that still wait for
    others' labels are among them: one walk of the whole queue passes every one of those before it finds a
    fresh item, a cost that grows with the annotator's own labels (1.6 µs a label on SQLite: 4 ms per `next`
    after 2,500 labels alone on a campaign). So: (1) the first QUEUE_WINDOW rows of the queue, the first one
    this annotator has not seen (exactly the full walk's answer when there is one); (2) else the untouched
    items (`assigned_count` 0) in queue order, an index range where only the annotator's own skips and
    expired leases are passed over; (3) else the full walk, so that "nothing" is only ever said by it.
    An unseen item in progress beyond the window may wait until (2) runs dry, or until another annotator,
    whose window it is in, takes it.
    """
    where, where_params, not_seen, seen_params, order = _candidates_sql(
        annotator=annotator, campaign=campaign, gold=False, columns=columns, parts=True
    )
    # The window is walked on the queue's index alone; only the row chosen is read in full.
    yield (
        f"SELECT {columns} FROM {_ITEM} i WHERE i.id = (SELECT w.q_id FROM (SELECT i.id AS q_id, {not_seen} AS q_free, "
        f"i.assigned_count AS q_count, i.queue_rank AS q_rank FROM {_ITEM} i WHERE {where} ORDER BY {order} "
        f"LIMIT {QUEUE_WINDOW}) w WHERE w.q_free ORDER BY w.q_count DESC, w.q_rank LIMIT 1)",
        [*seen_params, *where_params],
    )
    for fresh in (True, False):
        pick, params = _candidates_sql(annotator=annotator, campaign=campaign, gold=False, columns=columns, fresh=fresh)
        yield f"{pick} LIMIT 1", params


def _new_assignment(*, annotator, campaign: Campaign, purpose: str, now: datetime) -> Assignment:
    return Assignment(
        campaign=campaign,
        annotator=annotator,
        state=Assignment.State.LEASED,
        purpose=purpose,
        leased_at=now,
        expires_at=now + timedelta(seconds=campaign.lease_seconds),
        position_swapped=(random.random() < 0.5) if campaign.has_pairwise else None,
    )


def _lease_skip_locked(
    *, annotator, campaign: Campaign, purpose: str, now: datetime, reopened: bool = False
) -> Assignment | None | object:
    """PostgreSQL: lock the first free candidate, take its overlap slot and record the lease, in one statement.

    The candidate is locked with SKIP LOCKED, so concurrent annotators never wait on each other's
    rows, and the lock is held for that one round trip. SKIP LOCKED alone could answer "nothing"
    while other transactions are about to release rows they only looked at, so when it finds
    nothing but candidates exist, it retries briefly, then reports BUSY.
    """
    gold = purpose != Assignment.Purpose.WORK
    pick, pick_params = _candidates_sql(
        annotator=annotator, campaign=campaign, gold=gold, columns="i.id", reopened=reopened
    )
    counted = (
        "SELECT id FROM pick"  # gold items are shown to everyone and never count against the overlap
        if gold
        else f"UPDATE {_ITEM} SET assigned_count = assigned_count + 1 WHERE id IN (SELECT id FROM pick) RETURNING id"
    )
    statement = (
        f"WITH pick AS ({pick} LIMIT 1 FOR UPDATE OF i SKIP LOCKED), counted AS ({counted}), "
        f"lease AS (INSERT INTO {_ASSIGNMENT} (campaign_id, item_id, annotator_id, state, purpose, position_swapped, "
        "leased_at, expires_at, active_seconds, skip_reason) SELECT %s, id, %s, %s, %s, %s, %s, %s, 0, '' FROM counted "
        "RETURNING id AS lease_id, item_id) "
        f"SELECT lease.lease_id, {', '.join('i.' + c for c in _DISPLAY_COLUMNS)} FROM lease JOIN {_ITEM} i "
        "ON i.id = lease.item_id"
    )
    for attempt in range(5):
        assignment = _new_assignment(annotator=annotator, campaign=campaign, purpose=purpose, now=now)
        params = [
            *pick_params,
            campaign.pk,
            annotator.pk,
            assignment.state,
            assignment.purpose,
            assignment.position_swapped,
            assignment.leased_at,
            assignment.expires_at,
        ]
        try:
            with transaction.atomic():
                rows = instances_from_sql(Item, statement, params)
        except IntegrityError:
            # The same annotator's parallel request took this item a moment ago: look again.
            rows = []
        if rows:
            assignment.item, assignment.pk = rows[0], rows[0].lease_id
            assignment._state.adding, assignment._state.db = False, rows[0]._state.db
            return assignment
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT EXISTS ({pick})", pick_params)
            if not cursor.fetchone()[0]:
                return None
        time.sleep(0.005 * (attempt + 1))
    return BUSY


def _lease_in_turn(
    *, annotator, campaign: Campaign, purpose: str, now: datetime, reopened: bool = False
) -> Assignment | None:
    """Databases without SKIP LOCKED (SQLite): writers take turns, so a plain read will do."""
    gold = purpose != Assignment.Purpose.WORK
    columns = ", ".join("i." + c for c in _DISPLAY_COLUMNS)
    if gold or reopened:
        walks = [
            (f"{pick} LIMIT 1", params)
            for pick, params in [
                _candidates_sql(annotator=annotator, campaign=campaign, gold=gold, columns=columns, reopened=reopened)
            ]
        ]
    else:
        walks = _work_walks(annotator=annotator, campaign=campaign, columns=columns)
    with transaction.atomic():
        item = None
        for sql, params in walks:
            found = instances_from_sql(Item, sql, params)
            if found:
                item = found[0]
                break
        if item is None:
            return None
        if not gold:
            with connection.cursor() as cursor:  # raw: the ORM's update costs more than the statement
                cursor.execute(f"UPDATE {_ITEM} SET assigned_count = assigned_count + 1 WHERE id = %s", [item.pk])
        assignment = _new_assignment(annotator=annotator, campaign=campaign, purpose=purpose, now=now)
        assignment.item = item
        instance_insert(assignment)
        return assignment


def _why_no_work(*, annotator, campaign: Campaign, now: datetime) -> NoWork:
    """Nothing leasable: either everything is done for this annotator, or others hold the rest."""
    # A live lease of someone else on an item short of its target that this annotator has not seen:
    # if it runs out, the item comes to them.
    held = instances_from_sql(
        Assignment,
        f"SELECT a.* FROM {_ASSIGNMENT} a JOIN {_ITEM} i ON i.id = a.item_id "
        "WHERE a.campaign_id = %s AND a.state = %s AND a.expires_at > %s AND a.annotator_id <> %s "
        f"AND i.gold_label IS NULL AND i.human_label_count < {target_sql(campaign)} "
        f"AND NOT EXISTS (SELECT 1 FROM {_ASSIGNMENT} m WHERE m.item_id = a.item_id "
        "AND m.annotator_id = %s AND m.returned_at IS NULL) "
        "ORDER BY a.expires_at LIMIT 1",
        [campaign.pk, Assignment.State.LEASED, now, annotator.pk, annotator.pk],
    )
    if held:
        held = held[0]
        wait = max(1, int((held.expires_at - now).total_seconds()) + 1)
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


def leases_release(*, annotator, campaign: Campaign | None = None, now: datetime | None = None) -> int:
    """End the annotator's live leases (in every campaign, or in one) and return their overlap slots.

    For an account deactivated or removed from a pool: the items go to others at once instead of
    waiting for the leases to run out. Returns how many leases ended. A submit on such a lease is
    refused afterwards while the annotator is out of the pool (`_locked_assignment`).
    """
    now = now or timezone.now()
    with transaction.atomic():
        queryset = Assignment.objects.filter(annotator=annotator, state=Assignment.State.LEASED)
        if campaign is not None:
            queryset = queryset.filter(campaign=campaign)
        rows = list(queryset.select_for_update(of=("self",)).values_list("id", "item_id", "item__gold_label"))
        if not rows:
            return 0
        Assignment.objects.filter(id__in=[r[0] for r in rows]).update(state=Assignment.State.EXPIRED, finished_at=now)
        _release_slots([item_id for _, item_id, gold in rows if gold is None])
        return len(rows)


# --- the annotator's actions on a lease ------------------------------------------------------


def _locked_assignment(*, assignment_id: int, annotator) -> Assignment:
    """The annotator's own assignment, row-locked, with its campaign (raw SQL: it is on every submit).

    Refused (403) when the annotator is no longer active or no longer in the campaign's pool: the
    pool test rides along in the campaign's query, so it costs no extra round trip.
    """
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    found = instances_from_sql(
        Assignment,
        f"SELECT * FROM {_ASSIGNMENT} WHERE id = %s AND annotator_id = %s{lock}",
        [assignment_id, annotator.pk],
    )
    if not found:
        # Someone else's lease looks exactly like a missing one: nothing to learn by probing.
        raise AssignmentError("no such assignment of yours", "not_found", status=404)
    assignment = found[0]
    user_table = annotator._meta.db_table
    (campaign,) = instances_from_sql(
        Campaign,
        f"SELECT c.*, ({_pool_condition()} AND EXISTS (SELECT 1 FROM {user_table} u "
        f"WHERE u.id = %(user)s AND u.is_active = %(active)s)) AS may_label "
        f"FROM {Campaign._meta.db_table} c WHERE c.id = %(campaign)s",
        {"campaign": assignment.campaign_id, "user": annotator.pk, "active": True},
    )
    if not campaign.may_label:
        raise _not_in_pool("this item was taken back; your answer was not stored.")
    assignment.campaign = campaign
    return assignment


def _not_in_pool(consequence: str) -> AssignmentError:
    """403: the lease or label is still the annotator's, but the right to work on the campaign is gone."""
    return AssignmentError(
        f"You are no longer in this campaign's annotator pool, so {consequence}", "not_in_pool", status=403
    )


def _is_gold(item_id: int) -> bool:
    return Item.objects.filter(pk=item_id, gold_label__isnull=False).exists()


def _retake_slot(assignment: Assignment, now: datetime) -> None:
    """A lease that expired and was reclaimed can come back only if the item still has room."""
    if assignment.returned_at is not None:
        # An admin gave the item back; the annotator gets it again as a new lease, not on this one.
        raise AssignmentError(
            "Your lease on this item expired; the item comes back to you later as a new one. Your answer was not "
            "stored.",
            "lease_lost",
            status=409,
        )
    item = Item.objects.select_for_update().get(pk=assignment.item_id)
    if item.gold_label is None:
        if item.assigned_count >= item_target(item, assignment.campaign):
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
        annotation = Annotation(
            item_id=assignment.item_id,
            campaign=campaign,
            source=Annotation.Source.HUMAN,
            annotator=annotator,
            assignment=assignment,
            label=item_label,
            justification=justification.strip(),
            rater_confidence=rater_confidence,
            seconds=assignment.active_seconds or None,
            position_swapped=assignment.position_swapped,
            too_fast=campaign.min_seconds is not None and (assignment.active_seconds or 0) < campaign.min_seconds,
        )
        instance_insert(annotation)
        assignment.state = Assignment.State.SUBMITTED
        assignment.finished_at = now
        # Raw, as the lease's own statements: on every submit the ORM's update machinery costs more than the SQL.
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {_ASSIGNMENT} SET state = %s, finished_at = %s, active_seconds = %s WHERE id = %s",
                [
                    assignment.state,
                    connection.ops.adapt_datetimefield_value(now),
                    assignment.active_seconds,
                    assignment.pk,
                ],
            )
            cursor.execute(
                f"UPDATE {_ITEM} SET human_label_count = human_label_count + 1 WHERE id = %s", [assignment.item_id]
            )
        # Quality control in the same transaction: the gate's counters (gold and too-fast labels), then
        # dynamic overlap on a work item (another label asked for, or the item marked contested).
        gate.after_label(annotation=annotation, assignment=assignment, campaign=campaign, now=now)
        if assignment.purpose == Assignment.Purpose.WORK:
            overlap.after_label(item_id=assignment.item_id, campaign=campaign)
        transaction.on_commit(lambda: _stats_after_labels(campaign.pk))
        return annotation, True


def _stats_after_labels(campaign_id: int) -> None:
    from annotate.services.stats import stats_request

    stats_request(campaign_id=campaign_id)


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
        if assignment.state == Assignment.State.LEASED and not _is_gold(assignment.item_id):
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
        if not (annotator.is_active and in_campaign_pool(user=annotator, campaign=campaign)):
            raise _not_in_pool("your labels here can no longer change; nothing was stored.")
        if campaign.state not in WORKABLE_STATES:
            raise AssignmentError(
                f"campaign {campaign.slug!r} is {campaign.state}; labels can no longer change", "closed", status=409
            )
        item_label = _validated(campaign, annotation.position_swapped, label, justification, rater_confidence)
        purpose = annotation.assignment.purpose if annotation.assignment else Assignment.Purpose.WORK
        if purpose == Assignment.Purpose.QUALIFICATION:
            # The round showed the expected answer after it: changing the answer now would rewrite the exam.
            raise AssignmentError("answers in the qualification round are final", "qualification_final", status=409)
        if Item.objects.filter(pk=annotation.item_id).exclude(review_state=Item.ReviewState.NONE).exists():
            raise AssignmentError(
                "this item went to the campaign's reviewers; its labels can no longer change", "in_review", status=409
            )
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
        if purpose == Assignment.Purpose.WORK:
            # A changed label can start (or settle) a dispute, as a new one would.
            overlap.after_label(item_id=annotation.item_id, campaign=campaign)
        else:
            gate.rescore_gold_label(annotation=annotation, campaign=campaign, now=timezone.now())
        transaction.on_commit(lambda: _stats_after_labels(campaign.pk))
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


LEFT_COUNT_CAP = 500  # "500+ left": counting further would cost every submit a longer walk of the queue


def items_left_for(*, annotator, campaign: Campaign, now: datetime | None = None) -> tuple[int, bool]:
    """How many items this annotator may still label here: their live leases plus the queue's
    candidates for them, counted up to `LEFT_COUNT_CAP`; returns (count, capped).

    Cheap enough for every submit: the candidate walk stops at the cap. Items others hold now are
    not counted (they may come back), nor gold checks, queued or held: counting a held check would make
    the count stand still when a check is prefetched, telling the annotator the next item is one. A
    per-person limit caps the answer too. Items dynamic overlap reopened are counted only when the
    fresh queue is below the cap: their range is mostly finished items (see `_candidates_sql`).
    """
    now = now or timezone.now()
    pick, params = _candidates_sql(annotator=annotator, campaign=campaign, gold=False, columns="1")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT COUNT(*) FROM ({pick} LIMIT {LEFT_COUNT_CAP}) q), "
            f"(SELECT COUNT(*) FROM {_ASSIGNMENT} WHERE campaign_id = %s AND annotator_id = %s AND state = %s "
            "AND purpose = %s AND expires_at > %s)",
            [*params, campaign.pk, annotator.pk, Assignment.State.LEASED, Assignment.Purpose.WORK, now],
        )
        queued, held = cursor.fetchone()
        if campaign.overlap_max is not None and queued < LEFT_COUNT_CAP:
            pick, params = _candidates_sql(
                annotator=annotator, campaign=campaign, gold=False, columns="1", reopened=True
            )
            cursor.execute(f"SELECT COUNT(*) FROM ({pick} LIMIT {LEFT_COUNT_CAP - queued}) q", params)
            queued += cursor.fetchone()[0]
    left, capped = queued + held, queued >= LEFT_COUNT_CAP
    limits = [campaign.label_limit, campaign.daily_label_limit]
    if any(limit is not None for limit in limits):
        room = _room_under_limits(annotator=annotator, campaign=campaign, now=now)
        if room <= left:
            left, capped = room, False
    return left, capped


def _room_under_limits(*, annotator, campaign: Campaign, now: datetime) -> int:
    total, today, _day = _my_label_counts(annotator=annotator, campaign=campaign, now=now)
    room = []
    if campaign.label_limit is not None:
        room.append(campaign.label_limit - total)
    if campaign.daily_label_limit is not None:
        room.append(campaign.daily_label_limit - today)
    return max(0, min(room))


def my_progress(*, annotator, campaign: Campaign, now: datetime | None = None) -> dict:
    """The annotator's own progress: labels given, items left for them, and the fraction between.

    What the annotate page's bar shows, refreshed with every submit.
    """
    mine = my_label_count(annotator=annotator, campaign=campaign)
    left, capped = items_left_for(annotator=annotator, campaign=campaign, now=now)
    return {
        "mine": mine,
        "left": left,
        "left_capped": capped,
        "my_total": mine + left,
        "my_fraction": mine / (mine + left) if mine + left else 1.0,
        "label_limit": campaign.label_limit,
        "daily_label_limit": campaign.daily_label_limit,
    }
