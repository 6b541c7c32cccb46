"""The annotation flow as a JSON API for external front ends: next, submit, skip, heartbeat, my labels.

`next` answers `status` leased, or why there is nothing: `done`, `wait` (retry after
`retry_after` seconds), `hold` (you already hold two items, or the check item you hold completes
the qualification round), `limit` (a per-person limit of the campaign is reached; `resets_at` says
when a daily one allows more, null for the overall one), `paused` (failed attention checks, or an
admin paused you) or `not_qualified` (the qualification round did not reach the campaign's threshold);
`message` says it in words. A lease carries `qualification` ({item, of, threshold, feedback}: check item
`item` of the round) on qualification items and null on every other item, and `warning`: a notice about a
failed attention check not yet shown, else null. Submit answers `too_fast` (quicker than the campaign's
minimum time) and, after a qualification item, `qualification`: the round's progress, its `decision`
(passed, failed or null) with a `message`, and — only when the campaign shows it — `feedback` with the
expected answer and its explanation. Submit, skip, heartbeat and label edits answer 403 with `code` `not_in_pool` once
you left the campaign's pool. `flag` tells the campaign's admins about the item of one of your leases.

Labels travel in display order, as on the page: `responses[0]` is "A" (left), `responses[1]` is
"B" (right), and a negative pairwise value favours `responses[0]`. The server stores them in the
item's own order. Nothing here carries model names, metadata, gold labels or other labels.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.fields import SkipField, empty
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.models import Annotation, Assignment, ItemFlag
from annotate.selectors import assignment_display, campaign_for_annotator, prompt_preview
from annotate.services.assignments import (
    AssignmentError,
    NoWork,
    annotation_submit,
    annotation_update,
    assignment_skip,
    display_label,
    lease_heartbeat,
    next_assignment_for,
)
from annotate.services.quality.flags import flag_add
from annotate.services.quality.gate import (
    QualificationResult,
    qualification_result,
    qualification_step,
    standing_warning_take,
)

from .errors import ApiError
from .views import campaign_ref_checked


class NextInput(serializers.Serializer):
    exclude = serializers.ListField(child=serializers.IntegerField(), required=False, default=list)


class SubmitInput(serializers.Serializer):
    label = serializers.DictField(child=serializers.JSONField())
    justification = serializers.CharField(required=False, allow_blank=True, default="")
    rater_confidence = serializers.IntegerField(required=False, allow_null=True, default=None)
    active_seconds = serializers.FloatField(required=False, allow_null=True, default=None, min_value=0)


class SkipInput(serializers.Serializer):
    reason = serializers.CharField(max_length=500)


class FlagInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ItemFlag.Kind.choices)
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class MyFlagSerializer(serializers.Serializer):
    """What the annotator who flagged hears back: their own flag, no other annotator's, no admin's note."""

    id = serializers.IntegerField(source="pk")
    kind = serializers.CharField()
    comment = serializers.CharField()
    created_at = serializers.DateTimeField()


class HeartbeatInput(serializers.Serializer):
    active_seconds = serializers.FloatField(required=False, allow_null=True, default=None, min_value=0)


# --- what the answers carry (the views build them from the selectors' dicts; these document them) ------


class LeaseSerializer(serializers.Serializer):
    """`annotate.selectors.assignment_display`: the item as this annotator sees it, blind."""

    assignment = serializers.IntegerField(help_text="The lease's id: submit, skip, heartbeat and flag take it.")
    expires_at = serializers.DateTimeField()
    prompt = serializers.JSONField(help_text="Text, or a chat: a list of {role, content}.")
    prompt_is_chat = serializers.BooleanField()
    responses = serializers.ListField(
        child=serializers.CharField(allow_blank=True), required=False, help_text="Pairwise: [A (left), B (right)]."
    )
    response = serializers.CharField(required=False, allow_blank=True, help_text="Single-response campaigns.")
    reference = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    rows = serializers.JSONField(help_text="The label's rows (aspects or criteria) with their scales.")
    confidence = serializers.BooleanField()
    confidence_levels = serializers.ListField(child=serializers.CharField())
    justification = serializers.CharField(help_text="required, optional or off")


class QualificationStepSerializer(serializers.Serializer):
    item = serializers.IntegerField()
    of = serializers.IntegerField()
    threshold = serializers.FloatField()
    feedback = serializers.BooleanField()


class NextOutput(serializers.Serializer):
    status = serializers.CharField(help_text="leased, done, wait, hold, limit, paused or not_qualified")
    assignment = LeaseSerializer(allow_null=True)
    qualification = QualificationStepSerializer(allow_null=True, required=False)
    warning = serializers.CharField(allow_null=True, required=False)
    retry_after = serializers.IntegerField(allow_null=True, required=False)
    message = serializers.CharField(required=False, allow_blank=True)
    resets_at = serializers.DateTimeField(allow_null=True, required=False)


class AnswerCheckSerializer(serializers.Serializer):
    title = serializers.CharField()
    expected = serializers.CharField()
    given = serializers.CharField()
    matched = serializers.BooleanField()


class FeedbackSerializer(serializers.Serializer):
    correct = serializers.BooleanField(allow_null=True)
    checks = AnswerCheckSerializer(many=True)
    explanation = serializers.CharField(allow_blank=True)


class QualificationResultSerializer(serializers.Serializer):
    answered = serializers.IntegerField()
    of = serializers.IntegerField()
    decision = serializers.CharField(allow_null=True, help_text="passed, failed, or null while undecided")
    message = serializers.CharField(allow_blank=True)
    feedback = FeedbackSerializer(required=False)


class SubmitOutput(serializers.Serializer):
    annotation = serializers.IntegerField()
    created = serializers.BooleanField()
    label = serializers.DictField(child=serializers.JSONField(), help_text="In display order.")
    too_fast = serializers.BooleanField()
    qualification = QualificationResultSerializer(allow_null=True)


class SkipOutput(serializers.Serializer):
    status = serializers.CharField()


class HeartbeatOutput(serializers.Serializer):
    state = serializers.CharField()
    expires_at = serializers.DateTimeField(allow_null=True)


class MyLabelSerializer(serializers.Serializer):
    annotation = serializers.IntegerField()
    prompt = serializers.CharField(allow_blank=True)
    label = serializers.DictField(child=serializers.JSONField())
    justification = serializers.CharField(allow_blank=True)
    rater_confidence = serializers.IntegerField(allow_null=True)
    revision = serializers.IntegerField()
    updated_at = serializers.DateTimeField()


def validated_input(serializer_class: type[serializers.Serializer], data) -> dict:
    """`serializer_class(data=data)` validated (400 if not), and its `validated_data`.

    A JSON object whose fields all validate is checked on the class's declared fields themselves: DRF
    deep-copies every field for each serializer instance, most of the cost of checking these small bodies
    on every next and submit. Anything else (a form body, a field that fails) goes through the serializer,
    so every error answers exactly as it did. For serializers without `validate` hooks or `source`s.
    """
    if type(data) is dict:
        values = {}
        try:
            for name, field in serializer_class._declared_fields.items():
                try:
                    values[name] = field.run_validation(data.get(name, empty))
                except SkipField:
                    continue
        except (serializers.ValidationError, DjangoValidationError):
            pass
        else:
            return values
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _error(exc: AssignmentError) -> ApiError:
    return ApiError(str(exc), code=exc.code, field=exc.field, status=exc.status)


def _campaign(request, ref: str):
    campaign = campaign_for_annotator(user=request.user, ref=campaign_ref_checked(ref))
    if campaign is None:
        raise Http404("no such campaign open to you")
    return campaign


class NextView(APIView):
    """Lease the next item (or return the lease you already hold). `exclude` lists leases you show."""

    @extend_schema(request=NextInput, responses=NextOutput)
    def post(self, request, ref: str):
        values = validated_input(NextInput, request.data)
        campaign = _campaign(request, ref)
        try:
            result = next_assignment_for(annotator=request.user, campaign=campaign, exclude=set(values["exclude"]))
        except AssignmentError as exc:
            raise _error(exc) from None
        if isinstance(result, NoWork):
            body = {
                "assignment": None,
                "status": result.reason,
                "retry_after": result.retry_after,
                "message": result.message,
            }
            if result.reason == "limit":
                body["resets_at"] = result.resets_at  # a daily limit's next UTC midnight, else null
            response = Response(body)
            if result.retry_after:
                response["Retry-After"] = str(result.retry_after)
            return response
        step = qualification_step(assignment=result)
        warning = standing_warning_take(annotator=request.user, campaign=campaign)
        return Response(
            {
                "status": "leased",
                "assignment": assignment_display(assignment=result),
                # The same keys on every lease: an attention check looks exactly like a work item.
                "qualification": step.__dict__ if step is not None else None,
                "warning": warning or None,
            }
        )


def _qualification_body(result: QualificationResult | None) -> dict | None:
    if result is None:
        return None
    body = {"answered": result.answered, "of": result.of, "decision": result.decision, "message": result.message}
    if result.feedback:
        body["feedback"] = {
            "correct": result.correct,
            "checks": [check.__dict__ for check in result.checks],
            "explanation": result.explanation,
        }
    return body


class SubmitView(APIView):
    @extend_schema(request=SubmitInput, responses={201: SubmitOutput, 200: SubmitOutput})
    def post(self, request, pk: int):
        values = validated_input(SubmitInput, request.data)
        try:
            annotation, created = annotation_submit(
                assignment_id=pk,
                annotator=request.user,
                label=values["label"],
                justification=values["justification"],
                rater_confidence=values["rater_confidence"],
                active_seconds=values["active_seconds"],
            )
        except AssignmentError as exc:
            raise _error(exc) from None
        return Response(
            {
                "annotation": annotation.pk,
                "created": created,
                "label": display_label(annotation),
                "too_fast": annotation.too_fast,
                "qualification": _qualification_body(qualification_result(annotation=annotation)),
            },
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class SkipView(APIView):
    @extend_schema(request=SkipInput, responses=SkipOutput)
    def post(self, request, pk: int):
        values = validated_input(SkipInput, request.data)
        try:
            assignment_skip(assignment_id=pk, annotator=request.user, reason=values["reason"])
        except AssignmentError as exc:
            raise _error(exc) from None
        return Response({"status": "skipped"})


class FlagView(APIView):
    """POST {kind, comment}: flag the item of one of your leases ("broken prompt", "both are bad", ...) for the
    campaign's admins; 201, or 200 when you flagged it the same way before (a new comment replaces the old)."""

    @extend_schema(request=FlagInput, responses={201: MyFlagSerializer, 200: MyFlagSerializer})
    def post(self, request, pk: int):
        data = FlagInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        assignment = Assignment.objects.filter(pk=pk, annotator=request.user).select_related("item__campaign").first()
        if assignment is None:
            raise ApiError("no such assignment of yours", code="not_found", status=404)
        existed = ItemFlag.objects.filter(item=assignment.item, annotator=request.user, kind=values["kind"]).exists()
        try:
            flag = flag_add(
                item=assignment.item, annotator=request.user, kind=values["kind"], comment=values["comment"]
            )
        except ValueError as exc:
            raise ApiError(str(exc), code="invalid_flag") from None
        return Response(MyFlagSerializer(flag).data, status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED)


class HeartbeatView(APIView):
    @extend_schema(request=HeartbeatInput, responses=HeartbeatOutput)
    def post(self, request, pk: int):
        values = validated_input(HeartbeatInput, request.data)
        try:
            assignment = lease_heartbeat(
                assignment_id=pk, annotator=request.user, active_seconds=values["active_seconds"]
            )
        except AssignmentError as exc:
            raise _error(exc) from None
        return Response({"state": assignment.state, "expires_at": assignment.expires_at})


def _my_label(annotation: Annotation) -> dict:
    return {
        "annotation": annotation.pk,
        "prompt": prompt_preview(annotation.item.prompt),
        "label": display_label(annotation),
        "justification": annotation.justification,
        "rater_confidence": annotation.rater_confidence,
        "revision": annotation.revision,
        "updated_at": annotation.updated_at,
    }


class MyLabelsView(APIView):
    """Your own latest labels in the campaign (at most 200, newest first)."""

    @extend_schema(responses=MyLabelSerializer(many=True))
    def get(self, request, ref: str):
        campaign = _campaign(request, ref)
        annotations = (
            Annotation.objects.filter(campaign=campaign, annotator=request.user, source=Annotation.Source.HUMAN)
            .select_related("item", "campaign")
            .order_by("-updated_at", "-id")[:200]
        )
        return Response([_my_label(a) for a in annotations])


class MyLabelView(APIView):
    @extend_schema(request=SubmitInput, responses=MyLabelSerializer)
    def patch(self, request, pk: int):
        data = SubmitInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        try:
            annotation = annotation_update(
                annotation_id=pk,
                annotator=request.user,
                label=values["label"],
                justification=values["justification"],
                rater_confidence=values["rater_confidence"],
            )
        except AssignmentError as exc:
            raise _error(exc) from None
        return Response(_my_label(annotation))
