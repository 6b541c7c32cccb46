"""Dataset exports through the API (campaign admins): start one, list a campaign's, download, delete."""

from __future__ import annotations

from pathlib import Path

from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.exports.options import ExportOptionsError
from annotate.models import DatasetExport
from annotate.services.exports import CARD_FILE, export_delete, export_start

from .permissions import IsCampaignAdmin
from .views import campaign_for


class ExportSerializer(serializers.ModelSerializer):
    campaign = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    state = serializers.CharField(source="job.state", default=None, read_only=True)
    progress_done = serializers.IntegerField(source="job.progress_done", default=None, read_only=True)
    progress_total = serializers.IntegerField(source="job.progress_total", default=None, read_only=True)
    error = serializers.CharField(source="job.error", default="", read_only=True)

    class Meta:
        model = DatasetExport
        fields = (
            "id", "campaign", "options", "complete", "files", "counts", "state", "progress_done", "progress_total",
            "error", "created_at",
        )  # fmt: skip
        read_only_fields = fields


class CampaignExports(APIView):
    """GET a campaign's exports; POST options ({"format": "trl", "file_type": "parquet", "aggregation":
    "dawid_skene", "soft_labels": true, ...}: `annotate.exports.options.ExportOptions`) to start one."""

    permission_classes = [IsCampaignAdmin]

    @extend_schema(responses=ExportSerializer(many=True))
    def get(self, request, ref: str):
        campaign = campaign_for(request, ref)
        exports = DatasetExport.objects.filter(campaign=campaign).select_related("campaign", "job")
        return Response(ExportSerializer(exports, many=True).data)

    @extend_schema(request=serializers.DictField(), responses={202: ExportSerializer})
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

    def delete(self, request, pk: int):
        export_delete(export=_export(request, pk, DatasetExport.objects.all(), need="manage"))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ExportFile(APIView):
    """Download one of a complete export's files (or its dataset card, README.md) by name."""

    permission_classes = [IsCampaignAdmin]

    def get(self, request, pk: int, name: str):
        export = _export(request, pk, DatasetExport.objects.all(), need="view")
        names = {f["name"] for f in export.files} | {CARD_FILE}
        if not export.complete or name not in names:
            raise Http404("no such file in a complete export")
        path = Path(export.directory) / name
        if not path.is_file():
            raise Http404("the file is gone from the export directory")
        return FileResponse(path.open("rb"), as_attachment=True, filename=name)
