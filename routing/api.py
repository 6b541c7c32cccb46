"""The routing module's public API: what the annotate app calls. Everything else is internal."""

from __future__ import annotations

from datetime import datetime

from django.db import connection
from django.utils import timezone

from annotate.models import Campaign, Item, RoutingDecision

# Policies that need no judge signal decide as soon as an item arrives.
STATIC_DESTINATIONS = {
    Campaign.RoutingPolicy.ALL_HUMAN: (Item.Route.HUMAN, "campaign policy all_human: every item goes to humans"),
    Campaign.RoutingPolicy.ALL_LLM: (Item.Route.LLM, "campaign policy all_llm: every item goes to the judges"),
}


def initial_route(*, campaign: Campaign) -> str:
    """The route a newly imported item gets: decided at once for static policies, else unrouted."""
    static = STATIC_DESTINATIONS.get(campaign.routing_policy)
    return static[0] if static else Item.Route.UNROUTED


def route_new_items(*, campaign: Campaign, since: datetime) -> int:
    """Record decisions for the items imported since `since` (routed as they were inserted) and
    route items an earlier policy left unrouted; returns how many decisions were written.

    Set-based statements whose plans cannot go quadratic: no anti-join against the table being
    written (which, on a table without statistics yet, made a 100,000-row import take minutes).
    Runs in the caller's transaction, so no item exists without its decision.
    """
    static = STATIC_DESTINATIONS.get(campaign.routing_policy)
    if static is None:
        return 0
    destination, reason = static
    item_table, decision_table = Item._meta.db_table, RoutingDecision._meta.db_table
    insert = (
        f"INSERT INTO {decision_table} (campaign_id, item_id, destination, policy, score, reason, created_at) "
        f"SELECT campaign_id, id, %s, %s, NULL, %s, %s FROM {item_table} "
    )
    values = [destination, campaign.routing_policy, reason, timezone.now()]
    with connection.cursor() as cursor:
        cursor.execute(insert + "WHERE campaign_id = %s AND route = %s", [*values, campaign.pk, Item.Route.UNROUTED])
        written = cursor.rowcount
        cursor.execute(
            f"UPDATE {item_table} SET route = %s WHERE campaign_id = %s AND route = %s",
            [destination, campaign.pk, Item.Route.UNROUTED],
        )
        cursor.execute(
            insert + "WHERE campaign_id = %s AND route = %s AND created_at >= %s",
            [*values, campaign.pk, destination, since],
        )
        return written + cursor.rowcount
