"""HyPER tags through the API (campaign admins only): GET how many items are tagged, failed and missing per
prompt version; POST starts a tagging job (kind `tag_items`)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.api.permissions import IsCampaignAdmin
from annotate.api.serializers import JobSerializer
from annotate.api.views import campaign_for
from routing.tagger.cache import tag_counts
from routing.tagger.runs import tagger_for, tagging_start


class TaggingInput(serializers.Serializer):
    judge = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="The judge that tags; default routing_params.tagger."
    )
    retry_failed = serializers.BooleanField(required=False, default=False)


class TagCountsSerializer(serializers.Serializer):
    """`routing.tagger.cache.tag_counts` and the campaign's tagger."""

    tagger = serializers.CharField(allow_null=True, help_text="The judge that tags (routing_params.tagger).")
    prompt_version = serializers.CharField()
    items = serializers.IntegerField()
    tagged = serializers.IntegerField()
    failed = serializers.IntegerField()
    missing = serializers.IntegerField()
    versions = serializers.DictField(child=serializers.DictField(child=serializers.IntegerField()))


class CampaignTags(APIView):
    """GET the tag cache's counts (current prompt version first, then every version stored); POST
    {judge?, retry_failed?} starts a `tag_items` job: 202 with the job to poll (GET /api/jobs/<id>/)."""

    permission_classes = [IsCampaignAdmin]

    @extend_schema(responses=TagCountsSerializer)
    def get(self, request, ref: str):
        campaign = campaign_for(request, ref, need="view")
        setting = (campaign.routing_params or {}).get("tagger")
        tagger = setting.get("judge") if isinstance(setting, dict) else None
        return Response({"tagger": tagger, **tag_counts(campaign=campaign)})

    @extend_schema(request=TaggingInput, responses={202: JobSerializer})
    def post(self, request, ref: str):
        campaign = campaign_for(request, ref, need="manage")
        data = TaggingInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            judge = tagger_for(campaign=campaign, name=data.validated_data["judge"] or None)
            job = tagging_start(
                campaign=campaign,
                judge=judge,
                created_by=request.user,
                retry_failed=data.validated_data["retry_failed"],
            )
        except ValueError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
