"""The routing module's public API: what the annotate app calls. Everything else is internal."""

from __future__ import annotations

from datetime import datetime

from django.db import connection
from django.utils import timezone

from annotate.models import Campaign, Item, Job, RoutingDecision
from routing.embeddings import embeddings_available  # noqa: F401  (public: can a campaign use embeddings?)

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


def items_imported(*, campaign: Campaign) -> None:
    """After an import: a routing pass when the policy routes more than statically (or calibrates)."""
    from routing.router import route_request

    if campaign.routing_policy not in STATIC_DESTINATIONS or campaign.judges.filter(active=True).exists():
        route_request(campaign=campaign)


def routing_changed(*, campaign: Campaign) -> None:
    """After an admin changed the policy, budget or calibration slice: route again."""
    from routing.router import route_request

    route_request(campaign=campaign)


def routing_forecast(*, campaign: Campaign) -> dict:
    """Expected agreement with human consensus at the campaign's budget (routing/forecast.py)."""
    from routing.forecast import routing_forecast as forecast

    return forecast(campaign=campaign)


def labels_changed(*, campaign: Campaign) -> None:
    """After new human labels: a learned policy retrains and reroutes, at most once per
    TANDEM_ROUTE_RELEARN_SECONDS (a pass reads every item; labels arrive every second). Labels that arrive
    within the window are learned from by a pass queued for its end."""
    from django.conf import settings

    from routing.router import last_pass, route_request

    if campaign.routing_policy != Campaign.RoutingPolicy.LEARNED:
        return
    previous = last_pass(campaign)
    since = (timezone.now() - previous.created_at).total_seconds() if previous is not None else None
    wait = 0.0 if since is None else max(0.0, settings.TANDEM_ROUTE_RELEARN_SECONDS - since)
    route_request(campaign=campaign, start_judges=False, countdown=wait)


def routing_status(*, campaign: Campaign) -> dict:
    """The campaign's routing at a glance: settings, items per destination, the last pass, the forecast."""
    from annotate.models import StatsSnapshot
    from routing.router import _summary_counts, last_pass

    snapshot = StatsSnapshot.objects.filter(campaign=campaign).first()
    previous = last_pass(campaign)
    return {
        "policy": campaign.routing_policy,
        "human_budget": campaign.human_budget,
        "calibration_fraction": campaign.calibration_fraction,
        "routing_params": campaign.routing_params,
        "destinations": _summary_counts(campaign),
        "last_pass": previous,
        "forecast": (snapshot.payload.get("routing") if snapshot else None),
    }


def last_pass(campaign: Campaign) -> Job | None:
    """The campaign's latest routing pass (a Job), if any."""
    from routing.router import last_pass as latest

    return latest(campaign)


def route_check(*, campaign: Campaign) -> None:
    """ValueError when the campaign's policy cannot route it as configured (no budget, both kinds)."""
    from routing.router import route_check as check

    check(campaign)


def route_start(*, campaign: Campaign, created_by=None) -> Job:
    """Queue a routing pass; ValueError when the policy cannot run as configured."""
    from routing.router import route_start as start

    return start(campaign=campaign, created_by=created_by)


def route_override(*, item: Item, destination: str, user, reason: str = "") -> RoutingDecision:
    """An admin's decision for one item, kept by later passes (ValueError on a bad destination)."""
    from routing.router import route_override as override

    return override(item=item, destination=destination, user=user, reason=reason)


def item_decisions(*, item: Item, limit: int = 50) -> list[RoutingDecision]:
    """The item's decisions, newest first."""
    return list(RoutingDecision.objects.filter(item=item).select_related("overridden_by")[:limit])


def route_now(*, campaign: Campaign) -> dict:
    """A routing pass in this process, starting no judge run (the demo: its judge labels are imported)."""
    from routing.router import route_campaign

    return route_campaign(campaign=campaign, start_judges=False)
