"""The campaign's judges and routing pages (campaign admins): judges, their cost so far and judge runs
with a live progress bar (htmx polling); the routing policy and budget, routing passes, the features
that make human labels worth their cost, and each item's decisions — with what pushed them — and an override.
Mounted by routing/urls.py; they call routing.api like annotate does."""

from __future__ import annotations

import math
import os

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Avg, Count, Q, Sum
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from annotate.access import admin_campaign
from annotate.models import Annotation, Campaign, Item, Job, JudgeVerdict, RoutingDecision
from annotate.services.quality.gold import gold_accuracy
from jobs.runner import job_cancel
from routing.api import (
    JUDGE_RUN_KIND,
    JUDGE_RUN_SCOPES,
    RULES,
    RoutingSettingsError,
    item_decisions,
    judge_run_start,
    last_pass,
    llm_only_gate,
    route_override,
    route_start,
    routing_status,
    routing_update,
)
from routing.judges.client import key_env_refusal

RECENT_RUNS = 10


def key_usable(name: str) -> bool:
    """Whether a judge's key variable is set and allowed: a variable the rules refuse is never read, so it
    is not reported as present either (its mere existence is the server's business)."""
    return bool(name and key_env_refusal(name) is None and os.environ.get(name))


def _runs(campaign: Campaign) -> list[Job]:
    return list(Job.objects.filter(campaign=campaign, kind=JUDGE_RUN_KIND).order_by("-created_at", "-id")[:RECENT_RUNS])


def _runs_context(campaign: Campaign) -> dict:
    runs = _runs(campaign)
    return {"campaign": campaign, "runs": runs, "polling": any(r.state in Job.ACTIVE_STATES for r in runs)}


@login_required
@require_GET
def judges_page(request, slug: str):
    campaign = admin_campaign(user=request.user, ref=slug, need="view")
    judges = campaign.judges.annotate(
        n=Count("annotations", filter=Q(annotations__campaign=campaign)),
        n_failed=Count("annotations", filter=Q(annotations__campaign=campaign, annotations__parse_failed=True)),
        cost=Sum("annotations__cost", filter=Q(annotations__campaign=campaign)),
        latency=Avg("annotations__latency_ms", filter=Q(annotations__campaign=campaign)),
    ).order_by("name")
    rows = [{"judge": j, "key_present": key_usable(j.api_key_env)} for j in judges]
    total_cost = Annotation.objects.filter(campaign=campaign, source=Annotation.Source.JUDGE).aggregate(c=Sum("cost"))
    return render(
        request,
        "routing/judges.html",
        {
            **_runs_context(campaign),
            "rows": rows,
            "scopes": JUDGE_RUN_SCOPES,
            "total_cost": total_cost["c"] or 0,
            "gold": gold_accuracy(campaign=campaign),
        },
    )


@login_required
@require_GET
def runs_fragment(request, slug: str):
    campaign = admin_campaign(user=request.user, ref=slug, need="view")
    return render(request, "routing/_runs.html", _runs_context(campaign))


@login_required
@require_POST
def run_start(request, slug: str):
    campaign = admin_campaign(user=request.user, ref=slug, need="manage")
    chosen = [int(j) for j in request.POST.getlist("judge") if j.isdigit()]
    judges = list(campaign.judges.filter(pk__in=chosen))
    if not judges:
        messages.error(request, "Choose at least one of the campaign's judges to run.")
        return redirect("campaign-judges", slug=campaign.slug)
    try:
        judge_run_start(
            campaign=campaign, judges=judges, scope=request.POST.get("scope", "routed"), created_by=request.user
        )
    except ValueError as exc:
        messages.error(request, str(exc))
    return redirect("campaign-judges", slug=campaign.slug)


@login_required
@require_POST
def run_cancel(request, slug: str, job_id: int):
    campaign = admin_campaign(user=request.user, ref=slug, need="manage")
    job_cancel(job=get_object_or_404(Job, pk=job_id, campaign=campaign, kind=JUDGE_RUN_KIND))
    return render(request, "routing/_runs.html", _runs_context(campaign))


# --- the routing page ------------------------------------------------------------------------------

RECENT_DECISIONS = 50
FEATURE_WORDS = {
    "prompt_chars": "long prompts (characters)",
    "prompt_tokens": "long prompts (words)",
    "response_a_chars": "long response A (characters)",
    "response_b_chars": "long response B (characters)",
    "response_a_tokens": "long response A (words)",
    "response_b_tokens": "long response B (words)",
    "length_diff_chars": "responses of different length (characters)",
    "length_diff_tokens": "responses of different length (words)",
    "length_ratio": "responses of similar length",
    "lexical_overlap": "responses sharing their words",
    "embedding_similarity": "responses meaning the same (embeddings)",
    "judge_flipped": "the verdict flips when the order is swapped",
    "judges_disagree": "the judges disagree",
    "judge_confidence": "confident judges",
    "judge_parse_failure": "a judge's answer did not parse",
    "judge_tie": "the judges call a tie",
    "judge_uncertainty": "judge uncertainty (combined)",
}


def feature_words(name: str) -> str:
    """A feature's name as a phrase for the campaign page ("tag:safety=high" → "metadata safety = high")."""
    if name.startswith("tag:"):
        key, _, value = name[4:].partition("=")
        return f"metadata {key} = {value}"
    if name == "tags_missing":
        return "the tagger gave no tags"
    if name.startswith("tagged:"):
        key, _, value = name[7:].partition("=")
        return f"tagger: {value}" if value else f"tagger: {key.replace('_', ' ')}"
    return FEATURE_WORDS.get(name, name.replace("_", " "))


def decision_reasons(features: list[dict] | None) -> list[dict]:
    """A decision's `features` as the item page's rows, as stored (largest first): the learned policy's signed
    contributions to the log-odds ({"feature", "value", "contribution"}) or the judge-uncertainty signals that
    fired ({"signal", "weight"}), each with its phrase and a bar scaled to the largest."""
    rows = []
    for entry in features or []:
        name = entry.get("feature") or entry.get("signal") or ""
        amount = entry.get("contribution", entry.get("weight"))
        rows.append({"name": name, "words": feature_words(name), "value": entry.get("value"), "amount": amount})
    largest = max((abs(row["amount"]) for row in rows if row["amount"] is not None), default=0) or 1
    for row in rows:
        row["width"] = 0 if row["amount"] is None else round(100 * abs(row["amount"]) / largest)
    return rows


def _explained(decisions: list[RoutingDecision]) -> dict | None:
    """The newest decision that records what pushed it (an override or a static policy records nothing)."""
    for decision in decisions:
        if decision.features:
            signed = "contribution" in decision.features[0]
            return {"decision": decision, "rows": decision_reasons(decision.features), "signed": signed}
    return None


def _routing_context(campaign: Campaign, *, full: bool = True) -> dict:
    status = routing_status(campaign=campaign) if full else {}
    previous = last_pass(campaign)
    learned = ((previous.result or {}).get("learned") if previous else None) or {}
    importances = [
        {"feature": name, "words": feature_words(name), "weight": weight, "width": 0}
        for name, weight in (learned.get("importances") or {}).items()
    ]
    largest = max((abs(row["weight"]) for row in importances), default=0) or 1
    for row in importances:
        row["width"] = round(100 * abs(row["weight"]) / largest)
    return {
        "campaign": campaign,
        "status": status,
        "last_pass": previous,
        "learned": learned,
        "importances": importances,
        "polling": previous is not None and previous.state in Job.ACTIVE_STATES,
    }


@login_required
@require_GET
def routing_page(request, slug: str):
    campaign = admin_campaign(user=request.user, ref=slug, need="view")
    decisions = RoutingDecision.objects.filter(campaign=campaign).select_related("item", "overridden_by")[
        :RECENT_DECISIONS
    ]
    return render(
        request,
        "routing/routing.html",
        {
            **_routing_context(campaign),
            "decisions": decisions,
            "policies": Campaign.RoutingPolicy.choices,
            "gold": gold_accuracy(campaign=campaign),
        },
    )


@login_required
@require_GET
def routing_pass_fragment(request, slug: str):
    """What the page polls every second while a pass runs: the last pass alone (no counts, no forecast)."""
    campaign = admin_campaign(user=request.user, ref=slug, need="view")
    return render(request, "routing/_pass.html", _routing_context(campaign, full=False))


@login_required
@require_POST
def routing_route(request, slug: str):
    campaign = admin_campaign(user=request.user, ref=slug, need="manage")
    try:
        route_start(campaign=campaign, created_by=request.user)
    except ValueError as exc:
        messages.error(request, str(exc))
    return redirect("campaign-routing", slug=campaign.slug)


SETTING_NAMES = {
    "routing_policy": "Policy",
    "human_budget": "Human budget",
    "calibration_fraction": "Calibration slice",
    "routing_params": "Train also on",
}


def _number(text: str, field: str) -> float | None:
    """A form's number: None when empty; RoutingSettingsError when not a finite number."""
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise RoutingSettingsError(field, f"{RULES[field]}, not {text!r}")
    return value


@login_required
@require_POST
def routing_settings(request, slug: str):
    """The policy, budget and calibration slice from the page's form; a routing pass follows."""
    campaign = admin_campaign(user=request.user, ref=slug, need="manage")
    slugs = [slug.strip() for slug in request.POST.get("train_campaigns", "").split(",") if slug.strip()]
    try:
        routing_update(
            campaign=campaign,
            routing_policy=request.POST.get("routing_policy", campaign.routing_policy),
            human_budget=_number(request.POST.get("human_budget", ""), "human_budget"),
            calibration_fraction=_number(request.POST.get("calibration_fraction", ""), "calibration_fraction"),
            routing_params={"train_campaigns": slugs},
        )
    except RoutingSettingsError as exc:
        messages.error(request, f"{SETTING_NAMES.get(exc.field, exc.field)}: {exc}.")
        return redirect("campaign-routing", slug=campaign.slug)
    messages.success(request, "Routing settings saved; a routing pass is queued.")
    return redirect("campaign-routing", slug=campaign.slug)


@login_required
@require_GET
def routing_item(request, slug: str, item_id: int):
    """One item as the admin sees it: its content, route, labels so far and every routing decision."""
    campaign = admin_campaign(user=request.user, ref=slug, need="view")
    item = get_object_or_404(Item, pk=item_id, campaign=campaign)
    decisions = item_decisions(item=item)
    return render(
        request,
        "routing/item.html",
        {
            "campaign": campaign,
            "item": item,
            "decisions": decisions,
            "explained": _explained(decisions),
            "destinations": RoutingDecision.Destination.choices,
            "verdict": JudgeVerdict.objects.filter(item=item).first(),
            "gold_gate": dict(zip(("allowed", "reason"), llm_only_gate(campaign=campaign), strict=True)),
            "judgments": Annotation.objects.filter(item=item, source=Annotation.Source.JUDGE)
            .select_related("judge")
            .order_by("judge__name", "prompt_version", "sample_index", "position_swapped")[:100],
        },
    )


@login_required
@require_POST
def routing_item_override(request, slug: str, item_id: int):
    campaign = admin_campaign(user=request.user, ref=slug, need="manage")
    item = get_object_or_404(Item, pk=item_id, campaign=campaign)
    try:
        route_override(
            item=item, destination=request.POST.get("destination", ""), user=request.user,
            reason=request.POST.get("reason", ""),
        )  # fmt: skip
        messages.success(request, f"Item {item.external_id} now goes to {item.route}; later passes keep it there.")
    except ValueError as exc:
        messages.error(request, str(exc))
    return redirect("campaign-routing-item", slug=campaign.slug, item_id=item.pk)
