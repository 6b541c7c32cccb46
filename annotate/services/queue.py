"""Stranded items: human items short of their target that nobody left in the pool may label, and
the two ways an admin frees them (give them back to who let them go, or lower their target).

An item routed to humans (route human/both, not gold) is *stranded* when it has fewer human labels
than its target (`targets.item_target`: `Item.label_target` if lowered, else the campaign's
overlap, plus dynamic overlap's extra labels), no live lease, and
no eligible annotator who has not been assigned it: eligible means an active account in the
campaign's pool (`Campaign.annotators` and the members of `Campaign.pools`; with neither, every
active account). Assignments an admin gave back (`returned_at` set) do not count as assigned.
Such an item can never be finished by the queue: everyone who could label it has already seen it
(skipped it, let the lease expire, or labelled it).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from annotate.models import Annotation, AnnotatorPool, Assignment, Campaign, Item
from annotate.selectors import prompt_preview
from annotate.services.assignments import leases_expire
from annotate.services.outcomes import AssignmentError
from annotate.services.targets import item_target, target_sql

_ITEM, _ASSIGNMENT, _ANNOTATION = (m._meta.db_table for m in (Item, Assignment, Annotation))


def _eligible_sql() -> str:
    """Active accounts in the campaign's pool, as SQL over a `%(campaign)s` parameter.

    `selectors._pool_condition` turned around: there the person is fixed and the campaign varies.
    """
    users = get_user_model()._meta.db_table
    direct = Campaign.annotators.through._meta.db_table
    pools = Campaign.pools.through._meta.db_table
    members = AnnotatorPool.members.through._meta.db_table
    return (
        f"SELECT u.id FROM {users} u WHERE u.is_active = %(active)s AND ("
        f"EXISTS (SELECT 1 FROM {direct} p WHERE p.campaign_id = %(campaign)s AND p.user_id = u.id) "
        f"OR EXISTS (SELECT 1 FROM {pools} cp JOIN {members} m ON m.annotatorpool_id = cp.annotatorpool_id "
        "WHERE cp.campaign_id = %(campaign)s AND m.user_id = u.id) "
        f"OR (NOT EXISTS (SELECT 1 FROM {direct} p WHERE p.campaign_id = %(campaign)s) "
        f"AND NOT EXISTS (SELECT 1 FROM {pools} cp WHERE cp.campaign_id = %(campaign)s)))"
    )


def _stranded_sql(*, campaign: Campaign, now: datetime, item_ids: list[int] | None, columns: str) -> tuple[str, dict]:
    """The stranded rule as one statement over item alias `i`.

    Every under-target item is tested, but an item that is not stranded usually fails at once: the
    first eligible person who has not seen it ends the inner NOT EXISTS. Each test is a probe of a
    unique index: `returned_at IS NULL` and `source = 'human'` repeat those indexes' predicates (a
    live lease is never a returned row, so that condition changes nothing but the plan).
    """
    target = target_sql(campaign)
    sql = (
        f"SELECT {columns} FROM {_ITEM} i WHERE i.campaign_id = %(campaign)s "
        f"AND i.route IN ('{Item.Route.HUMAN}', '{Item.Route.BOTH}') AND i.gold_label IS NULL "
        f"AND i.human_label_count < {target} "
        f"AND NOT EXISTS (SELECT 1 FROM {_ASSIGNMENT} a WHERE a.item_id = i.id AND a.returned_at IS NULL "
        "AND a.state = %(leased)s AND a.expires_at > %(now)s) "
        f"AND NOT EXISTS (SELECT 1 FROM ({_eligible_sql()}) e WHERE "
        f"NOT EXISTS (SELECT 1 FROM {_ASSIGNMENT} a WHERE a.item_id = i.id AND a.annotator_id = e.id "
        "AND a.returned_at IS NULL) "
        f"AND NOT EXISTS (SELECT 1 FROM {_ANNOTATION} n WHERE n.item_id = i.id AND n.annotator_id = e.id "
        "AND n.source = 'human'))"
    )
    params = {
        "campaign": campaign.pk,
        "leased": Assignment.State.LEASED,
        "now": now,
        "active": True,
    }
    if item_ids is not None:
        ids = [int(pk) for pk in item_ids] or [0]
        sql += f" AND i.id IN ({', '.join(str(pk) for pk in ids)})"
    return sql, params


@contextmanager
def _stranded_cursor():
    """A cursor for the stranded statements. On PostgreSQL without JIT: the planner's estimate for
    the nested anti-join is high enough to trigger JIT compilation, which costs ~300 ms on a
    100,000-item campaign, ten times the query itself."""
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL jit = off")
        yield cursor


@dataclass
class StrandedItem:
    id: int
    external_id: str
    prompt: str
    labels: int
    target: int
    label_target: int | None
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (username, reason)
    expired: list[str] = field(default_factory=list)  # usernames


@dataclass
class StrandedPage:
    items: list[StrandedItem]
    total: int
    eligible: int  # active accounts in the pool: zero explains why every open item is stranded


def stranded_item_ids(
    *, campaign: Campaign, now: datetime | None = None, item_ids: list[int] | None = None
) -> list[int]:
    """Ids of the campaign's stranded items (of `item_ids` only, when given), in id order."""
    sql, params = _stranded_sql(campaign=campaign, now=now or timezone.now(), item_ids=item_ids, columns="i.id")
    with _stranded_cursor() as cursor:
        cursor.execute(sql + " ORDER BY i.id", params)
        return [row[0] for row in cursor.fetchall()]


def stranded_count(*, campaign: Campaign, now: datetime | None = None) -> int:
    sql, params = _stranded_sql(campaign=campaign, now=now or timezone.now(), item_ids=None, columns="1")
    with _stranded_cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM ({sql}) s", params)
        return cursor.fetchone()[0]


def stranded_items(*, campaign: Campaign, now: datetime | None = None, limit: int = 200) -> StrandedPage:
    """The first `limit` stranded items with who let them go, the total, and the pool's size.

    One statement finds the items and counts them all (a window count over the same rows); a
    second reads the skips and expired leases of the rows shown.
    """
    now = now or timezone.now()
    sql, params = _stranded_sql(
        campaign=campaign,
        now=now,
        item_ids=None,
        columns="i.id, i.external_id, i.prompt, i.human_label_count, i.label_target, i.extra_labels, "
        "COUNT(*) OVER () AS total",
    )
    with _stranded_cursor():
        rows = list(Item.objects.raw(f"{sql} ORDER BY i.id LIMIT {int(limit)}", params))
    items = {
        row.pk: StrandedItem(
            id=row.pk,
            external_id=row.external_id,
            prompt=prompt_preview(row.prompt),
            labels=row.human_label_count,
            target=item_target(row, campaign),
            label_target=row.label_target,
        )
        for row in rows
    }
    history = (
        Assignment.objects.filter(
            item_id__in=list(items),
            returned_at__isnull=True,
            state__in=(Assignment.State.SKIPPED, Assignment.State.EXPIRED),
        )
        .order_by("finished_at", "id")
        .values_list("item_id", "state", "skip_reason", "annotator__username")
    )
    for item_id, state, reason, username in history:
        if state == Assignment.State.SKIPPED:
            items[item_id].skipped.append((username, reason))
        else:
            items[item_id].expired.append(username)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM ({_eligible_sql()}) e", {"campaign": campaign.pk, "active": True})
        eligible = cursor.fetchone()[0]
    return StrandedPage(items=list(items.values()), total=rows[0].total if rows else 0, eligible=eligible)


@dataclass(frozen=True)
class StrandedResult:
    """What an action did: items changed, items it could not change (with why), rows given back."""

    changed: int
    unchanged: int = 0
    returned: int = 0
    message: str = ""


def _locked_stranded(*, campaign: Campaign, items: list[int] | str, now: datetime) -> tuple[list[int], int]:
    """Inside the caller's transaction: the chosen items that are (still) stranded, row-locked, and
    how many chosen ones are not (another admin freed them, or they are not this campaign's)."""
    if items == "all":
        chosen = None
    else:
        try:
            chosen = sorted({int(pk) for pk in items})
        except (TypeError, ValueError):
            raise AssignmentError('`items` is a list of item ids or "all".', "invalid_items", field="items") from None
        if not chosen:
            raise AssignmentError("Choose at least one item.", "invalid_items", field="items")
    # Unswept expired leases still hold a slot and look like live work: end them first.
    leases_expire(campaign=campaign, now=now)
    ids = stranded_item_ids(campaign=campaign, now=now, item_ids=chosen)
    if ids and connection.features.has_select_for_update:
        list(Item.objects.select_for_update().filter(pk__in=ids).values_list("pk", flat=True))
        ids = stranded_item_ids(campaign=campaign, now=now, item_ids=ids)  # no lease slipped in meanwhile
    return ids, 0 if chosen is None else len(chosen) - len(ids)


def _not_stranded_note(n: int) -> str:
    if not n:
        return ""
    return (
        f" {n} of the chosen item{'s' * (n != 1)} {'are' if n != 1 else 'is'} not stranded (any more) and stayed as is."
    )


def stranded_give_back(*, campaign: Campaign, items: list[int] | str, now: datetime | None = None) -> StrandedResult:
    """Let those who skipped a stranded item or let its lease expire be given it again.

    Their rows get `returned_at` (skips and expiries stay in the history); the queue then offers
    the item to them again as a new lease. Only people still eligible get it back: giving it to
    someone out of the pool would change nothing. Counters do not move: a skipped or expired row
    holds no slot.
    """
    now = now or timezone.now()
    with transaction.atomic():
        ids, not_stranded = _locked_stranded(campaign=campaign, items=items, now=now)
        rows = []
        if ids:
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT a.id, a.item_id FROM {_ASSIGNMENT} a WHERE a.item_id IN ({', '.join(map(str, ids))}) "
                    "AND a.returned_at IS NULL AND a.state IN (%(skipped)s, %(expired)s) "
                    f"AND a.annotator_id IN ({_eligible_sql()})",
                    {
                        "skipped": Assignment.State.SKIPPED,
                        "expired": Assignment.State.EXPIRED,
                        "campaign": campaign.pk,
                        "active": True,
                    },
                )
                rows = cursor.fetchall()
        count = Assignment.objects.filter(pk__in=[pk for pk, _ in rows]).update(returned_at=now)
        given_items = {item_id for _, item_id in rows}
    nobody = len(ids) - len(given_items)
    message = f"Gave {len(given_items)} item{'s' * (len(given_items) != 1)} back ({count} annotator slot"
    message += f"{'s' * (count != 1)})."
    if nobody:
        message += (
            f" {nobody} had nobody to give back to (no skip or expired lease by anyone still in the pool):"
            " lower their target or add annotators."
        )
    message += _not_stranded_note(not_stranded)
    return StrandedResult(changed=len(given_items), unchanged=nobody + not_stranded, returned=count, message=message)


def stranded_lower_target(
    *, campaign: Campaign, items: list[int] | str, target: int | None = None, now: datetime | None = None
) -> StrandedResult:
    """Accept a stranded item with the labels it has (or `target`, at least its labels): it is done.

    `Item.label_target` is set; the queue, the progress counts and the done/wait answer read it.
    With `target`, every chosen item must already have at most that many labels, or nothing
    changes. Counters do not move: the item's labels and leases are what they were.

    Labels dynamic overlap asked for (`Item.extra_labels`) are dropped too, or the item would stay
    short of its target. Such an item was still disputed (its last check asked for another label),
    and no label will settle it now: it goes to the review queue, contested, as it would at
    `overlap_max`.
    """
    now = now or timezone.now()
    if target is not None:
        if isinstance(target, bool) or not isinstance(target, int) or target < 0:
            raise AssignmentError("The target is a whole number of labels, 0 or more.", "invalid_target", "target")
        if target >= campaign.overlap:
            raise AssignmentError(
                f"The target must be below the campaign's overlap ({campaign.overlap}) to lower it.",
                "invalid_target",
                field="target",
            )
    with transaction.atomic():
        ids, not_stranded = _locked_stranded(campaign=campaign, items=items, now=now)
        if target is None:
            labels_had = Case(
                When(human_label_count__lt=campaign.overlap, then=F("human_label_count")),
                default=Value(campaign.overlap),
            )
            changed = Item.objects.filter(pk__in=ids).update(label_target=labels_had)
        else:
            over = list(
                Item.objects.filter(pk__in=ids, human_label_count__gt=target)
                .order_by("id")
                .values_list("external_id", "human_label_count")[:5]
            )
            if over:
                names = ", ".join(f"{external_id} ({n})" for external_id, n in over)
                raise AssignmentError(
                    f"The target {target} is below the labels some items already have: {names}. Nothing changed.",
                    "invalid_target",
                    field="target",
                )
            changed = Item.objects.filter(pk__in=ids).update(label_target=target)
        disputed = Item.objects.filter(pk__in=ids, extra_labels__gt=0)
        contested = disputed.filter(review_state=Item.ReviewState.NONE).update(review_state=Item.ReviewState.CONTESTED)
        disputed.update(extra_labels=0)
    to = "the labels each has" if target is None else f"{target} label{'s' * (target != 1)}"
    message = f"Lowered the target of {changed} item{'s' * (changed != 1)} to {to}." + _not_stranded_note(not_stranded)
    if contested:
        message += (
            f" {contested} of them {'were' if contested != 1 else 'was'} still disputed and went to the review queue."
        )
    return StrandedResult(changed=changed, unchanged=not_stranded, message=message)
