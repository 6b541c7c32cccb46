"""The campaign's statistics dashboard (campaign admins): the latest snapshot and agreement over time."""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from annotate.models import Campaign, Job, StatsSnapshot
from annotate.services.jobs import job_create
from annotate.services.stats import JOB_KIND

HISTORY = 200


@staff_member_required
@require_GET
def stats_page(request, slug: str):
    campaign = get_object_or_404(Campaign, slug=slug)
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


@staff_member_required
@require_POST
def stats_recompute(request, slug: str):
    campaign = get_object_or_404(Campaign, slug=slug)
    if not Job.objects.filter(campaign=campaign, kind=JOB_KIND, state=Job.State.QUEUED).exists():
        job_create(kind=JOB_KIND, params={"bootstrap": 1000}, campaign=campaign, created_by=request.user)
    return redirect("campaign-stats", slug=campaign.slug)
