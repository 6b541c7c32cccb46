"""The campaign's statistics dashboard (campaign admins): the latest snapshot and agreement over time."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from annotate.access import admin_campaign
from annotate.models import Job, StatsSnapshot
from annotate.services.stats import JOB_KIND
from jobs.runner import job_create

HISTORY = 200


@login_required
@require_GET
def stats_page(request, slug: str):
    campaign = admin_campaign(user=request.user, ref=slug, need="view")
    snapshots = list(StatsSnapshot.objects.filter(campaign=campaign).order_by("-computed_at")[:HISTORY])
    latest = snapshots[0] if snapshots else None
    history = [
        {
            "at": s.computed_at.isoformat(),
            "alpha": {name: c["krippendorff_alpha"]["ordinal"] for name, c in s.payload["criteria"].items()},
        }
        for s in reversed(snapshots)
    ]
    pending = Job.objects.filter(campaign=campaign, kind=JOB_KIND, state__in=Job.ACTIVE_STATES).first()
    return render(
        request,
        "annotate/stats.html",
        {"campaign": campaign, "latest": latest, "stats": latest.payload if latest else None,
         "history": history, "pending": pending},
    )  # fmt: skip


@login_required
@require_POST
def stats_recompute(request, slug: str):
    campaign = admin_campaign(user=request.user, ref=slug, need="manage")
    if not Job.objects.filter(campaign=campaign, kind=JOB_KIND, state=Job.State.QUEUED).exists():
        job_create(kind=JOB_KIND, params={"bootstrap": 1000}, campaign=campaign, created_by=request.user)
    return redirect("campaign-stats", slug=campaign.slug)
