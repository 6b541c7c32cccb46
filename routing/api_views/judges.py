"""Judges and judge runs through the API (campaign admins only). A judge's API key never appears here:
only the name of the environment variable that holds it, and whether the server has that variable."""

from __future__ import annotations

import os

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.api.permissions import IsCampaignAdmin, IsJudgeAdmin
from annotate.api.serializers import JobSerializer
from annotate.api.views import campaign_for
from annotate.models import Judge
from routing.api import JUDGE_RUN_SCOPES, judge_create, judge_probe, judge_run_start, judge_validate


class JudgeSerializer(serializers.ModelSerializer):
    api_key_present = serializers.SerializerMethodField(help_text="Whether the server has the key's variable set.")

    class Meta:
        model = Judge
        fields = (
            "id", "name", "base_url", "model", "api_key_env", "api_key_present", "sampling", "prompt_template",
            "prompt_override", "concurrency", "requests_per_minute", "price_in_per_1k", "price_out_per_1k",
            "capabilities", "imported", "active", "created_at",
        )  # fmt: skip
        read_only_fields = fields

    def get_api_key_present(self, judge: Judge) -> bool:
        return bool(judge.api_key_env and os.environ.get(judge.api_key_env))


class JudgeInput(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    base_url = serializers.CharField(max_length=200)
    model = serializers.CharField(max_length=200)
    api_key_env = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    sampling = serializers.DictField(required=False, default=dict)
    prompt_template = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    prompt_override = serializers.CharField(required=False, allow_blank=True, default="")
    concurrency = serializers.IntegerField(required=False, default=4)
    requests_per_minute = serializers.IntegerField(required=False, default=60)
    price_in_per_1k = serializers.DecimalField(max_digits=12, decimal_places=6, required=False, default=0)
    price_out_per_1k = serializers.DecimalField(max_digits=12, decimal_places=6, required=False, default=0)
    probe = serializers.BooleanField(required=False, default=True)


class JudgeRunInput(serializers.Serializer):
    judges = serializers.ListField(child=serializers.CharField(), required=False, help_text="Judge names; default all")
    scope = serializers.ChoiceField(choices=JUDGE_RUN_SCOPES, default="routed")


def _field_error(exc: ValueError) -> Response:
    message = str(exc)
    field, _, detail = message.partition(": ")
    body = {field: [detail]} if detail and field.isidentifier() else {"detail": message}
    return Response(body, status=status.HTTP_400_BAD_REQUEST)


class JudgeListCreate(APIView):
    permission_classes = [IsJudgeAdmin]

    @extend_schema(responses=JudgeSerializer(many=True))
    def get(self, request):
        return Response(JudgeSerializer(Judge.objects.all(), many=True).data)

    @extend_schema(request=JudgeInput, responses=JudgeSerializer)
    def post(self, request):
        data = JudgeInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        probe = values.pop("probe")
        try:
            judge = judge_create(probe=probe, **values)
        except ValueError as exc:
            return _field_error(exc)
        return Response(JudgeSerializer(judge).data, status=status.HTTP_201_CREATED)


class JudgeDetail(APIView):
    permission_classes = [IsJudgeAdmin]

    @extend_schema(responses=JudgeSerializer)
    def get(self, request, pk: int):
        return Response(JudgeSerializer(get_object_or_404(Judge, pk=pk)).data)

    @extend_schema(request=JudgeInput, responses=JudgeSerializer)
    def patch(self, request, pk: int):
        judge = get_object_or_404(Judge, pk=pk)
        current = {f: getattr(judge, f) for f in JudgeInput().fields if f != "probe"}
        data = JudgeInput(data={**current, **request.data})
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        values.pop("probe")
        try:
            values = judge_validate(**values)
        except ValueError as exc:
            return _field_error(exc)
        for field, value in values.items():
            setattr(judge, field, value)
        judge.save()
        return Response(JudgeSerializer(judge).data)


class JudgeProbe(APIView):
    permission_classes = [IsJudgeAdmin]

    @extend_schema(request=None, responses=JudgeSerializer)
    def post(self, request, pk: int):
        judge = get_object_or_404(Judge, pk=pk)
        judge_probe(judge=judge)
        return Response(JudgeSerializer(judge).data)


class JudgeRunStart(APIView):
    """Start a judge run on a campaign: 202 with the job to poll (GET /api/jobs/<id>/)."""

    permission_classes = [IsCampaignAdmin]

    @extend_schema(request=JudgeRunInput, responses={202: JobSerializer})
    def post(self, request, ref: str):
        campaign = campaign_for(request, ref, need="manage")
        data = JudgeRunInput(data=request.data)
        data.is_valid(raise_exception=True)
        names = data.validated_data.get("judges")
        judges = None
        if names:
            judges = list(Judge.objects.filter(name__in=names))
            missing = set(names) - {j.name for j in judges}
            if missing:
                return Response({"judges": [f"no judge named {n!r}" for n in sorted(missing)]}, status=400)
        try:
            job = judge_run_start(
                campaign=campaign, judges=judges, scope=data.validated_data["scope"], created_by=request.user
            )
        except ValueError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
