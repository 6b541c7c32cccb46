"""Annotators' flags through the API: admins list (filtered) and resolve them; annotators add one on an item
they were given, by its assignment id (annotators never see item ids). Mounted at api/campaigns/<ref>/flags/."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.models import ItemFlag
from annotate.services.quality.flags import (
    MAX_RESOLUTION,
    flag_filters,
    flag_resolve,
    flag_row,
    flags_list,
)

from .permissions import IsCampaignAdmin
from .views import campaign_for


class FlagSerializer(serializers.Serializer):
    """A flag as admins read it: `annotate.services.quality.flags.flag_row`."""

    id = serializers.IntegerField()
    item = serializers.IntegerField()
    external_id = serializers.CharField()
    kind = serializers.ChoiceField(choices=ItemFlag.Kind.choices)
    comment = serializers.CharField()
    annotator = serializers.CharField()
    created_at = serializers.DateTimeField()
    resolved = serializers.BooleanField()
    resolved_at = serializers.DateTimeField(allow_null=True)
    resolved_by = serializers.CharField(allow_null=True)
    resolution = serializers.CharField()

    def to_representation(self, instance):
        return flag_row(instance)


class ResolveInput(serializers.Serializer):
    resolution = serializers.CharField(required=False, allow_blank=True, default="", max_length=MAX_RESOLUTION)


class FlagList(generics.ListAPIView):
    """GET the campaign's flags, newest first (`limit` / `offset` pages): `kind` (one of the flag kinds) and
    `state` (open, resolved or all; default all) filter them."""

    queryset = ItemFlag.objects.none()  # for the schema; get_queryset is the campaign's
    permission_classes = [IsCampaignAdmin]
    serializer_class = FlagSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("kind", enum=ItemFlag.Kind.values, required=False),
            OpenApiParameter("state", enum=["open", "resolved", "all"], required=False),
        ]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        campaign = campaign_for(self.request, self.kwargs["ref"])
        try:
            kind, resolved = flag_filters(
                kind=self.request.query_params.get("kind"), state=self.request.query_params.get("state")
            )
        except ValueError as exc:
            raise serializers.ValidationError({"filter": [str(exc)]}) from None
        return flags_list(campaign=campaign, kind=kind, resolved=resolved)


class FlagResolve(APIView):
    """POST {resolution}: mark the flag resolved, with the admin's note (again: the note is replaced)."""

    permission_classes = [IsCampaignAdmin]

    @extend_schema(request=ResolveInput, responses=FlagSerializer)
    def post(self, request, ref: str, pk: int):
        campaign = campaign_for(request, ref, need="manage")
        flag = get_object_or_404(ItemFlag, pk=pk, campaign=campaign)
        data = ResolveInput(data=request.data)
        data.is_valid(raise_exception=True)
        flag = flag_resolve(flag=flag, by=request.user, resolution=data.validated_data["resolution"])
        return Response(FlagSerializer(flag).data)


# Mounted under api/campaigns/<ref>/flags/ by annotate/api/urls.py.
urlpatterns = [
    path("", FlagList.as_view(), name="api-flags"),
    path("<int:pk>/resolve/", FlagResolve.as_view(), name="api-flag-resolve"),
]
