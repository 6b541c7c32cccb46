"""Stranded items over the API: list them (viewers and up), give them back or lower their target
(owners and admins). See annotate/services/queue.py for the rule."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.api.views import campaign_for
from annotate.services.assignments import AssignmentError
from annotate.services.queue import stranded_give_back, stranded_items, stranded_lower_target

ACTIONS = {"give_back": stranded_give_back, "lower_target": stranded_lower_target}


class StrandedListInput(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=5000, required=False, default=500)


class StrandedActionInput(serializers.Serializer):
    action = serializers.ChoiceField(choices=sorted(ACTIONS))
    items = serializers.JSONField(help_text='A list of item ids, or "all" for every stranded item.')
    target = serializers.IntegerField(
        min_value=0, required=False, allow_null=True, default=None, help_text="lower_target only; default: its labels."
    )

    def validate_items(self, value):
        if value == "all":
            return value
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        ):
            raise serializers.ValidationError('A non-empty list of item ids, or "all".')
        return value

    def validate(self, attrs):
        if attrs["action"] != "lower_target" and attrs.get("target") is not None:
            raise serializers.ValidationError({"target": "Only lower_target takes a target."})
        return attrs


def _item(row) -> dict:
    return {
        "id": row.id,
        "external_id": row.external_id,
        "prompt": row.prompt,
        "labels": row.labels,
        "target": row.target,
        "target_lowered": row.label_target is not None,
        "skipped": [{"annotator": who, "reason": reason} for who, reason in row.skipped],
        "expired": [{"annotator": who} for who in row.expired],
    }


class StrandedRowSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    external_id = serializers.CharField()
    prompt = serializers.JSONField()
    labels = serializers.IntegerField()
    target = serializers.IntegerField()
    target_lowered = serializers.BooleanField()
    skipped = serializers.ListField(child=serializers.DictField(), help_text="[{annotator, reason}]")
    expired = serializers.ListField(child=serializers.DictField(), help_text="[{annotator}]")


class StrandedListOutput(serializers.Serializer):
    count = serializers.IntegerField()
    eligible_annotators = serializers.IntegerField()
    items = StrandedRowSerializer(many=True)


class StrandedActionOutput(serializers.Serializer):
    action = serializers.CharField()
    changed = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    returned_assignments = serializers.IntegerField()
    message = serializers.CharField(allow_blank=True)


class StrandedItems(APIView):
    """GET: the campaign's stranded items (first `limit`, and the total). POST: act on them."""

    @extend_schema(parameters=[StrandedListInput], responses=StrandedListOutput)
    def get(self, request, ref: str):
        campaign = campaign_for(request, ref, need="view")
        data = StrandedListInput(data=request.query_params)
        data.is_valid(raise_exception=True)
        page = stranded_items(campaign=campaign, limit=data.validated_data["limit"])
        return Response(
            {"count": page.total, "eligible_annotators": page.eligible, "items": [_item(row) for row in page.items]}
        )

    @extend_schema(request=StrandedActionInput, responses=StrandedActionOutput)
    def post(self, request, ref: str):
        campaign = campaign_for(request, ref, need="manage")
        data = StrandedActionInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        kwargs = {"target": values["target"]} if values["action"] == "lower_target" else {}
        try:
            result = ACTIONS[values["action"]](campaign=campaign, items=values["items"], **kwargs)
        except AssignmentError as exc:
            body = {"detail": str(exc), "code": exc.code}
            if exc.field:
                body["field"] = exc.field
            return Response(body, status=exc.status)
        return Response(
            {
                "action": values["action"],
                "changed": result.changed,
                "unchanged": result.unchanged,
                "returned_assignments": result.returned,
                "message": result.message,
            }
        )


# Mounted under campaigns/<ref>/stranded/ by annotate/api/urls.py.
urlpatterns = [path("", StrandedItems.as_view(), name="api-stranded")]
