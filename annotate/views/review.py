"""The review queue pages: contested items, one item's labels, and the form that records its final label.

For the campaign's reviewers, admins and owners (access need "review"); annotators and viewers get 403.
The list and the item are htmx fragments: choosing an item, filtering and recording swap them in place.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_POST

from annotate.access import admin_campaign, campaign_role
from annotate.models import CampaignMember
from annotate.services.quality.review import (
    FILTERS,
    ReviewError,
    adjudication_record,
    review_counts,
    review_item,
    review_queue,
)
from annotate.views.annotate import parse_label_form

SHOWN = 200
DEFAULT_FILTER = "contested"


def _filter(request) -> str:
    state = request.GET.get("state", DEFAULT_FILTER)
    return state if state in FILTERS else DEFAULT_FILTER


def _list_context(campaign, state: str) -> dict:
    return {
        "campaign": campaign,
        "state": state,
        "filters": [("contested", "Contested"), ("adjudicated", "Adjudicated"), ("all", "All")],
        "rows": review_queue(campaign=campaign, state=state, limit=SHOWN),
        "counts": review_counts(campaign=campaign),
        "shown_limit": SHOWN,
    }


def _cells(label: dict | None, rows: list[dict]) -> list[str]:
    """A stored label as the words of the scale rows the annotators saw (A left, B right)."""
    label = label or {}
    cells = []
    for row in rows:
        value = label.get(row["key"])
        word = next((p["word"] for p in row["points"] if p["value"] == value), None)
        if value is None:
            cells.append("—")
        elif row["kind"] == "rubric" or word is None:
            cells.append(str(value))
        else:
            cells.append(f"{word} ({value:+d})")
    return cells


def _item_context(campaign, item_id: int, **extra) -> dict:
    found = review_item(campaign=campaign, item_id=item_id)
    if found is None:
        raise Http404("no such item in this campaign's review queue")
    rows = found.display["rows"]
    for label in found.labels:
        label["cells"] = _cells(label["label"], rows)
    verdict = found.verdict.label if found.verdict else None
    current = found.adjudication.label if found.adjudication else {}
    return {
        "campaign": campaign,
        "review": found,
        "item": found.display,
        "verdict_cells": _cells(verdict, rows) if verdict else None,
        "final_cells": _cells(current, rows) if current else None,
        "current": extra.pop("current", current),
        "reason": extra.pop("reason", found.adjudication.reason if found.adjudication else ""),
        **extra,
    }


def _page(request, campaign, context: dict, status: int = 200):
    context.update(_list_context(campaign, _filter(request)))
    role = campaign_role(user=request.user, campaign=campaign)
    context["reviewer_only"] = role == CampaignMember.Role.REVIEWER  # the other tabs would answer 403
    return render(request, "annotate/review.html", context, status=status)


@login_required
@require_GET
def review_page(request, slug):
    """The queue, and the chosen item (`?item=`) beside it."""
    campaign = admin_campaign(user=request.user, ref=slug, need="review")
    chosen = request.GET.get("item", "")
    context = _item_context(campaign, int(chosen)) if chosen.isdigit() else {"campaign": campaign}
    return _page(request, campaign, context)


@login_required
@require_GET
def review_list(request, slug):
    campaign = admin_campaign(user=request.user, ref=slug, need="review")
    return render(request, "annotate/_review_list.html", _list_context(campaign, _filter(request)))


@login_required
@require_GET
def review_item_view(request, slug, item_id: int):
    """One item: a fragment for htmx, else the whole page with it open."""
    campaign = admin_campaign(user=request.user, ref=slug, need="review")
    context = _item_context(campaign, item_id)
    if request.htmx:
        return render(request, "annotate/_review_item.html", context)
    return _page(request, campaign, context)


@login_required
@require_POST
def review_adjudicate(request, slug, item_id: int):
    """Record the final label; answers the item again, and tells the list to refresh."""
    campaign = admin_campaign(user=request.user, ref=slug, need="review")
    found = review_item(campaign=campaign, item_id=item_id)
    if found is None:
        raise Http404("no such item in this campaign's review queue")
    label, _justification, _confidence, _active = parse_label_form(request.POST)
    reason = request.POST.get("reason", "")
    try:
        adjudication = adjudication_record(item=found.item, reviewer=request.user, label=label, reason=reason)
    except ReviewError as exc:
        context = _item_context(
            campaign, item_id, current=label, reason=reason, errors={exc.field or "general": str(exc)}
        )
        if request.htmx:
            return render(request, "annotate/_review_item.html", context, status=exc.status)
        return _page(request, campaign, context, status=exc.status)
    message = (
        "Final label recorded."
        if found.adjudication is None
        else f"Final label recorded again (revision {adjudication.revision})."
    )
    if not request.htmx:
        messages.success(request, message)
        return redirect(f"{reverse('campaign-review', args=[campaign.slug])}?state=all&item={item_id}")
    response = render(request, "annotate/_review_item.html", _item_context(campaign, item_id, message=message))
    response["HX-Trigger"] = "review-changed"  # the list shows the new state
    return response


# Mounted under c/<slug>/review/ by annotate/urls.py.
urlpatterns = [
    path("", review_page, name="campaign-review"),
    path("list/", review_list, name="campaign-review-list"),
    path("items/<int:item_id>/", review_item_view, name="campaign-review-item"),
    path("items/<int:item_id>/adjudicate/", review_adjudicate, name="campaign-review-adjudicate"),
]
