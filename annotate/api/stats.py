"""A campaign's statistics through the API (campaign admins): the latest snapshot, its history, recompute."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.models import StatsSnapshot
from annotate.services.stats import JOB_KIND, stats_snapshot_create
from jobs.runner import job_create

from .permissions import IsCampaignAdmin
from .serializers import JobSerializer
from .views import campaign_for


class RecomputeInput(serializers.Serializer):
    bootstrap = serializers.IntegerField(min_value=0, max_value=10_000, default=1000)
    sync = serializers.BooleanField(default=False, help_text="Compute in this request instead of a worker.")


class HistoryRowSerializer(serializers.Serializer):
    computed_at = serializers.DateTimeField()
    n_human_labels = serializers.IntegerField()
    krippendorff_alpha_ordinal = serializers.DictField(
        child=serializers.FloatField(allow_null=True), help_text="Per criterion."
    )


class CampaignStats(APIView):
    """GET the latest snapshot (404 before the first); POST to compute one (202 with the job, or 201 with
    the snapshot when `sync` is true)."""

    permission_classes = [IsCampaignAdmin]

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request, ref: str):
        campaign = campaign_for(request, ref)
        snapshot = StatsSnapshot.objects.filter(campaign=campaign).first()
        if snapshot is None:
            return Response(
                {"detail": "no statistics yet: POST to this URL to compute them"}, status=status.HTTP_404_NOT_FOUND
            )
        return Response(snapshot.payload)

    @extend_schema(request=RecomputeInput, responses={201: OpenApiTypes.OBJECT, 202: JobSerializer})
    def post(self, request, ref: str):
        campaign = campaign_for(request, ref, need="manage")
        data = RecomputeInput(data=request.data)
        data.is_valid(raise_exception=True)
        bootstrap = data.validated_data["bootstrap"]
        if data.validated_data["sync"]:
            snapshot = stats_snapshot_create(campaign=campaign, bootstrap=bootstrap)
            return Response(snapshot.payload, status=status.HTTP_201_CREATED)
        job = job_create(kind=JOB_KIND, params={"bootstrap": bootstrap}, campaign=campaign, created_by=request.user)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class CampaignStatsHistory(APIView):
    """Agreement over time: per snapshot, its time, label counts and each criterion's ordinal α."""

    permission_classes = [IsCampaignAdmin]

    @extend_schema(responses=HistoryRowSerializer(many=True))
    def get(self, request, ref: str):
        campaign = campaign_for(request, ref)
        rows = []
        for snapshot in StatsSnapshot.objects.filter(campaign=campaign).order_by("computed_at")[:500]:
            rows.append(
                {
                    "computed_at": snapshot.computed_at,
                    "n_human_labels": snapshot.n_human_labels,
                    "krippendorff_alpha_ordinal": {
                        name: figures["krippendorff_alpha"]["ordinal"]
                        for name, figures in snapshot.payload["criteria"].items()
                    },
                }
            )
        return Response(rows)
