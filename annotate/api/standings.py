"""Annotators' standings in a campaign over the API: list them (viewers and up), act on one (owners and
admins: pause, resume, exclude, include, requalify). Routes mounted from annotate/api/urls.py."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.api.views import campaign_for
from annotate.models import AnnotatorStanding
from annotate.services.quality.gate import STANDING_ACTIONS, campaign_annotator, standing_apply


class StandingSerializer(serializers.ModelSerializer):
    annotator = serializers.IntegerField(source="annotator_id")
    username = serializers.CharField(source="annotator.username")
    paused = serializers.SerializerMethodField()

    class Meta:
        model = AnnotatorStanding
        fields = (
            "annotator",
            "username",
            "qualification",
            "qualification_version",
            "qualification_answered",
            "qualification_correct",
            "attention_checks",
            "attention_failures",
            "too_fast",
            "warned_at",
            "paused",
            "paused_at",
            "pause_reason",
            "excluded",
            "note",
            "updated_at",
        )
        read_only_fields = fields

    def get_paused(self, standing: AnnotatorStanding) -> bool:
        return standing.paused_at is not None


class StandingActionInput(serializers.Serializer):
    annotator = serializers.IntegerField(help_text="The annotator's account id.")
    action = serializers.ChoiceField(choices=STANDING_ACTIONS)
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=400)


class Standings(APIView):
    """GET: every annotator's standing in the campaign. POST {annotator, action, note}: act on one."""

    @extend_schema(responses=StandingSerializer(many=True))
    def get(self, request, ref: str):
        campaign = campaign_for(request, ref, need="view")
        rows = (
            AnnotatorStanding.objects.filter(campaign=campaign)
            .select_related("annotator")
            .order_by("annotator__username")
        )
        return Response(StandingSerializer(rows, many=True).data)

    @extend_schema(request=StandingActionInput, responses=StandingSerializer)
    def post(self, request, ref: str):
        campaign = campaign_for(request, ref, need="manage")
        data = StandingActionInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        annotator = campaign_annotator(campaign=campaign, annotator_id=values["annotator"])
        if annotator is None:
            return Response(
                {"annotator": [f"no annotator with id {values['annotator']} in this campaign"]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        try:
            standing, message = standing_apply(
                campaign=campaign, annotator=annotator, action=values["action"], note=values["note"]
            )
        except ValueError as exc:
            return Response({"action": [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
        return Response({**StandingSerializer(standing).data, "message": message})


# Mounted under campaigns/<ref>/standings/ by annotate/api/urls.py.
urlpatterns = [path("", Standings.as_view(), name="api-standings")]
