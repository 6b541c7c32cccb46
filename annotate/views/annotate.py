"""The annotator's pages: my campaigns, the annotate page and its htmx fragments, my recent labels."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotate.models import Annotation, Assignment, Campaign, ItemFlag
from annotate.selectors import (
    assignment_display,
    campaign_for_annotator,
    item_display,
    label_rows,
    prompt_preview,
)
from annotate.services.assignments import (
    AssignmentError,
    NoWork,
    annotation_submit,
    annotation_update,
    assignment_skip,
    display_label,
    lease_heartbeat,
    my_progress,
    next_assignment_for,
)
from annotate.services.progress import annotator_progress
from annotate.services.quality.flags import flag_add
from annotate.services.quality.gate import qualification_result, qualification_step, standing_warning_take
from annotate.views.campaigns import annotator_unavailable

SKIP_REASONS = (
    "I cannot judge this topic or language",
    "The prompt or a response is broken or empty",
    "Offensive or harmful content I prefer not to label",
)


def _campaign(request, slug):
    campaign = campaign_for_annotator(user=request.user, ref=slug)
    if campaign is None:
        raise Http404("no such campaign open to you")
    return campaign


def parse_label_form(data) -> tuple[dict, str, int | None, float | None]:
    """Form fields `label.<key>`, `justification`, `rater_confidence`, `active_seconds` → values."""
    label: dict = {}
    for name, value in data.items():
        if name.startswith("label.") and value != "":
            try:
                label[name[6:]] = int(value)
            except ValueError:
                label[name[6:]] = value  # label_validate names it
    confidence = data.get("rater_confidence") or None
    if confidence is not None:
        try:
            confidence = int(confidence)
        except ValueError:
            pass
    try:
        active = float(data.get("active_seconds")) if data.get("active_seconds") else None
    except ValueError:
        active = None
    return label, data.get("justification", ""), confidence, active


@login_required
@require_GET
@never_cache  # Back and reload must show today's counts, not the page as it was (back-forward cache)
def annotate_page(request, slug):
    campaign = campaign_for_annotator(user=request.user, ref=slug)
    if campaign is None:  # a draft, paused or closed campaign, or one not open to this person: say which
        return annotator_unavailable(request, slug)
    context = {
        "campaign": campaign,
        "progress": annotator_progress(annotator=request.user, campaign=campaign),
        "skip_reasons": SKIP_REASONS,
        "flag_kinds": ItemFlag.Kind.choices,
        "flag_url": _flag_url(campaign),
    }
    context.update(_lease_context(request, campaign, exclude=frozenset()))
    return render(request, "annotate/annotate.html", context)


def _flag_url(campaign: Campaign) -> str | None:
    """The flag form's address (with assignment 0, replaced by the page), or None while it is not mounted."""
    try:
        return reverse("annotate-flag", args=[campaign.slug, 0])
    except NoReverseMatch:
        return None


def _lease_context(request, campaign, exclude) -> dict:
    """The next item and what the gate says with it: which check item of the qualification round it is, and
    a warning about a failed attention check not yet shown (it travels with a later item, so it never
    points at the check itself)."""
    try:
        result = next_assignment_for(annotator=request.user, campaign=campaign, exclude=exclude)
    except AssignmentError as exc:
        return {"no_work": NoWork("closed", message=str(exc))}
    if isinstance(result, NoWork):
        return {"no_work": result}
    context = {
        "item": assignment_display(assignment=result),
        "campaign": campaign,
        "gate": qualification_step(assignment=result),
        "flag_url": _flag_url(campaign),
    }
    context["warning"] = standing_warning_take(annotator=request.user, campaign=campaign)
    return context


@login_required
@require_GET
@never_cache
def item_fragment(request, slug):
    """The next item, leased now and rendered for the page to keep behind the current one."""
    campaign = _campaign(request, slug)
    exclude = frozenset(int(x) for x in request.GET.get("exclude", "").split(",") if x.strip().isdigit())
    context = _lease_context(request, campaign, exclude)
    response = render(request, "annotate/_item.html", context)
    if "no_work" in context and context["no_work"].retry_after:
        response["Retry-After"] = str(context["no_work"].retry_after)
    return response


def _error(request, exc: AssignmentError) -> HttpResponse:
    return render(request, "annotate/_flash.html", {"error": str(exc), "code": exc.code}, status=exc.status)


# Submit, skip and heartbeat do not look the campaign up by its slug: the engine finds the lease's
# campaign and refuses with a clear 409 when the campaign closed, 403 when the annotator left its pool.


@login_required
@require_POST
def submit(request, slug, assignment_id):
    label, justification, confidence, active = parse_label_form(request.POST)
    try:
        annotation, created = annotation_submit(
            assignment_id=assignment_id,
            annotator=request.user,
            label=label,
            justification=justification,
            rater_confidence=confidence,
            active_seconds=active,
        )
    except AssignmentError as exc:
        return _error(request, exc)
    progress = my_progress(annotator=request.user, campaign=annotation.campaign)
    context = {
        "progress": progress,
        "created": created,
        "annotation": annotation,
        "min_seconds": annotation.campaign.min_seconds,
        "result": qualification_result(annotation=annotation),
    }
    return render(request, "annotate/_submitted.html", context)


@login_required
@require_POST
def flag(request, slug, assignment_id):
    """Flag the item of one of my leases ("broken prompt", "both are bad", ...): admins see it."""
    assignment = (
        Assignment.objects.filter(pk=assignment_id, annotator=request.user).select_related("item__campaign").first()
    )
    if assignment is None:
        return _error(request, AssignmentError("no such assignment of yours", "not_found", status=404))
    kind = request.POST.get("kind", "")
    comment = request.POST.get("comment", "").strip()
    try:
        flagged = flag_add(item=assignment.item, annotator=request.user, kind=kind, comment=comment)
    except ValueError as exc:
        return _error(request, AssignmentError(str(exc), "invalid_flag", field="kind"))
    message = f"Thank you: flagged as “{flagged.get_kind_display()}”. The campaign's admins will see it."
    return render(request, "annotate/_flash.html", {"message": message})


@login_required
@require_POST
def skip(request, slug, assignment_id):
    try:
        assignment_skip(assignment_id=assignment_id, annotator=request.user, reason=request.POST.get("reason", ""))
    except AssignmentError as exc:
        return _error(request, exc)
    return render(request, "annotate/_flash.html", {"message": "Skipped."})


@login_required
@require_POST
def heartbeat(request, slug, assignment_id):
    try:
        assignment = lease_heartbeat(
            assignment_id=assignment_id, annotator=request.user, active_seconds=request.POST.get("active_seconds")
        )
    except AssignmentError as exc:
        return _error(request, exc)
    response = HttpResponse(status=204)
    response["X-Lease-Expires"] = assignment.expires_at.isoformat()
    return response


@login_required
@require_GET
def recent_labels(request, slug):
    campaign = _campaign(request, slug)
    annotations = (
        Annotation.objects.filter(campaign=campaign, annotator=request.user, source=Annotation.Source.HUMAN)
        .select_related("item", "campaign")
        .order_by("-updated_at", "-id")[:50]
    )
    rows = [{"annotation": a, "label": display_label(a), "prompt": prompt_preview(a.item.prompt)} for a in annotations]
    return render(request, "annotate/recent_labels.html", {"campaign": campaign, "rows": rows})


@login_required
@require_http_methods(["GET", "POST"])
def label_edit(request, slug, annotation_id):
    campaign = _campaign(request, slug)
    annotation = (
        Annotation.objects.filter(pk=annotation_id, campaign=campaign, annotator=request.user, source="human")
        .select_related("item", "campaign", "assignment")
        .first()
    )
    if annotation is None:
        raise Http404("no such label of yours")
    error = None
    if request.method == "POST":
        label, justification, confidence, _ = parse_label_form(request.POST)
        try:
            annotation = annotation_update(
                annotation_id=annotation.pk,
                annotator=request.user,
                label=label,
                justification=justification,
                rater_confidence=confidence,
            )
        except AssignmentError as exc:
            if request.htmx:
                return _error(request, exc)
            error = str(exc)
        else:
            return render(request, "annotate/_flash.html", {"message": "Label changed."})
    return render(
        request,
        "annotate/label_edit.html",
        {
            "campaign": campaign,
            "annotation": annotation,
            "item": item_display(item=annotation.item, campaign=campaign, position_swapped=annotation.position_swapped),
            "current": display_label(annotation),
            "rows": label_rows(campaign=campaign),
            "error": error,
        },
        status=400 if error else 200,
    )
