"""Admins' actions on an annotator's standing, from the campaign home's annotator table: pause, resume,
exclude or include their labels, let them retry the qualification round (routes mounted from annotate/urls.py)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_POST

from annotate.access import admin_campaign
from annotate.services.quality.gate import campaign_annotator, standing_apply
from annotate.views.campaign_home import quality_context


@login_required
@require_POST
def standing_act(request, slug: str, annotator_id: int):
    """POST `action` (pause, resume, exclude, include, requalify) and an optional `note`: answers the
    annotator table again (htmx) or goes back to the campaign home."""
    campaign = admin_campaign(user=request.user, ref=slug, need="manage")
    annotator = campaign_annotator(campaign=campaign, annotator_id=annotator_id)
    if annotator is None:
        raise Http404("no such annotator in this campaign")
    error = message = ""
    try:
        _, message = standing_apply(
            campaign=campaign,
            annotator=annotator,
            action=request.POST.get("action", ""),
            note=request.POST.get("note", ""),
        )
    except ValueError as exc:
        error = str(exc)
    if not request.htmx:
        if error:
            messages.error(request, error)
        else:
            messages.success(request, message)
        return redirect("campaign-home", slug=campaign.slug)
    context = {**quality_context(request, campaign), "standing_message": message, "standing_error": error}
    return render(request, "annotate/_campaign_home_quality.html", context, status=400 if error else 200)


# Mounted under c/<slug>/standings/ by annotate/urls.py.
urlpatterns = [path("<int:annotator_id>/", standing_act, name="campaign-standing-act")]
