"""The routing module's public API: what the annotate app calls. Everything else is internal."""

from __future__ import annotations

from django.db import connection
from django.utils import timezone

from annotate.models import Campaign, Item, RoutingDecision

# Policies that need no judge signal decide as soon as an item arrives.
STATIC_DESTINATIONS = {
    Campaign.RoutingPolicy.ALL_HUMAN: (Item.Route.HUMAN, "campaign policy all_human: every item goes to humans"),
    Campaign.RoutingPolicy.ALL_LLM: (Item.Route.LLM, "campaign policy all_llm: every item goes to the judges"),
}


def route_new_items(*, campaign: Campaign) -> int:
    """Route the campaign's unrouted items when its policy decides without judges; returns how many.

    Set-based (one UPDATE and one INSERT … SELECT) so a 100,000-row import stays fast, and run in
    the caller's transaction so items never exist without their decision.
    """
    static = STATIC_DESTINATIONS.get(campaign.routing_policy)
    if static is None:
        return 0
    destination, reason = static
    item_table, decision_table = Item._meta.db_table, RoutingDecision._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {decision_table} (campaign_id, item_id, destination, policy, score, reason, created_at) "
            f"SELECT campaign_id, id, %s, %s, NULL, %s, %s FROM {item_table} WHERE campaign_id = %s AND route = %s",
            [destination, campaign.routing_policy, reason, timezone.now(), campaign.pk, Item.Route.UNROUTED],
        )
        cursor.execute(
            f"UPDATE {item_table} SET route = %s WHERE campaign_id = %s AND route = %s",
            [destination, campaign.pk, Item.Route.UNROUTED],
        )
        return cursor.rowcount
