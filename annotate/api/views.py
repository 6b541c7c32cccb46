"""API views: thin — parse input, call one service or selector, render."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.db.models import Q, QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.access import admin_campaign, campaign_lookup, campaigns_administered, can_create_campaigns
from annotate.models import Annotation, Campaign, Item, Job
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
from annotate.services.imports import (
    ImportFailed,
    MappingError,
    RowError,
    annotations_import,
    items_import,
    mapping_parse,
)
from annotate.services.imports.spool import SpooledUpload, UploadDirHandler, spooled_discard
from jobs.runner import job_cancel, job_create, job_wait

from . import filters, serializers
from .errors import ApiError
from .permissions import IsCampaignAdmin

# A campaign's slug or id is ASCII: anything else (a superscript digit, a NUL, an emoji) names no campaign,
# and is a 404 before it reaches int() or the database driver (a NUL in a query is an error in PostgreSQL).
CAMPAIGN_REF = re.compile(r"[-A-Za-z0-9_]{1,80}")


def campaign_ref_checked(ref: str) -> str:
    if not CAMPAIGN_REF.fullmatch(str(ref)):
        raise Http404("no such campaign")
    return ref


def campaign_for(request, ref: str, need: str = "view") -> Campaign:
    """By id or slug, for a caller with at least `need` on it (404 without a role, 403 below `need`)."""
    return admin_campaign(user=request.user, ref=campaign_ref_checked(ref), need=need)


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
            raise ValidationError({exc.field or "detail": [str(exc)]}) from None
        return Response(serializers.CampaignSerializer(campaign).data, status=status.HTTP_201_CREATED)


class CampaignDetail(APIView):
    @extend_schema(responses=serializers.CampaignSerializer)
    def get(self, request, ref: str):
        campaign = campaign_lookup(campaign_ref_checked(ref))
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
            raise ValidationError({exc.field or "detail": [str(exc)]}) from None
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
            raise ValidationError({"state": [str(exc).removeprefix("state: ")]}) from None
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
            raise ValidationError({exc.field or "detail": [str(exc)]}) from None
        return Response(serializers.CampaignSerializer(copy).data, status=status.HTTP_201_CREATED)


class ItemList(generics.ListAPIView):
    """The campaign's items (campaign admins and viewers), filtered by route, review state, gold, labelled,
    and `search` in the prompt or external id."""

    queryset = Item.objects.none()  # for the schema; get_queryset is the campaign's
    permission_classes = [IsCampaignAdmin]
    serializer_class = serializers.ItemSerializer
    filterset_class = filters.ItemFilter

    def get_queryset(self):
        campaign = campaign_for(self.request, self.kwargs["ref"])
        return Item.objects.filter(campaign=campaign).order_by("id")


class LabelList(generics.ListAPIView):
    """Every label of the campaign, human and judge (campaign admins and viewers), oldest first."""

    queryset = Annotation.objects.none()  # for the schema; get_queryset is the campaign's
    permission_classes = [IsCampaignAdmin]
    serializer_class = serializers.LabelSerializer
    filterset_class = filters.LabelFilter

    def get_queryset(self):
        campaign = campaign_for(self.request, self.kwargs["ref"])
        return Annotation.objects.filter(campaign=campaign).select_related("item", "annotator", "judge").order_by("id")


class _ImportView(APIView):
    """POST a file (multipart field `file`); `?async=1` runs it as a job and answers 202.

    The upload is written straight to TANDEM_UPLOAD_DIR as it arrives (`UploadDirHandler`) and the
    worker imports it, so a web process never holds the file nor pays for parsing it. Without
    `?async=1` the request waits for that job (up to TANDEM_IMPORT_WAIT_SECONDS) and answers as an
    in-process import would — 201/200 with the report, 400 with the rows at fault — or 202 with the
    job to poll once the wait runs out.

    Item imports also take `mapping` (JSON: `{"prompt": "question", "metadata": ["topic"]}`, see
    `mapping_parse`) and `?dry_run=1`, which answers the report the import would give (its problems
    in `errors`) with 200 and writes nothing (read here, streaming from the spooled file).
    """

    permission_classes = [IsCampaignAdmin]
    parser_classes = [MultiPartParser, FormParser]
    importer = None
    job_kind = ""
    takes_mapping = False

    def initialize_request(self, request, *args, **kwargs):
        # Before anything reads the body (authentication's CSRF check may): the handlers are fixed then.
        request.upload_handlers = [UploadDirHandler(request)]
        return super().initialize_request(request, *args, **kwargs)

    def post(self, request, ref: str):
        handed_over = False
        try:
            response, handed_over = self._post(request, ref)
            return response
        finally:
            files = getattr(request, "_files", None)  # only what was parsed: a refusal before that read nothing
            if not handed_over and hasattr(files, "values"):
                spooled_discard(files.values())

    def _post(self, request, ref: str) -> tuple[Response, bool]:
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
                raise ValidationError({"mapping": [str(exc)]}) from None
            if mapping:
                options["mapping"] = mapping
        elif dry_run or request.data.get("mapping"):
            raise ApiError("dry_run and mapping are for item imports only", field="mapping" if not dry_run else None)
        if dry_run:
            report = type(self).importer(
                campaign=campaign, stream=file.file, filename=file.name, fmt=fmt, dry_run=True, **options
            )
            return Response(report.as_dict(), status=status.HTTP_200_OK), False
        run_async = _flag(request.query_params.get("async"))
        if not run_async and (connection.in_atomic_block or settings.TANDEM_IMPORT_WAIT_SECONDS <= 0):
            # Inside an open transaction a job (dispatched on commit) could not start before this
            # request ends: import here, from the spooled file.
            return self._imported(campaign=campaign, stream=file.file, filename=file.name, fmt=fmt, **options), False
        path = _spooled_path(file)
        job = job_create(
            kind=self.job_kind,
            params={"path": str(path), "filename": file.name, "format": fmt, "mapping": options.get("mapping")},
            campaign=campaign,
            created_by=request.user,
        )
        if run_async:
            return Response({"job": serializers.JobSerializer(job).data}, status=status.HTTP_202_ACCEPTED), True
        try:
            job = job_wait(job=job, timeout=settings.TANDEM_IMPORT_WAIT_SECONDS, poll=IMPORT_WAIT_POLL)
        except TimeoutError:
            job.refresh_from_db()
            return Response({"job": serializers.JobSerializer(job).data}, status=status.HTTP_202_ACCEPTED), True
        return _job_answer(job), True

    def _imported(self, **kwargs) -> Response:
        try:
            report = type(self).importer(**kwargs)
        except ImportFailed as exc:
            raise ImportRejected(exc) from None
        return Response(report.as_dict(), status=status.HTTP_201_CREATED if report.created else status.HTTP_200_OK)


IMPORT_WAIT_POLL = 0.05  # s between looks at the job row while a request waits for its import


def _spooled_path(file) -> Path:
    """Where the upload is on disk for the job: the spooled file itself, or (another handler) a copy."""
    if isinstance(file, SpooledUpload):
        file.file.close()
        return file.path
    settings.TANDEM_UPLOAD_DIR.mkdir(parents=True, exist_ok=True)
    path = settings.TANDEM_UPLOAD_DIR / f"{uuid.uuid4().hex}.upload"
    with path.open("wb") as out:
        for chunk in file.chunks():
            out.write(chunk)
    return path


def _job_answer(job: Job) -> Response:
    """A finished import job answered as the in-process import would have answered."""
    result = job.result or {}
    if job.state == Job.State.SUCCEEDED:
        report = {key: value for key, value in result.items() if key != "requeued"}
        return Response(report, status=status.HTTP_201_CREATED if report.get("created") else status.HTTP_200_OK)
    if job.state == Job.State.FAILED and isinstance(result.get("errors"), list):
        raise ImportRejected(ImportFailed([RowError(**error) for error in result["errors"]]))
    raise ApiError(job.error or f"the import job ended {job.state}", code="import_failed", status=500)


def _flag(value: str | None) -> bool:
    return value in ("1", "true", "yes")


class ImportRejected(ApiError):
    """A failed import: nothing imported; the errors name file, line and field of each problem."""

    def __init__(self, failed: ImportFailed):
        first = failed.errors[0] if failed.errors else None
        super().__init__(str(failed), code="import_failed", field=(first.field or None) if first else None)
        self.failed = failed

    def body(self) -> dict:
        errors = [
            {"detail": e.message, "code": "invalid_row", "field": e.field or None, "file": e.file, "where": e.where}
            for e in self.failed.errors
        ]
        return {**super().body(), "errors": errors, "imported": 0}

    def legacy_body(self) -> dict:
        return self.failed.as_dict()


_ASYNC = OpenApiParameter("async", bool, description="Run it as a job: 202 with the job to poll.")
_DRY_RUN = OpenApiParameter("dry_run", bool, description="Item imports: check the file, write nothing (200).")
_IMPORT_ANSWERS = {
    200: serializers.ImportReportSerializer,
    201: serializers.ImportReportSerializer,
    202: serializers.JobAcceptedSerializer,
}


class ItemImport(_ImportView):
    importer = staticmethod(items_import)
    job_kind = "import_items"
    takes_mapping = True

    @extend_schema(
        request={"multipart/form-data": serializers.ItemImportUploadSerializer},
        parameters=[_ASYNC, _DRY_RUN],
        responses=_IMPORT_ANSWERS,
    )
    def post(self, request, ref: str):
        return super().post(request, ref)


class AnnotationImport(_ImportView):
    importer = staticmethod(annotations_import)
    job_kind = "import_annotations"

    @extend_schema(
        request={"multipart/form-data": serializers.ImportUploadSerializer},
        parameters=[_ASYNC],
        responses=_IMPORT_ANSWERS,
    )
    def post(self, request, ref: str):
        return super().post(request, ref)


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
    """Jobs of the campaigns you hold a role on, newest first; filter by `kind`, `state`, `campaign` (slug)."""

    permission_classes = [IsCampaignAdmin]
    serializer_class = serializers.JobSerializer
    filterset_class = filters.JobFilter

    def get_queryset(self):
        return _jobs(self.request.user).order_by("-created_at", "-id")


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
