"""The campaign's queue page for admins: stranded items and the two ways to free them."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_GET, require_POST

from annotate.access import admin_campaign, campaign_allows
from annotate.services.assignments import AssignmentError
from annotate.services.queue import stranded_give_back, stranded_items, stranded_lower_target

SHOWN = 200
ACTIONS = {"give_back": stranded_give_back, "lower_target": stranded_lower_target}


def _context(request, campaign, **extra) -> dict:
    return {
        "campaign": campaign,
        "stranded": stranded_items(campaign=campaign, limit=SHOWN),
        "can_act": campaign_allows(user=request.user, campaign=campaign, need="manage"),
        "shown_limit": SHOWN,
        **extra,
    }


@login_required
@require_GET
def queue_page(request, slug):
    """The fragment as a page of its own (the campaign home loads the fragment with hx-get)."""
    campaign = admin_campaign(user=request.user, ref=slug, need="view")
    message = " ".join(str(m) for m in messages.get_messages(request))  # from a POST without htmx
    return render(request, "annotate/queue.html", _context(request, campaign, message=message))


@login_required
@require_GET
def stranded_fragment(request, slug):
    campaign = admin_campaign(user=request.user, ref=slug, need="view")
    return render(request, "annotate/_stranded.html", _context(request, campaign))


def _parse_action(post) -> tuple[str, list[str] | str, str]:
    """(action, items, target text) from a row's button (`one` = "action:item id") or the bulk form."""
    if post.get("one"):
        action, _, item = post["one"].partition(":")
        return action, [item], ""
    items = "all" if post.get("scope") == "all" else post.getlist("items")
    return post.get("action", ""), items, post.get("target", "").strip()


@login_required
@require_POST
def stranded_act(request, slug):
    """Give back or lower the target of one item, the ticked ones, or all stranded items."""
    campaign = admin_campaign(user=request.user, ref=slug, need="manage")
    action, items, target_text = _parse_action(request.POST)
    errors: dict[str, str] = {}
    message = ""
    target = None
    if action not in ACTIONS:
        errors["general"] = "Choose “Give back” or “Lower target”."
    elif target_text and action == "lower_target":
        try:
            target = int(target_text)
        except ValueError:
            errors["target"] = f"{target_text!r} is not a whole number."
    if not errors:
        try:
            kwargs = {"target": target} if action == "lower_target" else {}
            message = ACTIONS[action](campaign=campaign, items=items, **kwargs).message
        except AssignmentError as exc:
            errors["target" if exc.field == "target" else "general"] = str(exc)
    if not request.htmx and not errors:
        messages.success(request, message)
        return redirect("campaign-queue", slug=campaign.slug)
    template = "annotate/_stranded.html" if request.htmx else "annotate/queue.html"
    context = _context(request, campaign, message=message, errors=errors, target_value=target_text)
    return render(request, template, context, status=400 if errors else 200)


# Mounted under c/<slug>/queue/ by annotate/urls.py.
urlpatterns = [
    path("", queue_page, name="campaign-queue"),
    path("stranded/", stranded_fragment, name="campaign-stranded"),
    path("stranded/act/", stranded_act, name="campaign-stranded-act"),
]
