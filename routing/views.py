"""The campaign's judges page (campaign admins): its judges, their cost so far, and judge runs with a
live progress bar (htmx polling), started and cancelled from the page."""

from __future__ import annotations

import os

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.db.models import Avg, Count, Q, Sum
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from annotate.models import Annotation, Campaign, Job
from annotate.services.jobs import job_cancel
from routing.judges.runs import JOB_KIND, SCOPES, judge_run_start

RECENT_RUNS = 10


def _runs(campaign: Campaign) -> list[Job]:
    return list(Job.objects.filter(campaign=campaign, kind=JOB_KIND).order_by("-created_at", "-id")[:RECENT_RUNS])


def _runs_context(campaign: Campaign) -> dict:
    runs = _runs(campaign)
    return {"campaign": campaign, "runs": runs, "polling": any(r.state in Job.ACTIVE_STATES for r in runs)}


@staff_member_required
@require_GET
def judges_page(request, slug: str):
    campaign = get_object_or_404(Campaign, slug=slug)
    judges = campaign.judges.annotate(
        n=Count("annotations", filter=Q(annotations__campaign=campaign)),
        n_failed=Count("annotations", filter=Q(annotations__campaign=campaign, annotations__parse_failed=True)),
        cost=Sum("annotations__cost", filter=Q(annotations__campaign=campaign)),
        latency=Avg("annotations__latency_ms", filter=Q(annotations__campaign=campaign)),
    ).order_by("name")
    rows = [{"judge": j, "key_present": bool(j.api_key_env and os.environ.get(j.api_key_env))} for j in judges]
    total_cost = Annotation.objects.filter(campaign=campaign, source=Annotation.Source.JUDGE).aggregate(c=Sum("cost"))
    return render(
        request,
        "routing/judges.html",
        {**_runs_context(campaign), "rows": rows, "scopes": SCOPES, "total_cost": total_cost["c"] or 0},
    )


@staff_member_required
@require_GET
def runs_fragment(request, slug: str):
    campaign = get_object_or_404(Campaign, slug=slug)
    return render(request, "routing/_runs.html", _runs_context(campaign))


@staff_member_required
@require_POST
def run_start(request, slug: str):
    campaign = get_object_or_404(Campaign, slug=slug)
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


@staff_member_required
@require_POST
def run_cancel(request, slug: str, job_id: int):
    campaign = get_object_or_404(Campaign, slug=slug)
    job_cancel(job=get_object_or_404(Job, pk=job_id, campaign=campaign, kind=JOB_KIND))
    return render(request, "routing/_runs.html", _runs_context(campaign))
