"""The campaign home for its owners, admins and viewers: the page they watch while the campaign runs.

Two fragments, each re-polled by htmx while the tab is visible and the campaign is not closed: the live
one (`campaign-home-live`, every 5 s: items, labels per hour, budget, judge cost, who is working) carries
its chart data as JSON, which static/js/campaign_home.js draws into canvases kept across swaps; the
quality one (`campaign-home-quality`, every 30 s: the annotator table and the most disputed items) reads
every human label, so it is loaded after the page and refreshed less often.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import NoReverseMatch, path, reverse
from django.views.decorators.http import require_GET

from annotate.access import admin_campaign, campaign_allows
from annotate.models import Campaign
from annotate.overview import ROUTES, STATE_WORDS, STATES, campaign_overview, campaign_quality

POLL_SECONDS = 5
QUALITY_SECONDS = 30


def _optional_url(name: str, slug: str) -> str | None:
    """A neighbouring panel's URL, or None while the view behind it is not mounted."""
    try:
        return reverse(name, kwargs={"slug": slug})
    except NoReverseMatch:
        return None


def _chart_data(overview: dict) -> dict:
    items, budget = overview["items"], overview["budget"]
    return {
        "routes": list(ROUTES),
        "states": [{"key": state, "label": STATE_WORDS[state]} for state in STATES],
        "items": {row["route"]: [row[state] for state in STATES] for row in items["routes"]},
        "hourly": overview["hourly"],
        "budget": {"done": budget["done"], "remaining": budget["remaining"], "plan": budget["plan"]},
        "judges": [{"judge": j["judge"], "cost": float(j["cost"]), "n": j["n"]} for j in overview["judges"]["judges"]],
    }


def _polling(campaign: Campaign) -> dict:
    return {
        "campaign": campaign,
        "polling": campaign.state != Campaign.State.CLOSED,
        "poll_seconds": POLL_SECONDS,
        "quality_seconds": QUALITY_SECONDS,
    }


def _live_context(campaign: Campaign) -> dict:
    overview = campaign_overview(campaign=campaign)
    return {**_polling(campaign), "overview": overview, "charts": _chart_data(overview)}


@login_required
@require_GET
def campaign_home(request, slug: str):
    campaign = admin_campaign(user=request.user, ref=slug, need="view")
    context = {
        **_live_context(campaign),
        "stranded_url": _optional_url("campaign-stranded", campaign.slug),
        "state_url": _optional_url("campaign-state", campaign.slug),
    }
    return render(request, "annotate/campaign_home.html", context)


@login_required
@require_GET
def campaign_home_live(request, slug: str):
    """The live fragment alone: what the page polls every few seconds."""
    campaign = admin_campaign(user=request.user, ref=slug, need="view")
    return render(request, "annotate/_campaign_home_live.html", _live_context(campaign))


@login_required
@require_GET
def campaign_home_quality(request, slug: str):
    """The annotator table and the most disputed items: loaded after the page, polled less often."""
    campaign = admin_campaign(user=request.user, ref=slug, need="view")
    return render(request, "annotate/_campaign_home_quality.html", quality_context(request, campaign))


def quality_context(request, campaign: Campaign) -> dict:
    """The quality fragment's context; owners and admins also get the standing actions (pause, exclude, ...)."""
    return {
        **_polling(campaign),
        "quality": campaign_quality(campaign=campaign),
        "can_manage": campaign_allows(user=request.user, campaign=campaign, need="manage"),
    }


# Mounted under c/<slug>/ by annotate/urls.py.
urlpatterns = [
    path("", campaign_home, name="campaign-home"),
    path("live/", campaign_home_live, name="campaign-home-live"),
    path("quality/", campaign_home_quality, name="campaign-home-quality"),
]
