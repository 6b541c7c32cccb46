"""A routing plan's writes: compare-and-set moves of the items whose destination changed, their
RoutingDecision rows (with the features that pushed them), and an admin's override — all under the
campaign's lock, so a pass and an override never interleave."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping

import orjson
from django.db import connection, transaction
from django.utils import timezone

from annotate.models import Campaign, Item, RoutingDecision
from routing.gold import llm_only_gate
from routing.plan import Decision, PlanItem
from routing.reads import chunks

OVERRIDE = "override"


def _move(campaign: Campaign, item_ids: list[int], destination: str, *, was: str, since=None) -> list[int]:
    """Move these items from route `was` to `destination`; returns those moved. Compare-and-set: an item whose
    route changed since the pass read it stays. One leaving the human side moves only while no human has
    labelled or leased it (a lease taken since wins), and none moves over an admin's override made since
    `since`."""
    table, decisions = Item._meta.db_table, RoutingDecision._meta.db_table
    guard = ""
    if destination == Item.Route.LLM:
        guard += " AND NOT (route IN ('human', 'both') AND (human_label_count > 0 OR assigned_count > 0))"
    extra: list = []
    if since is not None:
        guard += (
            f" AND NOT EXISTS (SELECT 1 FROM {decisions} d WHERE d.item_id = {table}.id"
            " AND d.overridden_by_id IS NOT NULL AND d.created_at >= %s)"
        )
        extra.append(since)
    moved: list[int] = []
    with connection.cursor() as cursor:
        for chunk in chunks(item_ids):
            marks = ", ".join(["%s"] * len(chunk))
            cursor.execute(
                f"UPDATE {table} SET route = %s WHERE campaign_id = %s AND route = %s AND id IN ({marks}){guard} "
                "RETURNING id",
                [destination, campaign.pk, was, *chunk, *extra],
            )
            moved += [row[0] for row in cursor.fetchall()]
    return moved


def decisions_apply(
    *,
    campaign: Campaign,
    items: list[PlanItem],
    decisions: Mapping[int, Decision],
    since,
    tick: Callable[[], None] | None = None,
) -> int:
    """Write what changed, only where the item is as the pass read it (`_move`) and never over an override an
    admin made since the pass began (`since`; overrides take the same lock); returns the decisions written."""
    by_key = {i.key: i for i in items}
    moves: dict[tuple[str, str], list[int]] = defaultdict(list)
    for key, decision in decisions.items():
        if by_key[key].route != decision.destination:
            moves[(by_key[key].route, decision.destination)].append(key)
    written: list[tuple[int, str, Decision]] = []
    with transaction.atomic():
        Campaign.objects.select_for_update().filter(pk=campaign.pk).first()  # one writer at a time per campaign
        for (was, destination), moved in moves.items():
            written += [(item_id, destination, decisions[item_id]) for item_id in _move(
                campaign, moved, destination, was=was, since=since
            )]  # fmt: skip
            if tick:
                tick()
        _decisions_insert(campaign, written, now=timezone.now())
    return len(written)


def _decisions_insert(campaign: Campaign, written: list[tuple[int, str, Decision]], *, now) -> None:
    """The decisions' rows. On PostgreSQL by COPY: a first pass writes one per item, and bulk_create's
    per-value adaptation (and its JSON column) cost more than the rest of the pass."""
    if connection.vendor != "postgresql":
        RoutingDecision.objects.bulk_create(
            [
                RoutingDecision(
                    campaign=campaign, item_id=item_id, destination=destination, policy=d.policy, score=d.score,
                    reason=d.reason, features=d.features, created_at=now,
                )
                for item_id, destination, d in written
            ],
            batch_size=5000,
        )  # fmt: skip
        return
    columns = "campaign_id, item_id, destination, policy, score, reason, features, created_at"
    with connection.cursor() as cursor:
        with cursor.copy(f"COPY {RoutingDecision._meta.db_table} ({columns}) FROM STDIN") as copy:
            for item_id, destination, d in written:
                features = None if d.features is None else orjson.dumps(d.features).decode()
                copy.write_row((campaign.pk, item_id, destination, d.policy, d.score, d.reason, features, now))


def route_override(*, item: Item, destination: str, user, reason: str = "") -> RoutingDecision:
    """An admin's decision for one item: it holds until another override (later passes leave it alone).

    Labels already given stay; an item taken from humans gets no new leases.
    """
    if destination not in RoutingDecision.Destination.values:
        raise ValueError(f"destination must be one of {', '.join(RoutingDecision.Destination.values)}")
    if item.is_gold:
        raise ValueError("gold (attention-check) items are not routed: they have their own queue")
    if destination == RoutingDecision.Destination.LLM:
        allowed, why = llm_only_gate(campaign=item.campaign)
        if not allowed:
            raise ValueError(f"item {item.external_id} cannot go to the judges alone: {why}")
    with transaction.atomic():
        # The lock a pass writes under: an override lands before a pass's writes (which then leave it) or
        # after them.
        Campaign.objects.select_for_update().filter(pk=item.campaign_id).first()
        Item.objects.filter(pk=item.pk).update(route=destination)
        item.route = destination
        return RoutingDecision.objects.create(
            campaign_id=item.campaign_id,
            item=item,
            destination=destination,
            policy=OVERRIDE,
            reason=reason.strip() or f"set by {user.get_username()}",
            overridden_by=user,
        )
