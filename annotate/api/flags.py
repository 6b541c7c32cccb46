"""Annotators' flags through the API: admins list (filtered) and resolve them; annotators add one on an item
they were given, by its assignment id (annotators never see item ids). Mounted at api/campaigns/<ref>/flags/."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from annotate.models import Assignment, ItemFlag
from annotate.selectors import campaign_for_annotator
from annotate.services.quality.flags import (
    MAX_COMMENT,
    MAX_RESOLUTION,
    flag_add,
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


class AddInput(serializers.Serializer):
    assignment = serializers.IntegerField(help_text="The lease of the item, as `next` gave it.")
    kind = serializers.ChoiceField(choices=ItemFlag.Kind.choices)
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=MAX_COMMENT)


class MyFlagSerializer(serializers.Serializer):
    """What the annotator who flagged hears back: their own flag, no other annotator's, no admin's note."""

    id = serializers.IntegerField(source="pk")
    kind = serializers.CharField()
    comment = serializers.CharField()
    created_at = serializers.DateTimeField()


class FlagList(generics.ListAPIView):
    """GET the campaign's flags, newest first (`limit` / `offset` pages): `kind` (one of the flag kinds) and
    `state` (open, resolved or all; default all) filter them."""

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


class FlagAdd(APIView):
    """POST {assignment, kind, comment}: an annotator flags an item they were given (201; 200 when the same
    kind was flagged before: the comment, if any, replaces the old one)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=AddInput, responses={201: MyFlagSerializer, 200: MyFlagSerializer})
    def post(self, request, ref: str):
        campaign = campaign_for_annotator(user=request.user, ref=ref)
        if campaign is None:
            raise Http404("no such campaign open to you")
        data = AddInput(data=request.data)
        data.is_valid(raise_exception=True)
        assignment = (
            Assignment.objects.select_related("item__campaign")
            .filter(pk=data.validated_data["assignment"], annotator=request.user, campaign=campaign)
            .first()
        )
        if assignment is None:
            return Response(
                {"assignment": [f"no assignment {data.validated_data['assignment']} of yours in this campaign"]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        existed = ItemFlag.objects.filter(
            item=assignment.item, annotator=request.user, kind=data.validated_data["kind"]
        ).exists()
        try:
            flag = flag_add(
                item=assignment.item,
                annotator=request.user,
                kind=data.validated_data["kind"],
                comment=data.validated_data["comment"],
            )
        except ValueError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(MyFlagSerializer(flag).data, status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED)


# Mounted under api/campaigns/<ref>/flags/ by annotate/api/urls.py.
urlpatterns = [
    path("", FlagList.as_view(), name="api-flags"),
    path("<int:pk>/resolve/", FlagResolve.as_view(), name="api-flag-resolve"),
    path("add/", FlagAdd.as_view(), name="api-flag-add"),
]
