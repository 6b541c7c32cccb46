"""The review queue over the API: contested items, one item's labels, and recording its final label.

For the campaign's reviewers, admins and owners (access need "review"). Labels are in the item's own
order (`response_a`, `response_b`; a negative pairwise value favours A), as stored and as exported.
Annotators appear as "Annotator 1, 2, ..." unless the campaign lets reviewers see who labelled.
"""

from __future__ import annotations

from django.http import Http404
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.api.views import campaign_for
from annotate.services.quality.review import (
    FILTERS,
    ReviewError,
    adjudication_record,
    review_counts,
    review_item,
    review_queue,
)


class ReviewListInput(serializers.Serializer):
    state = serializers.ChoiceField(choices=sorted(FILTERS), required=False, default="contested")
    limit = serializers.IntegerField(min_value=1, max_value=5000, required=False, default=500)


class ReviewRowSerializer(serializers.Serializer):
    """`annotate.services.quality.review.review_queue`: one item in review as a row of the list."""

    id = serializers.IntegerField()
    external_id = serializers.CharField()
    prompt = serializers.CharField(allow_blank=True, help_text="A preview of the prompt.")
    labels = serializers.IntegerField(help_text="Human labels on the item.")
    state = serializers.CharField()
    revision = serializers.IntegerField(allow_null=True)
    adjudicated_at = serializers.DateTimeField(allow_null=True)


class ReviewCountsSerializer(serializers.Serializer):
    contested = serializers.IntegerField()
    adjudicated = serializers.IntegerField()


class ReviewListOutput(serializers.Serializer):
    counts = ReviewCountsSerializer()
    items = ReviewRowSerializer(many=True)


class ReviewLabelSerializer(serializers.Serializer):
    annotator = serializers.CharField(help_text='"Annotator n" unless the campaign shows reviewers who labelled.')
    label = serializers.DictField(child=serializers.JSONField())
    justification = serializers.CharField(allow_blank=True)
    rater_confidence = serializers.IntegerField(allow_null=True)
    seconds = serializers.FloatField(allow_null=True)
    too_fast = serializers.BooleanField()


class VerdictSerializer(serializers.Serializer):
    label = serializers.JSONField(allow_null=True)
    confidence = serializers.FloatField(allow_null=True)
    n_judgments = serializers.IntegerField()


class AdjudicationSerializer(serializers.Serializer):
    label = serializers.DictField(child=serializers.JSONField())
    reason = serializers.CharField(allow_blank=True)
    revision = serializers.IntegerField()
    reviewer = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class ReviewDetailSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    external_id = serializers.CharField()
    review_state = serializers.CharField(allow_blank=True)
    prompt = serializers.JSONField()
    response_a = serializers.CharField(allow_blank=True)
    response_b = serializers.CharField(allow_blank=True)
    response = serializers.CharField(allow_blank=True)
    reference = serializers.CharField(allow_blank=True)
    labels = ReviewLabelSerializer(many=True)
    judge_verdict = VerdictSerializer(allow_null=True)
    adjudication = AdjudicationSerializer(allow_null=True)


class AdjudicatedSerializer(AdjudicationSerializer):
    item = serializers.IntegerField()
    review_state = serializers.CharField()


class AdjudicationInput(serializers.Serializer):
    label = serializers.DictField(child=serializers.JSONField(), help_text="{aspect or criterion: int}, A/B order.")
    reason = serializers.CharField(allow_blank=True, help_text="Why this is the final label (required).")


def _error(exc: ReviewError) -> Response:
    body = {"detail": str(exc), "code": exc.code}
    if exc.field:
        body["field"] = exc.field
    return Response(body, status=exc.status)


def _adjudication(adjudication) -> dict | None:
    if adjudication is None:
        return None
    return {
        "label": adjudication.label,
        "reason": adjudication.reason,
        "revision": adjudication.revision,
        "reviewer": adjudication.reviewer.username,
        "created_at": adjudication.created_at,
        "updated_at": adjudication.updated_at,
    }


def _detail(found) -> dict:
    item, verdict = found.item, found.verdict
    return {
        "id": item.pk,
        "external_id": item.external_id,
        "review_state": item.review_state,
        "prompt": item.prompt,
        "response_a": item.response_a,
        "response_b": item.response_b,
        "response": item.response,
        "reference": item.reference,
        "labels": [
            {
                "annotator": row["who"],
                "label": row["label"],
                "justification": row["justification"],
                "rater_confidence": row["rater_confidence"],
                "seconds": row["seconds"],
                "too_fast": row["too_fast"],
            }
            for row in found.labels
        ],
        "judge_verdict": None
        if verdict is None
        else {"label": verdict.label, "confidence": verdict.confidence, "n_judgments": verdict.n_judgments},
        "adjudication": _adjudication(found.adjudication),
    }


class ReviewList(APIView):
    """GET: items in review (`state` contested — the default —, adjudicated or all), with the counts."""

    @extend_schema(parameters=[ReviewListInput], responses=ReviewListOutput)
    def get(self, request, ref: str):
        campaign = campaign_for(request, ref, need="review")
        data = ReviewListInput(data=request.query_params)
        data.is_valid(raise_exception=True)
        rows = review_queue(campaign=campaign, state=data.validated_data["state"], limit=data.validated_data["limit"])
        return Response({"counts": review_counts(campaign=campaign), "items": rows})


class ReviewItem(APIView):
    """GET: one item in review with every human label and the judges' verdict. POST {label, reason}: record
    its final label (201 the first time; 200 after, and a changed label or reason bumps the revision)."""

    def _found(self, request, ref: str, item_id: int):
        campaign = campaign_for(request, ref, need="review")
        found = review_item(campaign=campaign, item_id=item_id)
        if found is None:
            raise Http404("no such item in this campaign's review queue")
        return found

    @extend_schema(responses=ReviewDetailSerializer)
    def get(self, request, ref: str, item_id: int):
        return Response(_detail(self._found(request, ref, item_id)))

    @extend_schema(request=AdjudicationInput, responses={201: AdjudicatedSerializer, 200: AdjudicatedSerializer})
    def post(self, request, ref: str, item_id: int):
        found = self._found(request, ref, item_id)
        data = AdjudicationInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            adjudication = adjudication_record(
                item=found.item, reviewer=request.user, label=data.validated_data["label"],
                reason=data.validated_data["reason"],
            )  # fmt: skip
        except ReviewError as exc:
            return _error(exc)
        answer = status.HTTP_201_CREATED if found.adjudication is None else status.HTTP_200_OK
        return Response({"item": found.item.pk, "review_state": found.item.review_state, **_adjudication(adjudication)},
                        status=answer)  # fmt: skip


# Mounted under campaigns/<ref>/review/ by annotate/api/urls.py.
urlpatterns = [
    path("", ReviewList.as_view(), name="api-review"),
    path("<int:item_id>/", ReviewItem.as_view(), name="api-review-item"),
]
