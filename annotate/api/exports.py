"""Dataset exports through the API (campaign admins): start one, list a campaign's, download, delete."""

from __future__ import annotations

from pathlib import Path

from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.exports import options as export_options
from annotate.exports.options import ExportOptionsError
from annotate.models import DatasetExport
from annotate.services.exports import CARD_FILE, export_delete, export_start

from .filters import ExportFilter
from .permissions import IsCampaignAdmin
from .views import campaign_for


class ExportSerializer(serializers.ModelSerializer):
    campaign = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    state = serializers.CharField(source="job.state", default=None, read_only=True, allow_null=True)
    progress_done = serializers.IntegerField(source="job.progress_done", default=None, read_only=True, allow_null=True)
    progress_total = serializers.IntegerField(
        source="job.progress_total", default=None, read_only=True, allow_null=True
    )
    error = serializers.CharField(source="job.error", default="", read_only=True)

    class Meta:
        model = DatasetExport
        fields = (
            "id", "campaign", "options", "complete", "files", "counts", "state", "progress_done", "progress_total",
            "error", "created_at",
        )  # fmt: skip
        read_only_fields = fields


class ExportOptionsInput(serializers.Serializer):
    """The options of `annotate.exports.options.ExportOptions` (its docstring says what each does); the
    view checks them with `ExportOptions.from_dict`, which also refuses unknown keys."""

    format = serializers.ChoiceField(choices=export_options.FORMATS, required=False, default="trl")
    file_type = serializers.ChoiceField(choices=export_options.FILE_TYPES, required=False, default="jsonl")
    source = serializers.ChoiceField(choices=export_options.SOURCES, required=False, default="hybrid")
    min_agreement = serializers.FloatField(min_value=0, max_value=1, required=False, allow_null=True)
    ties = serializers.ChoiceField(choices=export_options.TIES, required=False, default="split")
    metadata = serializers.DictField(required=False, help_text="{key: value or [values]}: items to keep.")
    created_from = serializers.DateTimeField(required=False, allow_null=True)
    created_to = serializers.DateTimeField(required=False, allow_null=True)
    test_fraction = serializers.FloatField(min_value=0, max_value=0.999, required=False, default=0.0)
    aggregation = serializers.ChoiceField(choices=export_options.AGGREGATIONS, required=False, default="majority")
    soft_labels = serializers.BooleanField(required=False, default=False)


class CampaignExports(generics.ListAPIView):
    """GET a campaign's exports (filter by `complete`, `state`); POST options ({"format": "trl", "file_type":
    "parquet", "aggregation": "dawid_skene", "soft_labels": true, ...}: `ExportOptionsInput`) to start one."""

    queryset = DatasetExport.objects.none()  # for the schema; get_queryset is the campaign's
    permission_classes = [IsCampaignAdmin]
    serializer_class = ExportSerializer
    filterset_class = ExportFilter
    pagination_class = None  # a campaign has a handful of exports; clients read this list whole

    def get_queryset(self):
        campaign = campaign_for(self.request, self.kwargs["ref"])
        return DatasetExport.objects.filter(campaign=campaign).select_related("campaign", "job").order_by("-id")

    @extend_schema(request=ExportOptionsInput, responses={202: ExportSerializer})
    def post(self, request, ref: str):
        campaign = campaign_for(request, ref, need="manage")
        try:
            export = export_start(campaign=campaign, options=dict(request.data), created_by=request.user)
        except ExportOptionsError as exc:
            return Response({exc.field: [str(exc).split(": ", 1)[-1]]}, status=status.HTTP_400_BAD_REQUEST)
        return Response(ExportSerializer(export).data, status=status.HTTP_202_ACCEPTED)


def _export(request, pk: int, queryset, *, need: str) -> DatasetExport:
    export = get_object_or_404(queryset.select_related("campaign"), pk=pk)
    campaign_for(request, str(export.campaign_id), need=need)
    return export


class ExportDetail(APIView):
    permission_classes = [IsCampaignAdmin]

    @extend_schema(responses=ExportSerializer)
    def get(self, request, pk: int):
        export = _export(request, pk, DatasetExport.objects.select_related("job"), need="view")
        return Response(ExportSerializer(export).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int):
        export_delete(export=_export(request, pk, DatasetExport.objects.all(), need="manage"))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ExportFile(APIView):
    """Download one of a complete export's files (or its dataset card, README.md) by name."""

    permission_classes = [IsCampaignAdmin]

    @extend_schema(
        responses={
            (200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY, description="The file."),
        }
    )
    def get(self, request, pk: int, name: str):
        export = _export(request, pk, DatasetExport.objects.all(), need="view")
        names = {f["name"] for f in export.files} | {CARD_FILE}
        if not export.complete or name not in names:
            raise Http404("no such file in a complete export")
        path = Path(export.directory) / name
        if not path.is_file():
            raise Http404("the file is gone from the export directory")
        return FileResponse(path.open("rb"), as_attachment=True, filename=name)
