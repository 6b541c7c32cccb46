"""The campaign's exports page (campaign admins): start an export, watch it run, download its files."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from annotate.access import admin_campaign
from annotate.exports.options import AGGREGATIONS, FILE_TYPES, FORMATS, SOURCES, TIES, ExportOptionsError
from annotate.models import Campaign, DatasetExport, Job
from annotate.services.exports import export_delete, export_start

RECENT = 20


def _context(campaign: Campaign) -> dict:
    exports = list(DatasetExport.objects.filter(campaign=campaign).select_related("job")[:RECENT])
    polling = any(e.job and e.job.state in Job.ACTIVE_STATES for e in exports)
    return {"campaign": campaign, "exports": exports, "polling": polling}


@login_required
@require_GET
def exports_page(request, slug: str):
    campaign = admin_campaign(user=request.user, ref=slug, need="view")
    choices = {
        "formats": FORMATS,
        "file_types": FILE_TYPES,
        "sources": SOURCES,
        "ties": TIES,
        "aggregations": AGGREGATIONS,
    }
    return render(request, "annotate/exports.html", {**_context(campaign), **choices})


@login_required
@require_GET
def exports_fragment(request, slug: str):
    return render(request, "annotate/_exports.html", _context(admin_campaign(user=request.user, ref=slug, need="view")))


def _number(value: str) -> float | None:
    value = (value or "").strip()
    return float(value) if value else None


@login_required
@require_POST
def export_create(request, slug: str):
    campaign = admin_campaign(user=request.user, ref=slug, need="manage")
    form = request.POST
    try:
        options = {
            "format": form.get("format", "trl"),
            "file_type": form.get("file_type", "jsonl"),
            "source": form.get("source", "hybrid"),
            "ties": form.get("ties", "split"),
            "min_agreement": _number(form.get("min_agreement", "")),
            "test_fraction": _number(form.get("test_fraction", "")) or 0.0,
            "aggregation": form.get("aggregation", "majority"),
            "soft_labels": form.get("soft_labels") == "on",  # an unchecked box sends nothing
        }
        export_start(campaign=campaign, options=options, created_by=request.user)
    except ExportOptionsError as exc:  # says which option, e.g. "min_agreement: 2.0 must be a number from 0 to 1"
        messages.error(request, f"Not started: {exc}")
    except ValueError:
        messages.error(request, "Not started: minimum agreement and test split must be numbers")
    return redirect("campaign-exports", slug=campaign.slug)


@login_required
@require_POST
def export_remove(request, slug: str, export_id: int):
    campaign = admin_campaign(user=request.user, ref=slug, need="manage")
    export_delete(export=get_object_or_404(DatasetExport, pk=export_id, campaign=campaign))
    return render(request, "annotate/_exports.html", _context(campaign))
