"""The import wizard (campaign owners and admins): upload or paste rows, map columns, see the first rows as
they will be stored and the dry run's report, then import — at once, or as a background job with a
progress bar for large files."""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import RequestDataTooBig
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotate.access import admin_campaign
from annotate.models import Campaign, Job
from annotate.services.imports import ImportFailed, MappingError, items_import, items_preview, mapping_parse
from annotate.services.imports.mapping import Mapping, mapping_sources
from annotate.services.imports.preview import Preview
from annotate.services.imports.uploads import (
    Upload,
    UploadMissing,
    UploadTooLarge,
    upload_discard,
    upload_discard_token,
    upload_get,
    upload_store,
)
from jobs.runner import job_create

BACKGROUND_BYTES = 2 * 1024 * 1024  # files larger than this are imported by a background job
PASTE_MAX_BYTES = 2 * 1024 * 1024
SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".parquet")
TARGET_WORDS = {
    "prompt": "prompt",
    "response_a": "response A",
    "response_b": "response B",
    "response": "response (rubric)",
    "model_a": "model A",
    "model_b": "model B",
    "reference": "reference answer",
    "id": "external id",
    "metadata": "metadata",
}
GONE = "This upload is no longer here (it was imported, discarded or expired): upload the file again."


def _campaign(request, slug: str) -> Campaign:
    return admin_campaign(user=request.user, ref=slug, need="manage")


def _targets(campaign: Campaign) -> list[tuple[str, str]]:
    """The fields a column can go to, for this campaign's kind."""
    skip = {"response"} if campaign.kind in ("pairwise", "both") else {"response_a", "response_b", "model_a", "model_b"}
    return [(name, words) for name, words in TARGET_WORDS.items() if name not in skip]


# --- step 1: the file ---------------------------------------------------------------------------


@login_required
@require_GET
def import_page(request, slug: str):
    campaign = _campaign(request, slug)
    return render(request, "annotate/import.html", {"campaign": campaign, "errors": {}, "data": {}})


def _upload_form_error(request, campaign: Campaign, field: str, message: str, data: dict | None = None):
    context = {"campaign": campaign, "errors": {field: message}, "data": data or {}}
    return render(request, "annotate/import.html", context, status=400)


def _pasted_name(text: str) -> str:
    return "pasted.jsonl" if text.lstrip("\ufeff \t\r\n")[:1] in ("{", "[") else "pasted.csv"


@login_required
@require_POST
def import_upload(request, slug: str):
    """Store the file (or the pasted rows) under a random name and go on to the review with its token."""
    campaign = _campaign(request, slug)
    try:
        file = request.FILES.get("file")
        paste = request.POST.get("paste", "")
    except RequestDataTooBig:
        return _upload_form_error(
            request,
            campaign,
            "paste",
            f"Too much pasted text: paste at most {PASTE_MAX_BYTES:,} bytes, or upload a file.",
        )
    data = {"paste": paste}
    max_bytes = settings.TANDEM_IMPORT_MAX_FILE_BYTES
    if file is not None and paste.strip():
        return _upload_form_error(request, campaign, "file", "Choose a file or paste rows, not both.", data)
    if file is not None:
        if not file.name.lower().endswith(SUFFIXES):
            return _upload_form_error(
                request,
                campaign,
                "file",
                f"{file.name!r} is not a file Tandem reads: use .jsonl, .json, .csv or .parquet.",
                data,
            )
        if file.size == 0:
            return _upload_form_error(request, campaign, "file", f"{file.name!r} is empty.", data)
        if file.size > max_bytes:
            return _upload_form_error(
                request, campaign, "file", f"{file.name!r} is {file.size:,} bytes; the limit is {max_bytes:,} bytes."
            )
        field, name, chunks = "file", file.name, file.chunks()
    elif paste.strip():
        encoded = paste.encode("utf-8")
        if len(encoded) > PASTE_MAX_BYTES:
            return _upload_form_error(
                request,
                campaign,
                "paste",
                f"Too much pasted text: paste at most {PASTE_MAX_BYTES:,} bytes, or upload a file.",
            )
        field, name, chunks = "paste", _pasted_name(paste), [encoded]
    else:
        return _upload_form_error(
            request, campaign, "file", "Choose a file, or paste a few rows (JSONL or CSV with a header).", data
        )
    try:
        upload = upload_store(campaign=campaign, user=request.user, filename=name, chunks=chunks, max_bytes=max_bytes)
    except UploadTooLarge as exc:
        return _upload_form_error(request, campaign, field, f"{name!r}: {exc}.", data)
    preview = _preview(campaign, upload, {})
    unreadable = preview.fatal if not preview.rows else None
    if unreadable is None and preview.rows and all(row.item is None and _is_reader_error(row) for row in preview.rows):
        unreadable = preview.rows[0].error
    if unreadable is not None:
        upload_discard(upload=upload)
        where = f" ({unreadable.where})" if unreadable.where else ""
        return _upload_form_error(request, campaign, field, f"Cannot read {name!r}{where}: {unreadable.message}.", data)
    return redirect("campaign-import-review", slug=campaign.slug, token=upload.token)


def _is_reader_error(row) -> bool:
    return not isinstance(row.source, dict)


# --- step 2: map, preview, dry run ------------------------------------------------------------------


def _preview(campaign: Campaign, upload: Upload, mapping: Mapping) -> Preview:
    with upload.path.open("rb") as stream:
        return items_preview(campaign=campaign, stream=stream, filename=upload.filename, mapping=mapping)


def _mapping_from_form(post) -> tuple[Mapping, list[str]]:
    """The wizard's select boxes (pairs of `column` and `target`) → a mapping, through `mapping_parse`."""
    pairs = [
        f"{target}={column}"
        for column, target in zip(post.getlist("column"), post.getlist("target"), strict=False)
        if target
    ]
    return mapping_parse(pairs), pairs


def _display(preview: Preview) -> list[dict]:
    rows = []
    for row in preview.rows:
        item = row.item
        shown = {"where": row.where, "error": row.error, "item": item}
        if item is not None:
            shown.update(
                {
                    "chat": isinstance(item.prompt, list),
                    "derived_id": item.external_id.startswith("h-") and not _has_id(row.source),
                    "metadata": json.dumps(item.metadata, ensure_ascii=False, indent=1) if item.metadata else "",
                    "gold": json.dumps(item.gold_label, ensure_ascii=False) if item.gold_label is not None else "",
                }
            )
        else:
            shown["source"] = (
                json.dumps(row.source, ensure_ascii=False, default=str)[:600] if isinstance(row.source, dict) else ""
            )
        rows.append(shown)
    return rows


def _has_id(source: object) -> bool:
    return isinstance(source, dict) and any(key in source for key in ("id", "external_id", "uid", "question_id"))


def _review_context(campaign: Campaign, upload: Upload, mapping: Mapping, *, mapping_error: str = "") -> dict:
    preview = _preview(campaign, upload, mapping)
    with upload.path.open("rb") as stream:
        report = items_import(campaign=campaign, stream=stream, filename=upload.filename, mapping=mapping, dry_run=True)
    chosen = mapping_sources(mapping)
    return {
        "campaign": campaign,
        "upload": upload,
        "preview": preview,
        "rows": _display(preview),
        "report": report,
        "columns": [(column, chosen.get(column, "")) for column in preview.columns],
        "targets": _targets(campaign),
        "mapping_open": bool(mapping) or not preview.recognised or bool(mapping_error),
        "mapping_error": mapping_error,
        "background": upload.size > BACKGROUND_BYTES,
        "background_bytes": BACKGROUND_BYTES,
        "pairwise": campaign.kind in ("pairwise", "both"),
    }


@login_required
@require_http_methods(["GET", "POST"])
def import_review(request, slug: str, token: str):
    """GET: the preview and dry run as the file reads; POST (the mapping's select boxes): with the mapping."""
    campaign = _campaign(request, slug)
    try:
        upload = upload_get(token=token, campaign=campaign, user=request.user)
    except UploadMissing:
        return _upload_form_error(request, campaign, "file", GONE)
    mapping: Mapping = {}
    mapping_error = ""
    if request.method == "POST":
        try:
            mapping, _ = _mapping_from_form(request.POST)
        except MappingError as exc:
            mapping_error = str(exc)
    context = _review_context(campaign, upload, mapping, mapping_error=mapping_error)
    template = "annotate/_import_review.html" if request.htmx else "annotate/import_review.html"
    return render(request, template, context, status=400 if mapping_error else 200)


# --- step 3: import ------------------------------------------------------------------------------


@login_required
@require_POST
def import_run(request, slug: str, token: str):
    campaign = _campaign(request, slug)
    try:
        upload = upload_get(token=token, campaign=campaign, user=request.user)
    except UploadMissing:
        return _upload_form_error(request, campaign, "file", GONE)
    try:
        mapping, _ = _mapping_from_form(request.POST)
    except MappingError as exc:
        context = _review_context(campaign, upload, {}, mapping_error=str(exc))
        return render(request, "annotate/import_review.html", context, status=400)
    if request.POST.get("background") == "on" or upload.size > BACKGROUND_BYTES:
        job = job_create(
            kind="import_items",
            params={
                "path": str(upload.path),
                "filename": upload.filename,
                "format": None,
                "mapping": mapping or None,
                "upload": upload.token,
            },
            campaign=campaign,
            created_by=request.user,
        )
        return redirect("campaign-import-job", slug=campaign.slug, job_id=job.pk)
    try:
        with upload.path.open("rb") as stream:
            report = items_import(campaign=campaign, stream=stream, filename=upload.filename, mapping=mapping)
    except ImportFailed as exc:
        context = _review_context(campaign, upload, mapping)
        context["import_failed"] = exc
        return render(request, "annotate/import_review.html", context, status=400)
    upload_discard(upload=upload)
    context = {"campaign": campaign, "result": report.as_dict(), "filename": upload.filename, "job": None}
    return render(request, "annotate/import_done.html", context)


@login_required
@require_POST
def import_discard(request, slug: str, token: str):
    campaign = _campaign(request, slug)
    try:
        upload_discard(upload=upload_get(token=token, campaign=campaign, user=request.user))
    except UploadMissing:
        pass  # already gone: the outcome the user asked for
    return redirect("campaign-import", slug=campaign.slug)


@login_required
@require_GET
def import_job(request, slug: str, job_id: int):
    """A background import: the progress bar (htmx polls this fragment), then the report."""
    campaign = _campaign(request, slug)
    job = get_object_or_404(Job, pk=job_id, campaign=campaign, kind="import_items")
    if job.state not in Job.ACTIVE_STATES and job.params.get("upload"):
        upload_discard_token(token=job.params["upload"])
    result = job.result or {}
    context = {
        "campaign": campaign,
        "job": job,
        "result": result if job.state == Job.State.SUCCEEDED else None,
        "failure": result.get("errors", []) if job.state == Job.State.FAILED else [],
        "filename": job.params.get("filename", Path(job.params.get("path", "")).name),
    }
    template = "annotate/_import_job.html" if request.htmx else "annotate/import_done.html"
    return render(request, template, context)


urlpatterns = [  # mounted under c/<slug>/import/
    path("", import_page, name="campaign-import"),
    path("upload/", import_upload, name="campaign-import-upload"),
    path("jobs/<int:job_id>/", import_job, name="campaign-import-job"),
    path("<str:token>/", import_review, name="campaign-import-review"),
    path("<str:token>/run/", import_run, name="campaign-import-run"),
    path("<str:token>/discard/", import_discard, name="campaign-import-discard"),
]
