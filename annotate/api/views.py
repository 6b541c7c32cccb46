"""API views: thin — parse input, call one service or selector, render."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db.models import Q, QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.access import admin_campaign, campaign_lookup, campaigns_administered, can_create_campaigns
from annotate.models import Campaign, Item, Job
from annotate.selectors import campaigns_for_annotator
from annotate.services.campaigns import (
    QUALITY_FIELDS,
    CampaignError,
    campaign_copy,
    campaign_create,
    campaign_notices,
    campaign_state_set,
    campaign_update,
    state_from_word,
)
from annotate.services.imports import ImportFailed, MappingError, annotations_import, items_import, mapping_parse
from jobs.runner import job_cancel, job_create

from . import serializers
from .permissions import IsCampaignAdmin


def campaign_for(request, ref: str, need: str = "view") -> Campaign:
    """By id or slug, for a caller with at least `need` on it (404 without a role, 403 below `need`)."""
    return admin_campaign(user=request.user, ref=ref, need=need)


def _visible(user) -> QuerySet[Campaign]:
    """What a caller may read: campaigns they hold a role on, and open ones whose pool includes them."""
    mine = campaigns_administered(user=user).values("pk")
    return Campaign.objects.filter(Q(pk__in=mine) | Q(pk__in=campaigns_for_annotator(user=user).values("pk")))


class CampaignListCreate(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses=serializers.CampaignSerializer(many=True))
    def get(self, request):
        queryset = _visible(request.user).order_by("name")
        return Response(serializers.CampaignSerializer(queryset, many=True).data)

    @extend_schema(request=serializers.CampaignCreateSerializer, responses=serializers.CampaignSerializer)
    def post(self, request):
        if not can_create_campaigns(request.user):
            raise PermissionDenied("Only staff accounts may create campaigns.")
        data = serializers.CampaignCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        try:
            campaign = campaign_create(
                name=values["name"],
                kind=values["kind"],
                preset=values.get("preset"),
                schema=values.get("label_schema"),
                overlap=values["overlap"],
                slug=values.get("slug"),
                guidelines=values.get("guidelines", ""),
                human_budget=values.get("human_budget"),
                lease_seconds=values["lease_seconds"],
                gold_rate=values["gold_rate"],
                label_limit=values["label_limit"],
                daily_label_limit=values["daily_label_limit"],
                **{name: values[name] for name in QUALITY_FIELDS},
                created_by=request.user,
            )
            if values["open"]:
                campaign = campaign_state_set(campaign=campaign, state=Campaign.State.OPEN)
        except CampaignError as exc:
            return Response({exc.field or "detail": [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
        return Response(serializers.CampaignSerializer(campaign).data, status=status.HTTP_201_CREATED)


class CampaignDetail(APIView):
    @extend_schema(responses=serializers.CampaignSerializer)
    def get(self, request, ref: str):
        campaign = campaign_lookup(ref)
        if campaign is None or not _visible(request.user).filter(pk=campaign.pk).exists():
            raise Http404("no such campaign")
        return Response(serializers.CampaignSerializer(campaign).data)

    @extend_schema(request=serializers.CampaignUpdateSerializer, responses=serializers.CampaignSerializer)
    def patch(self, request, ref: str):
        campaign = campaign_for(request, ref, need="manage")
        data = serializers.CampaignUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        try:
            campaign = campaign_update(campaign=campaign, **data.validated_data)
        except CampaignError as exc:
            return Response({exc.field or "detail": [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
        return Response(serializers.CampaignSerializer(campaign).data)


class CampaignStateView(APIView):
    """POST {"state": "open"|"paused"|"closed"}: move the campaign through its lifecycle."""

    permission_classes = [IsCampaignAdmin]

    @extend_schema(request=serializers.CampaignStateSerializer, responses=serializers.CampaignSerializer)
    def post(self, request, ref: str):
        campaign = campaign_for(request, ref, need="manage")
        data = serializers.CampaignStateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            campaign = campaign_state_set(campaign=campaign, state=state_from_word(data.validated_data["state"]))
        except CampaignError as exc:
            return Response({"state": [str(exc).removeprefix("state: ")]}, status=status.HTTP_400_BAD_REQUEST)
        body = serializers.CampaignSerializer(campaign).data
        body["notices"] = campaign_notices(campaign=campaign)
        return Response(body)


class CampaignCopyView(APIView):
    """POST {"name", "with_items"}: a new draft with the same settings (a new version of the schema)."""

    permission_classes = [IsCampaignAdmin]

    @extend_schema(request=serializers.CampaignCopySerializer, responses={201: serializers.CampaignSerializer})
    def post(self, request, ref: str):
        campaign = campaign_for(request, ref, need="manage")
        if not can_create_campaigns(request.user):
            raise PermissionDenied("Only staff accounts may create campaigns, copies included.")
        data = serializers.CampaignCopySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            copy = campaign_copy(campaign=campaign, created_by=request.user, **data.validated_data)
        except CampaignError as exc:
            return Response({exc.field or "detail": [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
        return Response(serializers.CampaignSerializer(copy).data, status=status.HTTP_201_CREATED)


class ItemList(generics.ListAPIView):
    permission_classes = [IsCampaignAdmin]
    serializer_class = serializers.ItemSerializer

    def get_queryset(self):
        campaign = campaign_for(self.request, self.kwargs["ref"])
        return Item.objects.filter(campaign=campaign).order_by("id")


class _ImportView(APIView):
    """POST a file (multipart field `file`); `?async=1` runs it as a job and answers 202.

    Item imports also take `mapping` (JSON: `{"prompt": "question", "metadata": ["topic"]}`, see
    `mapping_parse`) and `?dry_run=1`, which answers the report the import would give (its problems
    in `errors`) with 200 and writes nothing.
    """

    permission_classes = [IsCampaignAdmin]
    parser_classes = [MultiPartParser, FormParser]
    importer = None
    job_kind = ""
    takes_mapping = False

    @extend_schema(request={"multipart/form-data": serializers.ImportUploadSerializer})
    def post(self, request, ref: str):
        campaign = campaign_for(request, ref, need="manage")
        upload = serializers.ImportUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        file = upload.validated_data["file"]
        fmt = upload.validated_data.get("format")
        options: dict = {}
        dry_run = _flag(request.query_params.get("dry_run"))
        if self.takes_mapping:
            try:
                mapping = mapping_parse(request.data.get("mapping"))
            except MappingError as exc:
                return Response({"mapping": [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
            if mapping:
                options["mapping"] = mapping
        elif dry_run or request.data.get("mapping"):
            return Response(
                {"detail": "dry_run and mapping are for item imports only"}, status=status.HTTP_400_BAD_REQUEST
            )
        if dry_run:
            report = type(self).importer(
                campaign=campaign, stream=file.file, filename=file.name, fmt=fmt, dry_run=True, **options
            )
            return Response(report.as_dict(), status=status.HTTP_200_OK)
        if _flag(request.query_params.get("async")):
            settings.TANDEM_UPLOAD_DIR.mkdir(parents=True, exist_ok=True)
            path = settings.TANDEM_UPLOAD_DIR / f"{uuid.uuid4().hex}.upload"
            with path.open("wb") as out:
                for chunk in file.chunks():
                    out.write(chunk)
            job = job_create(
                kind=self.job_kind,
                params={"path": str(path), "filename": file.name, "format": fmt, "mapping": options.get("mapping")},
                campaign=campaign,
                created_by=request.user,
            )
            return Response({"job": serializers.JobSerializer(job).data}, status=status.HTTP_202_ACCEPTED)
        try:
            report = type(self).importer(campaign=campaign, stream=file.file, filename=file.name, fmt=fmt, **options)
        except ImportFailed as exc:
            return Response(exc.as_dict(), status=status.HTTP_400_BAD_REQUEST)
        return Response(report.as_dict(), status=status.HTTP_201_CREATED if report.created else status.HTTP_200_OK)


def _flag(value: str | None) -> bool:
    return value in ("1", "true", "yes")


class ItemImport(_ImportView):
    importer = staticmethod(items_import)
    job_kind = "import_items"
    takes_mapping = True


class AnnotationImport(_ImportView):
    importer = staticmethod(annotations_import)
    job_kind = "import_annotations"


def _jobs(user) -> QuerySet[Job]:
    """Jobs of the campaigns the caller may view; jobs of no campaign for superusers only."""
    queryset = Job.objects.select_related("campaign")
    if user.is_superuser:
        return queryset
    return queryset.filter(campaign__in=campaigns_administered(user=user).values("pk"))


class JobDetail(generics.RetrieveAPIView):
    permission_classes = [IsCampaignAdmin]
    serializer_class = serializers.JobSerializer

    def get_queryset(self):
        return _jobs(self.request.user)


class JobList(generics.ListAPIView):
    permission_classes = [IsCampaignAdmin]
    serializer_class = serializers.JobSerializer

    def get_queryset(self):
        queryset = _jobs(self.request.user)
        if "campaign" in self.request.query_params:
            queryset = queryset.filter(campaign__slug=self.request.query_params["campaign"])
        return queryset


class JobCancel(APIView):
    """POST: cancel a job (any kind) of a campaign the caller manages; jobs of no campaign, superusers only."""

    permission_classes = [IsCampaignAdmin]

    @extend_schema(request=None, responses=serializers.JobSerializer)
    def post(self, request, pk: int):
        job = get_object_or_404(Job, pk=pk)
        if job.campaign_id is None and not request.user.is_superuser:
            raise Http404("no such job")
        if job.campaign_id is not None:
            campaign_for(request, str(job.campaign_id), need="manage")
        job = job_cancel(job=job)
        return Response(serializers.JobSerializer(job).data)
