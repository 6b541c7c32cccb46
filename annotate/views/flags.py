"""The campaign's flags page for admins: annotators' flags and comments on items, filtered, resolved, downloaded."""

from __future__ import annotations

import csv
import io
import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from annotate.access import admin_campaign, campaign_allows
from annotate.exports.writers import _cell as csv_cell  # the dataset exports' CSV cells: one rule for both
from annotate.models import ItemFlag
from annotate.services.quality.flags import (
    FLAG_COLUMNS,
    STATES,
    flag_counts,
    flag_filters,
    flag_resolve,
    flag_row,
    flags_list,
)

SHOWN = 200
FILE_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson; charset=utf-8"}


def _filters(request) -> tuple[dict, str]:
    """The filters as the form holds them, and the error when one is not a known value."""
    chosen = {"kind": request.GET.get("kind", ""), "state": request.GET.get("state", "open") or "all"}
    try:
        flag_filters(**chosen)
    except ValueError as exc:
        return chosen, str(exc)
    return chosen, ""


def _context(request, campaign, chosen: dict, error: str = "") -> dict:
    kind, resolved = flag_filters(**chosen) if not error else (None, False)
    flags = flags_list(campaign=campaign, kind=kind, resolved=resolved)
    counts = flag_counts(campaign=campaign)
    return {
        "campaign": campaign,
        "flags": flags[:SHOWN],
        "total": flags.count(),
        "shown_limit": SHOWN,
        "counts": [{"kind": kind, "label": label, **counts[kind]} for kind, label in ItemFlag.Kind.choices],
        "kinds": ItemFlag.Kind.choices,
        "states": list(STATES),
        "chosen": chosen,
        "error": error,
        "can_resolve": campaign_allows(user=request.user, campaign=campaign, need="manage"),
    }


def _status(request, error: str) -> int:
    # htmx swaps only 2xx answers on these pages: a fragment with its error in it is a 200 there.
    return 400 if error and not request.htmx else 200


@login_required
@require_GET
def flags_page(request, slug: str):
    """The page; the filter form's htmx requests get the list alone (the page's URL, so it can be bookmarked)."""
    campaign = admin_campaign(user=request.user, ref=slug, need="view")
    chosen, error = _filters(request)
    template = "annotate/_flags.html" if request.htmx else "annotate/flags.html"
    return render(request, template, _context(request, campaign, chosen, error), status=_status(request, error))


@login_required
@require_POST
def flag_resolve_view(request, slug: str, flag_id: int):
    """Resolve one flag with a note; answers its row again (htmx) or the page."""
    campaign = admin_campaign(user=request.user, ref=slug, need="manage")
    flag = get_object_or_404(ItemFlag, pk=flag_id, campaign=campaign)
    error = ""
    try:
        flag = flag_resolve(flag=flag, by=request.user, resolution=request.POST.get("resolution", ""))
    except ValueError as exc:
        error = str(exc)
    status = _status(request, error)
    if request.htmx:
        context = {"campaign": campaign, "flag": flag, "can_resolve": True, "row_error": error}
        return render(request, "annotate/_flag_row.html", context, status=status)
    if not error:
        messages.success(request, f"The flag on item {flag.item.external_id} is resolved.")
        return redirect("campaign-flags", slug=campaign.slug)
    chosen, _ = _filters(request)
    return render(request, "annotate/flags.html", _context(request, campaign, chosen, error), status=status)


def _lines(rows, file_type: str):
    if file_type == "jsonl":
        for row in rows:
            yield json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n"
        return
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FLAG_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: csv_cell(value) for key, value in row.items()})
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


@login_required
@require_GET
def flags_download(request, slug: str, file_type: str):
    """The filtered flags as CSV or JSONL, every one (not only the page's first SHOWN)."""
    campaign = admin_campaign(user=request.user, ref=slug, need="view")
    if file_type not in FILE_TYPES:
        return HttpResponseBadRequest(f"download as {' or '.join(FILE_TYPES)}, not {file_type!r}")
    chosen, error = _filters(request)
    if error:
        return HttpResponseBadRequest(error)
    kind, resolved = flag_filters(**chosen)
    flags = flags_list(campaign=campaign, kind=kind, resolved=resolved)
    rows = (flag_row(flag) for flag in flags.iterator(chunk_size=1000))
    response = StreamingHttpResponse(_lines(rows, file_type), content_type=FILE_TYPES[file_type])
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="{campaign.slug}-flags-{stamp}.{file_type}"'
    return response


# Mounted under c/<slug>/flags/ by annotate/urls.py.
urlpatterns = [
    path("", flags_page, name="campaign-flags"),
    path("<int:flag_id>/resolve/", flag_resolve_view, name="campaign-flags-resolve"),
    path("download/<str:file_type>/", flags_download, name="campaign-flags-download"),
]
