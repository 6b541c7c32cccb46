"""The routing module's public API: what the annotate app calls. Everything else is internal."""

from __future__ import annotations

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from annotate.models import Campaign, Item, RoutingDecision, StatsSnapshot
from routing.embeddings import embeddings_available
from routing.forecast import routing_forecast
from routing.gold import judge_gold_scores, judges_gold, llm_only_gate
from routing.judges.runs import JOB_KIND as JUDGE_RUN_KIND
from routing.judges.runs import SCOPES as JUDGE_RUN_SCOPES
from routing.judges.runs import judge_run_start
from routing.judges.services import judge_create, judge_probe, judge_validate
from routing.router import (
    GOLD_GATE,
    gold_gate_reason,
    last_pass,
    route_check,
    route_counts,
    route_override,
    route_request,
    route_start,
    stale_judgments,
)
from routing.signals import judge_run_finished, verdicts_updated
from routing.tagger.runs import tagger_for

# What else the annotate app (and routing's own pages and API views) may call: whether a campaign can switch
# embeddings on, the forecast the statistics snapshot carries, a pass's summary, checks, passes and overrides,
# which judgments routing reads (`stale_judgments`: the ones it ignores; gold scores count the same judgments),
# the signals annotate's receivers connect to, and judges: create, check, probe, and start a judge run.
__all__ = [
    "JUDGE_RUN_KIND", "JUDGE_RUN_SCOPES", "RULES", "RoutingSettingsError", "embeddings_available", "initial_route",
    "item_decisions", "items_imported", "judge_create", "judge_gold_scores", "judge_probe", "judge_run_finished",
    "judge_run_start", "judge_validate", "judges_gold", "labels_changed", "labels_imported", "last_pass",
    "llm_only_gate", "route_check", "route_new_items", "route_now", "route_override", "route_start",
    "routing_changed", "routing_forecast", "routing_status", "routing_update", "stale_judgments",
    "verdicts_updated",
]  # fmt: skip

# Policies that need no judge signal decide as soon as an item arrives.
STATIC_DESTINATIONS = {
    Campaign.RoutingPolicy.ALL_HUMAN: (Item.Route.HUMAN, "campaign policy all_human: every item goes to humans"),
    Campaign.RoutingPolicy.ALL_LLM: (Item.Route.LLM, "campaign policy all_llm: every item goes to the judges"),
}


def _static_destination(campaign: Campaign) -> tuple[str, str, str] | None:
    """(destination, policy, reason) of a static policy, the gold gate applied; None for other policies."""
    static = STATIC_DESTINATIONS.get(campaign.routing_policy)
    if static is None:
        return None
    destination, reason = static
    if destination == Item.Route.LLM:
        allowed, why = llm_only_gate(campaign=campaign)
        if not allowed:
            return Item.Route.HUMAN, GOLD_GATE, gold_gate_reason(why)
    return destination, campaign.routing_policy, reason


def initial_route(*, campaign: Campaign) -> str:
    """The route a newly imported item gets: decided at once for static policies, else unrouted."""
    static = _static_destination(campaign)
    return static[0] if static else Item.Route.UNROUTED


def route_new_items(*, campaign: Campaign, after_id: int | None) -> int:
    """Record decisions for the items imported with ids above `after_id` (routed as they were inserted;
    None when the import created none) and route items an earlier policy left unrouted; returns how many
    decisions were written.

    Set-based statements whose plans cannot go quadratic: no anti-join against the table being
    written (which, on a table without statistics yet, made a 100,000-row import take minutes), and
    new items found by a range of the primary key, never by a scan whose cost is every campaign's
    items (the table's statistics predate the import). Runs in the caller's transaction, so no item
    exists without its decision.
    """
    static = _static_destination(campaign)
    if static is None:
        return 0
    destination, policy, reason = static
    item_table, decision_table = Item._meta.db_table, RoutingDecision._meta.db_table
    insert = (
        f"INSERT INTO {decision_table} (campaign_id, item_id, destination, policy, score, reason, created_at) "
        f"SELECT campaign_id, id, %s, %s, NULL, %s, %s FROM {item_table} "
    )
    values = [destination, policy, reason, timezone.now()]
    with connection.cursor() as cursor:
        cursor.execute(insert + "WHERE campaign_id = %s AND route = %s", [*values, campaign.pk, Item.Route.UNROUTED])
        written = cursor.rowcount
        cursor.execute(
            f"UPDATE {item_table} SET route = %s WHERE campaign_id = %s AND route = %s",
            [destination, campaign.pk, Item.Route.UNROUTED],
        )
        if after_id is None:
            return written
        cursor.execute(
            insert + "WHERE id > %s AND campaign_id = %s AND route = %s",
            [*values, after_id, campaign.pk, destination],
        )
        return written + cursor.rowcount


class RoutingSettingsError(ValueError):
    """A routing setting that cannot be saved: `field` names it, the message says why."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


PARAMS = ("auto_judge", "embeddings", "tagger", "train_campaigns")
RULES = {
    "human_budget": "a fraction (up to 1) or a whole number of items (more than 1); empty for no limit",
    "calibration_fraction": "a fraction from 0 to 1",
}


def _checked_params(campaign: Campaign, params: dict) -> dict:
    unknown = sorted(set(params) - set(PARAMS))
    if unknown:
        raise RoutingSettingsError("routing_params", f"unknown keys {unknown}; known: {', '.join(PARAMS)}")
    slugs = params.get("train_campaigns", [])
    if not isinstance(slugs, list) or not all(isinstance(slug, str) for slug in slugs):
        raise RoutingSettingsError("routing_params", "train_campaigns: a list of campaign slugs")
    found = dict(Campaign.objects.filter(slug__in=slugs).values_list("slug", "kind"))
    missing = sorted(set(slugs) - set(found))
    if missing:
        raise RoutingSettingsError("routing_params", f"train_campaigns: no campaign {', '.join(missing)}")
    other_kinds = sorted(slug for slug, kind in found.items() if kind != campaign.kind)
    if other_kinds:
        raise RoutingSettingsError(
            "routing_params", f"train_campaigns: {', '.join(other_kinds)} are not {campaign.kind} campaigns"
        )
    for flag in ("auto_judge", "embeddings"):
        if flag in params and not isinstance(params[flag], bool):
            raise RoutingSettingsError("routing_params", f"{flag}: true or false")
    if params.get("embeddings") and not embeddings_available():
        raise RoutingSettingsError(
            "routing_params", "embeddings: the optional model is not installed (pip install 'tandem[embeddings]')"
        )
    if "tagger" in params and params["tagger"] is not None:
        if not isinstance(params["tagger"], dict) or not isinstance(params["tagger"].get("judge"), str):
            raise RoutingSettingsError("routing_params", 'tagger: {"judge": "<judge name>"}, or null for none')
        try:
            tagger_for(campaign=campaign, name=params["tagger"]["judge"])
        except ValueError as exc:
            raise RoutingSettingsError("routing_params", f"tagger: {exc}") from None
    return params


def routing_update(*, campaign: Campaign, **values) -> Campaign:
    """Change the campaign's routing settings (routing_policy, human_budget, calibration_fraction, and
    routing_params merged into the current ones), check that its policy can run with them, save, and ask for
    a routing pass. RoutingSettingsError names the field that is wrong; nothing is saved then."""
    unknown = set(values) - {"routing_policy", "human_budget", "calibration_fraction", "routing_params"}
    if unknown:
        raise RoutingSettingsError(sorted(unknown)[0], "not a routing setting")
    policy = values.get("routing_policy", campaign.routing_policy)
    if policy not in Campaign.RoutingPolicy.values:
        raise RoutingSettingsError("routing_policy", f"choose one of {', '.join(Campaign.RoutingPolicy.values)}")
    budget = values.get("human_budget", campaign.human_budget)
    if budget is not None and (budget < 0 or (budget > 1 and budget != int(budget))):
        raise RoutingSettingsError("human_budget", RULES["human_budget"])
    fraction = values.get("calibration_fraction", campaign.calibration_fraction)
    if fraction is None or not 0 <= fraction <= 1:
        raise RoutingSettingsError("calibration_fraction", RULES["calibration_fraction"])
    params = {**campaign.routing_params, **_checked_params(campaign, values.get("routing_params", {}))}
    proposed = Campaign(pk=campaign.pk, slug=campaign.slug, kind=campaign.kind, routing_policy=policy,
                        human_budget=budget)  # fmt: skip
    try:
        route_check(proposed)
    except ValueError as exc:
        raise RoutingSettingsError("routing_policy", str(exc)) from None
    campaign.routing_policy, campaign.human_budget, campaign.calibration_fraction = policy, budget, fraction
    campaign.routing_params = params
    with transaction.atomic():
        campaign.save(
            update_fields=["routing_policy", "human_budget", "calibration_fraction", "routing_params", "updated_at"]
        )
        routing_changed(campaign=campaign)
    return campaign


def items_imported(*, campaign: Campaign) -> None:
    """After an import: a routing pass when the policy routes more than statically (or calibrates)."""
    if (
        campaign.routing_policy not in STATIC_DESTINATIONS
        or campaign.judges.filter(active=True).exists()
        or campaign.judge_gold_threshold is not None  # new gold items change the judges' gold scores
    ):
        route_request(campaign=campaign)


def labels_imported(*, campaign: Campaign) -> None:
    """After an import of labels: imported judge verdicts are what a judge-first policy routes by."""
    judge_first = campaign.routing_policy in (Campaign.RoutingPolicy.JUDGE_UNCERTAINTY, Campaign.RoutingPolicy.LEARNED)
    # Imported judge labels on gold items change the judges' gold scores, and so the gold gate.
    if judge_first or campaign.judge_gold_threshold is not None:
        route_request(campaign=campaign, start_judges=False)


def routing_changed(*, campaign: Campaign) -> None:
    """After an admin changed the policy, budget or calibration slice: route again."""
    route_request(campaign=campaign)


def labels_changed(*, campaign: Campaign) -> None:
    """After new human labels: a learned policy retrains and reroutes, at most once per
    TANDEM_ROUTE_RELEARN_SECONDS (a pass reads every item; labels arrive every second). Labels that arrive
    within the window are learned from by a pass queued for its end."""
    if campaign.routing_policy != Campaign.RoutingPolicy.LEARNED:
        return
    previous = last_pass(campaign)
    since = (timezone.now() - previous.created_at).total_seconds() if previous is not None else None
    wait = 0.0 if since is None else max(0.0, settings.TANDEM_ROUTE_RELEARN_SECONDS - since)
    route_request(campaign=campaign, start_judges=False, countdown=wait)


def routing_status(*, campaign: Campaign) -> dict:
    """The campaign's routing at a glance: settings, items per destination, the last pass, the forecast."""
    snapshot = StatsSnapshot.objects.filter(campaign=campaign).first()
    previous = last_pass(campaign)
    return {
        "policy": campaign.routing_policy,
        "human_budget": campaign.human_budget,
        "calibration_fraction": campaign.calibration_fraction,
        "routing_params": campaign.routing_params,
        "destinations": route_counts(campaign),
        "last_pass": previous,
        "forecast": (snapshot.payload.get("routing") if snapshot else None),
        "gold_gate": dict(zip(("allowed", "reason"), llm_only_gate(campaign=campaign), strict=True)),
    }


def item_decisions(*, item: Item, limit: int = 50) -> list[RoutingDecision]:
    """The item's decisions, newest first."""
    return list(RoutingDecision.objects.filter(item=item).select_related("overridden_by")[:limit])


def route_now(*, campaign: Campaign) -> dict:
    """A routing pass in this process, starting no judge run (the demo: its judge labels are imported)."""
    from routing.router import route_campaign

    return route_campaign(campaign=campaign)
